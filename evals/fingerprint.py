"""The fingerprint of a Responses API request: what makes a recorded answer belong to it.

It covers what the model is told and offered: the instructions (system prompt, tone, brand facts, the
profile), the tool schemas, the answer format and tool choice, and the shape of the input (the roles
and item types in order, the user's own words, the names of the tools called). A changed prompt or
tool schema therefore changes it, while the noise that differs between a recording and a replay does
not: dates, masked phones and e-mails, call ids, tool outputs (which carry dates) and the assistant's
earlier texts (which carry lead numbers).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
MASKED_PHONE_RE = re.compile(r"\+\d[\d ]*\*\*\*[-* \d]*")
MASKED_EMAIL_RE = re.compile(r"\b\w\*\*\*@[\w.-]+")
# Recorded bodies keep neither: the model does not need its own request echoed back.
ECHOED_FIELDS = ("instructions", "tools", "text")


def normalise(text: str) -> str:
    text = DATE_RE.sub("<date>", text)
    text = MASKED_PHONE_RE.sub("<phone>", text)
    return MASKED_EMAIL_RE.sub("<email>", text)


def _digest(value: Any) -> str:
    canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _input_shape(items: Any) -> list[str]:
    if isinstance(items, str):
        return [f"text:{normalise(items)}"]
    shape: list[str] = []
    for item in items or []:
        kind = item.get("type") or "message"
        if kind == "message" or "role" in item:
            role = item.get("role", "?")
            content = item.get("content")
            # The user's words are the dialog itself; the assistant's earlier texts are the service's output.
            shape.append(f"{role}:{normalise(content)}" if role == "user" and isinstance(content, str) else role)
        elif kind == "function_call":
            shape.append(f"function_call:{item.get('name')}")
        else:
            shape.append(kind)
    return shape


def request_parts(body: dict[str, Any]) -> dict[str, str]:
    return {
        "instructions": _digest(normalise(body.get("instructions") or "")),
        "tools": _digest(body.get("tools") or []),
        "format": _digest({"text": body.get("text"), "tool_choice": body.get("tool_choice")}),
        "input": _digest(_input_shape(body.get("input"))),
    }


def fingerprint(body: dict[str, Any]) -> dict[str, Any]:
    parts = request_parts(body)
    return {"fingerprint": _digest(parts), "parts": parts}


def changed_parts(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Which parts differ (all of them when the recording has no parts to compare)."""
    old = recorded.get("parts") or {}
    return [name for name, value in current["parts"].items() if old.get(name) != value]


def strip_echo(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in ECHOED_FIELDS}
