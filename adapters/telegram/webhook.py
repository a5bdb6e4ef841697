"""POST TELEGRAM_WEBHOOK_PATH: check the secret, validate, commit to the queue, then answer.

The hot path is a pure ASGI layer in front of the application: the webhook request never enters
FastAPI's routing and exception stacks (that alone costs as much as committing the update). Every
other request passes straight through. The body is stored verbatim; the workers parse it.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http.middleware import read_body
from adapters.http.request_checks import MAX_JSON_DEPTH, json_depth
from adapters.telegram.queue import chat_of

log = logging.getLogger(__name__)

SECRET_HEADER = b"x-telegram-bot-api-secret-token"
MAX_BODY_BYTES = 1024 * 1024
# Telegram's ids (update, chat, user, message) have at most 52 significant bits, so every integer in a
# real update fits a double; a larger one is forged and would overflow the database's BIGINT.
MAX_TELEGRAM_INT = 2**53 - 1
QUEUED = b'{"ok":true,"queued":true}'
DUPLICATE = b'{"ok":true,"queued":false,"duplicate":true}'
UNAUTHORIZED = b'{"ok":false,"reason":"unauthorized"}'
MALFORMED = b'{"ok":false,"reason":"malformed_json"}'
INVALID = b'{"ok":false,"reason":"invalid_update","detail":"expected a JSON object with an integer update_id"}'
OUT_OF_RANGE = b'{"ok":false,"reason":"invalid_update","detail":"a number is outside Telegram\'s id range"}'
TOO_DEEP = b'{"ok":false,"reason":"json_too_deep","max_depth":%d}' % MAX_JSON_DEPTH
TOO_LARGE = b'{"ok":false,"reason":"body_too_large","max_bytes":%d}' % MAX_BODY_BYTES
UNAVAILABLE = b'{"ok":false,"reason":"unavailable"}'
NOT_CONFIGURED = b'{"ok":false,"reason":"bot_not_configured"}'


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WebhookIngress:
    """Answers POST ``path`` itself; hands everything else to the wrapped application."""

    def __init__(self, app: ASGIApp, path: str, secret: str | None) -> None:
        self.app = app
        self.path = path
        self.secret = secret.encode() if secret else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status, body = await self._ingest(scope, receive)
        await _answer(send, status, body)

    async def _ingest(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        if self.secret is not None:
            given = next((v for k, v in scope["headers"] if k == SECRET_HEADER), b"")
            if not hmac.compare_digest(given, self.secret):
                return 401, UNAUTHORIZED
        raw = await read_body(receive, MAX_BODY_BYTES)
        if raw is None:
            return 413, TOO_LARGE
        if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
            return 400, TOO_DEEP
        try:
            text = raw.decode("utf-8")
            update: Any = json.loads(text, parse_int=_telegram_int)
        except _OutOfRange:
            return 400, OUT_OF_RANGE
        except ValueError:
            return 400, MALFORMED
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
            return 400, INVALID
        queue = getattr(scope["app"].state, "telegram_queue", None)  # set by the app's lifespan
        if queue is None:
            return 503, NOT_CONFIGURED
        try:
            queued = await queue.enqueue(update_id, chat_of(update), text)
        except Exception as error:  # not stored: a non-2xx answer makes Telegram deliver it again
            log.error("webhook update %s not queued: %s", update_id, type(error).__name__)
            return 503, UNAVAILABLE
        return 200, QUEUED if queued else DUPLICATE


class _OutOfRange(Exception):
    pass


def _telegram_int(literal: str) -> int:
    value = int(literal)
    if not -MAX_TELEGRAM_INT <= value <= MAX_TELEGRAM_INT:
        raise _OutOfRange(literal)
    return value
