"""The tool set the loop gets, and the strict JSON schemas the Responses API receives for it."""

from __future__ import annotations

from typing import Any

from agent.llm_types import function_tool
from agent.settings import Settings
from agent.toolkit import Tool
from tools import catalog_search, create_lead, crm_lookup, handoff_to_manager, kb_file_search, web_fallback


def build_tools(settings: Settings) -> list[Tool]:
    tools = [catalog_search.TOOL, kb_file_search.TOOL]
    if settings.openai_web_fallback_enabled:
        tools.append(web_fallback.TOOL)
    tools += [crm_lookup.TOOL, create_lead.TOOL, handoff_to_manager.TOOL]
    return tools


def tool_schemas(tools: list[Tool]) -> list[dict[str, Any]]:
    return [function_tool(t.name, t.description, t.args_model) for t in tools]
