"""Test helpers for the Mini Apps: initData signed the way Telegram signs it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from urllib.parse import urlencode

from adapters.storage.models import ConsentRecord, Lead
from adapters.wiring import Runtime
from agent.errors import ConsentRequired, InvalidInput
from agent.types import Channel

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

    async def notify_handoff(self, notice: object) -> None:
        raise AssertionError("no handoff expected in these tests")

    async def notify_user(self, telegram_user_id: int, text: str) -> None:
        self.user_messages.append((telegram_user_id, text))


class FakeAssistant:
    """Just the admin action of the Assistant protocol: ending human mode."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.released: list[int] = []

    async def release(self, conversation_id: int) -> None:
        conversation = await self.runtime.conversations.get(conversation_id)
        assert conversation is not None
        conversation.human_mode_until = None
        await self.runtime.conversations.save(conversation)
        self.released.append(conversation_id)


class FakeLeadService:
    """Stands in for the agent core's lead service (issue 4) with the same contract, over real tables."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def create_lead(self, *, channel: Channel, user_id: str, first_name: str | None, username: str | None,
                          brand: str, name: str, phone: str, consent_personal_data: bool, consent_marketing: bool,
                          profile: dict[str, object], program_ids: list[str]) -> int:
        if not consent_personal_data:
            raise ConsentRequired()
        digits = re.sub(r"\D", "", phone)
        if len(digits) == 11 and digits[0] in "78":
            digits = digits[1:]
        if len(digits) != 10 or digits[0] != "9":
            raise InvalidInput("phone", "expected a Russian mobile number")
        rt = self.runtime
        user = await rt.users.get_or_create("telegram", user_id, first_name=first_name, username=username)
        assert user.id is not None
        conversation = await rt.conversations.get_or_create(user.id, brand)
        for kind, granted in (("personal_data", True), ("marketing", consent_marketing)):
            await rt.consents.record(ConsentRecord(user_id=user.id, kind=kind, granted=granted, channel=channel.value,
                                                   text_version="test", telegram_id=int(user_id)))
        lead = await rt.leads.create(
            Lead(user_id=user.id, conversation_id=conversation.id, brand=brand, channel=channel.value, name=name,
                 phone="+7" + digits, profile=profile, program_ids=program_ids, source="miniapp"),
            outbox_provider=None,
        )
        assert lead.id is not None
        return lead.id
