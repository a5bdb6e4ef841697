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

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.telegram.queue import chat_of

log = logging.getLogger(__name__)

SECRET_HEADER = b"x-telegram-bot-api-secret-token"
MAX_BODY_BYTES = 1024 * 1024
QUEUED = b'{"ok":true,"queued":true}'
DUPLICATE = b'{"ok":true,"queued":false,"duplicate":true}'
UNAUTHORIZED = b'{"ok":false,"reason":"unauthorized"}'
MALFORMED = b'{"ok":false,"reason":"malformed_json"}'
INVALID = b'{"ok":false,"reason":"invalid_update","detail":"expected a JSON object with an integer update_id"}'
TOO_LARGE = b'{"ok":false,"reason":"body_too_large","max_bytes":%d}' % MAX_BODY_BYTES
UNAVAILABLE = b'{"ok":false,"reason":"unavailable"}'
NOT_CONFIGURED = b'{"ok":false,"reason":"bot_not_configured"}'


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None once it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return b""  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


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
        raw = await _read_body(receive)
        if raw is None:
            return 413, TOO_LARGE
        try:
            text = raw.decode("utf-8")
            update: Any = json.loads(text)
        except ValueError:
            return 400, MALFORMED
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
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
