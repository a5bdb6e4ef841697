"""Test helpers for the Mini Apps: initData signed the way Telegram signs it, a recording notifier."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import urlencode


TEST_BOT_TOKEN = "123456789:AAFakeTokenForMiniAppTests_01234567"


def sign_init_data(
    bot_token: str | None,
    *,
    user: dict[str, object],
    auth_date: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """A raw initData query string; with a bot token it carries Telegram's HMAC ``hash``."""
    fields = {
        "auth_date": str(int((auth_date or datetime.now(UTC)).timestamp())),
        "query_id": "AAFtest",
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
        **(extra or {}),
    }
    if bot_token is not None:
        check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")
        secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
        fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


ADMIN_TELEGRAM_ID = 1001
PLAIN_TELEGRAM_ID = 2002


class RecordingNotifier:
    """The notifier port, recording what the bot would have sent."""

    def __init__(self) -> None:
        self.user_messages: list[tuple[int, str]] = []
        self.handoffs: list[object] = []

    async def notify_handoff(self, notice: object) -> None:
        self.handoffs.append(notice)

    async def notify_user(self, telegram_user_id: int, text: str) -> None:
        self.user_messages.append((telegram_user_id, text))
