"""Shared set-up of the CRM tests: fake servers on 127.0.0.1 and runtimes wired to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from adapters.crm.http import make_http_client

from adapters.crm.outbox import OutboxPolicy
from adapters.retry import Backoff
from adapters.storage.models import Lead
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.errors import CrmError
from agent.ports import CRM, CrmPushResult, LeadPayload
from tests.conftest import make_settings
from tests.fake_crm import FakeAmo, FakeBase, FakeTallanto
from tests.thread_server import ThreadServer

TOKEN = "fake-crm-token-7f3a"
TIMEOUT = 0.5  # CRM_TIMEOUT_SECONDS in these tests; fakes answer "late" after 1.5 s
LATE = 1.5
F = TypeVar("F", bound=FakeBase)
FAST = OutboxPolicy(poll_seconds=0.02, retry=Backoff(0.05, 0.2, jitter=0.1), lease_seconds=1.0)


def crm_settings(tmp_path: Path, provider: str, url: str, *, token: str = TOKEN, **extra: object):  # noqa: ANN201
    values: dict[str, object] = {"crm_provider": provider, "crm_timeout_seconds": TIMEOUT}
    if provider == "tallanto":
        values.update(tallanto_api_url=url, tallanto_api_token=token)
    elif provider == "amo":
        values.update(amo_api_url=url, amo_access_token=token)
    values.update(extra)
    return make_settings(tmp_path, **values)


async def crm_runtime(tmp_path: Path, provider: str, url: str, database_url: str | None = None, **extra: object) -> Runtime:
    if database_url is not None:
        extra["database_url"] = database_url
    runtime = build_runtime(crm_settings(tmp_path, provider, url, **extra))
    await runtime.db.migrate()
    return runtime


async def add_lead(runtime: Runtime, phone: str, *, provider: str | None, **fields: object) -> Lead:
    lead = Lead(
        brand="kmipt",
        channel="telegram",
        source=fields.pop("source", "vk_ads"),  # type: ignore[arg-type]
        name=fields.pop("name", "Анна"),  # type: ignore[arg-type]
        phone=phone,
        profile=fields.pop("profile", {"grade": 9, "goal": "ОГЭ", "subject": "математика", "format": "онлайн"}),  # type: ignore[arg-type]
        program_ids=fields.pop("program_ids", ["oge-math-9"]),  # type: ignore[arg-type]
        **fields,
    )
    return await runtime.leads.create(lead, outbox_provider=provider)


async def wait_for(condition: Callable[[], object], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll an async or plain condition until it holds, bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextmanager
def serving(fake: F) -> Iterator[F]:
    """Run a fake CRM on 127.0.0.1 for the duration; its address is ``fake.url``."""
    with ThreadServer(fake.app()) as server:  # type: ignore[attr-defined]
        fake.url = server.url
        yield fake


@pytest.fixture(name="fake")
def tallanto_fake() -> Iterator[FakeTallanto]:
    """A test module that imports this gets a running fake Tallanto as the fixture ``fake``."""
    with serving(FakeTallanto(token=TOKEN)) as fake:
        yield fake


@pytest.fixture(name="fake")
def amo_fake() -> Iterator[FakeAmo]:
    """The same for amoCRM."""
    with serving(FakeAmo(token=TOKEN)) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client the adapters get in production, with the tests' short timeout."""
    client = make_http_client(TIMEOUT)
    yield client
    await client.aclose()


def sample_payload(**overrides: object) -> LeadPayload:
    """Lead #7 of a ninth-grader's parent, as the outbox would hand it to a CRM."""
    values: dict[str, object] = dict(
        lead_id=7,
        brand="kmipt",
        phone="+79991234567",
        name="Анна",
        source="vk_ads",
        grade=9,
        goal="ОГЭ",
        subject="математика",
        format="онлайн",
        program_ids=["oge-math-9", "oge-phys-9"],
        summary="Клиент: хочу на ОГЭ\nАссистент: подберу программу",
    )
    values.update(overrides)
    return LeadPayload(**values)  # type: ignore[arg-type]


async def push_after_a_timed_out_push(crm: CRM, fake: FakeBase) -> CrmPushResult:
    """The first push is applied by the CRM but answered too late (a client timeout); then the retry."""
    fake.faults.late_writes, fake.faults.late_seconds = 1, LATE
    with pytest.raises(CrmError) as timed_out:
        await crm.push_lead(sample_payload())
    assert timed_out.value.kind == "timeout" and timed_out.value.retryable
    assert fake.faults.late_writes == 0  # the write did reach the CRM
    return await crm.push_lead(sample_payload())
