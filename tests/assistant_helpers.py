"""Wiring the real assistant for tests: real catalog and knowledge base, fakes only at the seams."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.wiring import Runtime, build_runtime, wire_assistant
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


async def model_runtime(tmp_path: Path, **overrides: Any) -> Runtime:
    """A migrated runtime with a model key (the model itself is faked at the HTTP seam by respx)."""
    from tests.conftest import make_settings

    rt = build_runtime(make_settings(tmp_path, openai_api_key="sk-test", openai_max_retries=1, **overrides))
    await rt.db.migrate()
    return rt


async def assistant_runtime(tmp_path: Path, *, model: bool = False) -> Runtime:
    """A migrated runtime with the real assistant, offline or with a respx-faked model, recording handoffs."""
    from tests.conftest import make_settings

    extra = {"openai_api_key": "sk-test", "openai_max_retries": 1} if model else {}
    rt = build_runtime(make_settings(tmp_path, **extra))
    await rt.db.migrate()
    await attach(rt, model=model, notifier=RecordingNotifier())
    return rt


async def attach(rt: Runtime, *, model: bool = False, crm: Any = None, notifier: Any = None) -> Runtime:
    """Give the runtime a model (respx-faked, never sleeping between retries) or none, a CRM and a
    notifier, and rebuild the assistant around them. The catalog and knowledge base are the real ones."""
    if rt.llm is not None:
        await rt.llm.aclose()
    rt.llm = LLM(rt.settings, sleep=_no_sleep) if model else None
    if crm is not None:
        rt.crm = crm
    if notifier is not None:
        rt.notifier = notifier
    wire_assistant(rt)
    assert rt.assistant is not None and (rt.assistant.model is not None) == model
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
