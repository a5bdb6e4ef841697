"""Checks on what a request carries before any handler parses it (RequestContextMiddleware runs them).

- URL: control characters in the path or the query string (``/app/%00``, ``?q=%00``) → 422; PostgreSQL
  refuses NUL in text, and no real link carries one.
- Admin changes from another site: a POST/PUT/PATCH/DELETE to /admin/* whose Origin (or, without one,
  Referer) is not this host → 403 (a browser with cached Basic credentials would otherwise run a
  cross-site form's request, e.g. releasing a conversation). Requests without either header are not from
  a browser page (curl, scripts) and pass to the Basic-auth check as before.
- JSON bodies: nesting deeper than ``MAX_JSON_DEPTH`` → 400 (Python's parser recurses: 100 000 levels
  raised RecursionError, a 500); control characters in any string (``"\\u0000"``) → 422 naming the field.

Each check starts with a test that costs a byte scan in C, so ordinary requests pay next to nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from agent.text_safety import has_control

MAX_JSON_DEPTH = 64
CONTROL_DETAIL = "control characters (such as NUL) are not allowed"

_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A \u escape of a control character that is not itself escaped (an even run of backslashes before it).
_CONTROL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def url_problem(path: str, query_string: bytes) -> dict[str, Any] | None:
    """A 422 body when the path or the query string holds a control character."""
    if has_control(path):
        return _invalid("path")
    if query_string and (b"%" in query_string or _CONTROL_BYTES.search(query_string)):
        if _CONTROL_BYTES.search(unquote_to_bytes(query_string.replace(b"+", b" "))):
            return _invalid("query")
    return None


STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The request headers the request context layer reads, in one pass over the request's headers.
HEADERS = frozenset({b"x-request-id", b"content-length", b"transfer-encoding", b"content-type", b"origin", b"referer", b"host"})


def read_headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    """The request's ``HEADERS`` by name (the last one where a name repeats)."""
    return {name: value for name, value in scope["headers"] if name in HEADERS}


def cross_site_problem(scope: dict[str, Any], headers: dict[bytes, bytes]) -> dict[str, Any] | None:
    """A 403 body for a state-changing admin request that a page on another site sent (``headers``:
    ``read_headers``)."""
    if scope["method"] not in STATE_CHANGING or not scope["path"].startswith("/admin"):
        return None
    source = headers.get(b"origin", headers.get(b"referer"))
    if source is None:
        return None
    host = headers.get(b"host")
    try:
        netloc = urlsplit(source.decode("latin-1")).netloc.lower()
    except ValueError:
        netloc = ""
    if not netloc or host is None or netloc != host.decode("latin-1").lower():
        return {
            "ok": False, "reason": "cross_site_request",
            "detail": "admin changes are accepted only from this site's own pages (Origin/Referer)",
        }
    return None


def json_problem(body: bytes) -> tuple[int, dict[str, Any]] | None:
    """(status, body) for a JSON body that nests too deep (400) or carries control characters (422)."""
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
        return 400, {"ok": False, "reason": "json_too_deep", "max_depth": MAX_JSON_DEPTH}
    if b"\\u" in body and _CONTROL_ESCAPE.search(body):
        return 422, _invalid(_field_with_control(body))
    return None


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects, counted outside strings without parsing."""
    structure = _STRINGS.sub(b"", body)
    depth = deepest = 0
    for byte in structure.translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _field_with_control(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return "body"
    return _find(data, "") or "body"


def _find(value: Any, where: str) -> str | None:
    if isinstance(value, str):
        return where or "body" if has_control(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, f"{where}.{index}" if where else str(index))
            if found:
                return found
    return None


def _invalid(field: str) -> dict[str, Any]:
    return {"ok": False, "reason": "invalid_characters", "field": field, "detail": CONTROL_DETAIL}
