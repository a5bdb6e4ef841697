"""What a model call returns, and the strict schemas it is sent, without importing the openai SDK.

Importing ``openai`` costs 0.4-0.8 s of start-up on this project's 2-core machines, and a service
without OPENAI_API_KEY (the offline policy answers) never calls the model. So the core (loop, tools,
wiring) imports these shapes from here, and only ``agent.llm`` (the client, built when a key is set)
imports the SDK at module level. tests/test_startup_imports.py keeps it that way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from agent.types import Usage


# Receives each streamed delta of the model's output text; must return at once and never raise.
TextSink = Callable[[str], None]


class FunctionCall(BaseModel):
    call_id: str
    name: str
    arguments: str


class ModelOutput(BaseModel):
    """One Responses API answer: the function calls to run, or the final text."""

    calls: list[FunctionCall] = Field(default_factory=list)
    text: str = ""
    status: str = "completed"
    usage: Usage = Field(default_factory=Usage)


class Citation(BaseModel):
    url: str
    title: str = ""


class WebAnswer(BaseModel):
    text: str
    citations: list[Citation] = Field(default_factory=list)
    dropped_citations: int = 0
    usage: Usage = Field(default_factory=Usage)


def function_tool(name: str, description: str, args_model: type[BaseModel]) -> dict[str, Any]:
    """A strict Responses function tool whose JSON schema is generated from the pydantic model."""
    # The SDK's strict-schema generator (the one responses.parse uses), imported on first use: only
    # wiring with a key configured, the evals and the tests build schemas.
    from openai import pydantic_responses_function_tool

    return dict(pydantic_responses_function_tool(args_model, name=name, description=description))


def json_schema_format(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """The ``text.format`` of a strict structured answer (the same strict-schema generator as tools)."""
    schema = function_tool(name, "", model)["parameters"]
    return {"type": "json_schema", "name": name, "schema": schema, "strict": True}
