"""Shared set-up of the CRM tests: fake servers on 127.0.0.1 and runtimes wired to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from adapters.crm.outbox import OutboxPolicy
from adapters.storage.models import Lead
from adapters.wiring import Runtime, build_runtime
from tests.conftest import make_settings

TOKEN = "fake-crm-token-7f3a"
TIMEOUT = 0.5  # CRM_TIMEOUT_SECONDS in these tests; fakes answer "late" after 1.5 s
LATE = 1.5
FAST = OutboxPolicy(poll_seconds=0.02, base_delay_seconds=0.05, max_delay_seconds=0.2, lease_seconds=1.0)


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
