"""POST TELEGRAM_WEBHOOK_PATH: check the secret, validate, commit to the queue, then answer.

The hot path is answered in the outermost layer (RequestContextMiddleware calls ``WebhookIngress.answer``
for the path): the webhook request never enters FastAPI's error, telemetry and routing layers (that
alone cost as much as committing the update). The body is stored verbatim; the workers parse it.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any

import orjson
from starlette.types import Receive, Scope

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
INTERNAL = b'{"ok":false,"reason":"internal_error"}'
# Any integer outside Telegram's range has 16 digits or more (2**53 has 16): only a body with such a
# run of digits (in a number or in a string) needs its integers checked one by one.
_LONG_DIGITS = re.compile(rb"[0-9]{16}")


class WebhookIngress:
    """Answers POST ``path`` (RequestContextMiddleware routes it here); ``state`` is the application's
    state, where its lifespan puts the queue (``telegram_queue``)."""

    def __init__(self, path: str, secret: str | None, state: Any) -> None:
        self.path = path
        self.secret = secret.encode() if secret else None
        self.state = state

    async def answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        try:
            return await self._ingest(scope, receive)
        except Exception:  # this layer is outside FastAPI's 500 handler: the same answer here
            log.exception("webhook request failed")
            return 500, INTERNAL

    async def _ingest(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        if self.secret is not None:
            given = b""
            for name, value in scope["headers"]:
                if name == SECRET_HEADER:
                    given = value
                    break
            if not hmac.compare_digest(given, self.secret):
                return 401, UNAUTHORIZED
        raw = await read_body(receive, MAX_BODY_BYTES)
        if raw is None:
            return 413, TOO_LARGE
        if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
            return 400, TOO_DEEP
        try:
            update, text = _parse(raw)
        except _OutOfRange:
            return 400, OUT_OF_RANGE
        except ValueError:
            return 400, MALFORMED
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
            return 400, INVALID
        queue = getattr(self.state, "telegram_queue", None)  # set by the app's lifespan
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


def _parse(raw: bytes) -> tuple[Any, str]:
    """The update and its text, every integer within Telegram's range (else _OutOfRange; ValueError
    for what is not JSON). orjson parses what is certainly in range; a body with a run of 16 digits,
    or one orjson refuses, is read by the standard parser, every integer checked as it is read
    (orjson turns an integer past 64 bits into a float; the standard parser also takes NaN and lone
    surrogates, so the answer stays what it was)."""
    text = raw.decode("utf-8")
    if not _LONG_DIGITS.search(raw):
        try:
            return orjson.loads(raw), text
        except orjson.JSONDecodeError:
            pass
    return json.loads(text, parse_int=_telegram_int), text


def _telegram_int(literal: str) -> int:
    value = int(literal)
    if not -MAX_TELEGRAM_INT <= value <= MAX_TELEGRAM_INT:
        raise _OutOfRange(literal)
    return value
