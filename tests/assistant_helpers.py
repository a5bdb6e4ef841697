"""Wiring the real assistant for tests: real catalog and knowledge base, fakes only at the seams."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.settings import Settings
from agent.errors import CrmError
from agent.llm import LLM
from agent.ports import CrmLookupResult, CrmPushResult, LeadPayload
from agent.types import Channel, Inbound
from evals.runner import RecordingNotifier  # noqa: F401  (re-exported: the tests record handoffs with it)


class FakeCRM:
    name = "fake"

    def __init__(self, *, fail: bool = False) -> None:
        self.lookups: list[str] = []
        self.fail = fail

    async def push_lead(self, lead: LeadPayload) -> CrmPushResult:
        return CrmPushResult()

    async def lookup(self, phone: str) -> CrmLookupResult:
        self.lookups.append(phone)
        if self.fail:
            raise CrmError("down", retryable=True)
        return CrmLookupResult(found=True, tags=["ЕГЭ"], interests=["math"], last_touch_days=12)

    async def check(self) -> None:
        pass


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def quick_llm(settings: Settings) -> LLM:
    """The real LLM client (faked at the HTTP seam by respx) that never sleeps between retries."""
    return LLM(settings, sleep=_no_sleep)


async def model_runtime(tmp_path: Path, *, crm: Any = None, notifier: Any = None, **overrides: Any) -> Runtime:
    """A migrated runtime whose assistant has a model (faked at the HTTP seam by respx), with the given
    CRM and notifier built in. The catalog and knowledge base are the real ones."""
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, openai_api_key="sk-test", openai_max_retries=1, **overrides)
    rt = build_runtime(settings, llm=quick_llm(settings), crm=crm, notifier=notifier)
    await rt.db.migrate()
    return rt


async def assistant_runtime(tmp_path: Path, *, model: bool = False) -> Runtime:
    """A migrated runtime with the real assistant, offline or with a respx-faked model, recording handoffs."""
    from tests.conftest import make_settings

    extra = {"openai_api_key": "sk-test", "openai_max_retries": 1} if model else {}
    settings = make_settings(tmp_path, **extra)
    rt = build_runtime(settings, llm=quick_llm(settings) if model else None, notifier=RecordingNotifier())
    await rt.db.migrate()
    return rt


class Chat:
    """One Telegram user talking to the assistant, with update ids like the bot adapter sends."""

    def __init__(self, rt: Runtime, user_id: str = "1001", channel: Channel = Channel.telegram) -> None:
        self.rt = rt
        self.user_id = user_id
        self.channel = channel
        self.update = 0

    async def send(self, **fields: Any):
        self.update += 1
        assert self.rt.assistant is not None
        inbound = Inbound(
            channel=self.channel, user_id=self.user_id, first_name="Анна",
            idempotency_key=f"{self.channel.value}:{self.user_id}:{self.update}", **fields,
        )
        return await self.rt.assistant.handle(inbound)
