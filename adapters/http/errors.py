"""Every error leaves as JSON with a reason; nothing a client sends produces a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import AgentError, ConsentRequired, InvalidInput, NotFound

log = logging.getLogger(__name__)

_STATUS_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(status: int, detail: object = None) -> dict[str, object]:
    if isinstance(detail, dict):
        return {"ok": False, **detail}
    body: dict[str, object] = {"ok": False, "reason": _STATUS_REASONS.get(status, "error")}
    if isinstance(detail, str) and detail and detail.lower() not in {"not found", "method not allowed"}:
        body["detail"] = detail
    return body


def agent_error_body(exc: AgentError) -> tuple[int, dict[str, object]]:
    """The status and body of an error the core raised on purpose (also the SSE ``error`` event)."""
    if isinstance(exc, InvalidInput):
        return 422, {"ok": False, "reason": "invalid_request", "field": exc.field, "detail": exc.reason}
    if isinstance(exc, ConsentRequired):
        return 422, {"ok": False, "reason": "consent_required", "field": "consent_personal_data"}
    if isinstance(exc, NotFound):
        return 404, {"ok": False, "reason": "not_found", "detail": str(exc)}
    return 503, {"ok": False, "reason": "assistant_unavailable"}


def _field_name(loc: tuple[object, ...] | list[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, exc.detail), exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"ok": False, "reason": "malformed_json"}, 400)
        fields = [{"field": _field_name(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        return JSONResponse(
            {"ok": False, "reason": "invalid_request", "field": fields[0]["field"] if fields else None, "errors": fields},
            422,
        )

    async def agent_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AgentError)
        status, body = agent_error_body(exc)
        return JSONResponse(body, status)

    for error_class in (InvalidInput, ConsentRequired, NotFound):
        app.add_exception_handler(error_class, agent_error)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse({"ok": False, "reason": "internal_error"}, 500)
