"""POST TELEGRAM_WEBHOOK_PATH: check the secret, validate, commit to the queue, then answer.

A plain Starlette route (no dependency injection, no BaseHTTPMiddleware): this is the hot path.
The body is stored verbatim; the workers parse it.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.requests import Request
from starlette.responses import Response

from adapters.telegram.queue import chat_of

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


QUEUED = _json(b'{"ok":true,"queued":true}')
DUPLICATE = _json(b'{"ok":true,"queued":false,"duplicate":true}')


async def receive_update(request: Request) -> Response:
    runtime = request.app.state.runtime
    telegram = runtime.telegram
    if telegram is None:
        return _json(b'{"ok":false,"reason":"bot_not_configured"}', 503)
    secret = runtime.settings.telegram_webhook_secret
    if secret is not None:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret.get_secret_value().encode()):
            return _json(b'{"ok":false,"reason":"unauthorized"}', 401)
    body = await request.body()
    try:
        text = body.decode("utf-8")
        update = json.loads(text)
    except ValueError:
        return _json(b'{"ok":false,"reason":"malformed_json"}', 400)
    update_id = update.get("update_id") if isinstance(update, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return _json(b'{"ok":false,"reason":"invalid_update","detail":"expected a JSON object with an integer update_id"}', 400)
    try:
        queued = await telegram.queue.enqueue(update_id, chat_of(update), text)
    except Exception as error:  # not stored: a non-2xx answer makes Telegram deliver it again
        log.error("webhook update %s not queued: %s", update_id, type(error).__name__)
        return _json(b'{"ok":false,"reason":"unavailable"}', 503)
    return QUEUED if queued else DUPLICATE
