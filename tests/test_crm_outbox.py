"""The lead outbox on SQLite and PostgreSQL against fake CRMs: outages, restarts, timeouts, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.crm.outbox import OutboxWorker
from adapters.crm.payload import lead_payload, lead_title
from adapters.counters import REGISTRY
from adapters.retry import Backoff
from adapters.storage.database import Database
from adapters.storage.models import utcnow
from adapters.storage.outbox import OutboxRepository
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from tests.conftest import make_settings
from tests.crm_helpers import FAST, LATE, TOKEN, add_lead, crm_runtime, serving, wait_for
from tests.fake_crm import FakeAmo, FakeBase, FakeTallanto
from tests.storage_helpers import stored_dialogue

PHONES = [f"+7999100{i:04d}" for i in range(4)]


@pytest.fixture(params=["tallanto", "amo"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeBase]:
    fake: FakeBase = FakeTallanto(token=TOKEN) if request.param == "tallanto" else FakeAmo(token=TOKEN)
    fake.provider = request.param  # type: ignore[attr-defined]
    with serving(fake):
        yield fake


def worker(runtime: Runtime) -> OutboxWorker:
    return OutboxWorker(runtime.crm, runtime.outbox, runtime.leads, runtime.messages, FAST)


def delivered_once(fake: FakeBase, runtime_leads: list) -> None:  # type: ignore[type-arg]
    """Each lead exists exactly once in the CRM (and amo got exactly one note for it)."""
    for lead in runtime_leads:
        title = lead_title(lead_payload(lead, []))
        if isinstance(fake, FakeTallanto):
            (contact,) = fake.contacts_with_phone(lead.phone)
            assert contact["description"].count(title) == 1
        else:
            assert isinstance(fake, FakeAmo)
            (deal,) = fake.leads_named(title)
            assert len(fake.notes[deal["id"]]) == 1


async def test_outage_then_recovery_across_a_restart_delivers_every_lead_once(
    fake: FakeBase, tmp_path: Path, database_url: str
) -> None:
    provider = fake.provider  # type: ignore[attr-defined]
    runtime = await crm_runtime(tmp_path, provider, fake.url, database_url)
    try:
        leads = [await add_lead(runtime, phone, provider=provider) for phone in PHONES]
        fake.faults.down = True
        first = asyncio.create_task(worker(runtime).run())
        await wait_for(lambda: sum(e.status == 503 for e in fake.log) >= 6, what="retries during the outage")
        pending = await runtime.leads.get(leads[0].id)  # type: ignore[arg-type]
        assert pending.crm_status == "pending" and pending.crm_error.startswith("retrying: server")  # type: ignore[union-attr]

        # The CRM comes back, but the first write is answered too late: it is applied, the worker dies.
        fake.faults.late_writes, fake.faults.late_seconds = 1, LATE
        fake.faults.down = False
        await wait_for(lambda: fake.faults.late_writes == 0, what="the late write to arrive")
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert (await runtime.outbox.counts()).get("processing") == 1  # left behind by the "crash"

        # "Restart": a new worker resumes pending rows and, after the lease, the abandoned one.
        second = asyncio.create_task(worker(runtime).run())
        try:
            await wait_for(
                lambda: _all_delivered(runtime), timeout=20, what="every lead delivered after the restart"
            )
        finally:
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
        stored = [await runtime.leads.get(lead.id) for lead in leads]  # type: ignore[arg-type]
        assert all(lead.crm_status == "delivered" and lead.crm_id and lead.crm_error is None for lead in stored)  # type: ignore[union-attr]
        delivered_once(fake, stored)
    finally:
        await runtime.close()


async def _all_delivered(runtime: Runtime) -> bool:
    return await runtime.outbox.counts() == {"delivered": len(PHONES)}


async def test_permanent_refusal_stops_after_one_attempt_and_is_recorded(
    fake: FakeBase, tmp_path: Path, database_url: str
) -> None:
    provider = fake.provider  # type: ignore[attr-defined]
    runtime = await crm_runtime(tmp_path, provider, fake.url, database_url, **{f"{'tallanto_api' if provider == 'tallanto' else 'amo_access'}_token": "wrong"})  # type: ignore[attr-defined]
    try:
        lead = await add_lead(runtime, PHONES[0], provider=provider)
        labels = {"provider": provider, "outcome": "failed"}
        failed_before = REGISTRY.get_sample_value("crm_push_results_total", labels) or 0
        w = worker(runtime)
        assert await w.run_once() == 1
        assert await w.run_once() == 0  # nothing left to retry

        stored = await runtime.leads.get(lead.id)  # type: ignore[arg-type]
        assert stored.crm_status == "failed" and stored.crm_error.startswith("auth:")  # type: ignore[union-attr]
        assert "wrong" not in stored.crm_error  # type: ignore[union-attr]
        row = await runtime.outbox.for_lead(lead.id)  # type: ignore[arg-type]
        assert row.status == "failed" and row.attempts == 1 and row.last_error == stored.crm_error  # type: ignore[union-attr]
        assert len(fake.log) == 1
        assert REGISTRY.get_sample_value("crm_push_results_total", labels) == failed_before + 1
    finally:
        await runtime.close()


async def test_retry_after_from_the_crm_is_honoured(tmp_path: Path, database_url: str) -> None:
    fake = FakeTallanto(token=TOKEN)
    fake.faults.down, fake.faults.retry_after = True, 120
    with serving(fake):
        runtime = await crm_runtime(tmp_path, "tallanto", fake.url, database_url)
        try:
            lead = await add_lead(runtime, PHONES[0], provider="tallanto")
            patient = OutboxWorker(runtime.crm, runtime.outbox, runtime.leads, runtime.messages, replace(FAST, retry=Backoff(0.05, 600, jitter=0.1)))
            assert await patient.run_once() == 1
            row = await runtime.outbox.for_lead(lead.id)  # type: ignore[arg-type]
            assert row.status == "pending" and row.attempts == 1  # type: ignore[union-attr]
            # Our own backoff would be 0.05 s; the CRM's Retry-After of 120 s wins.
            assert row.next_attempt_at >= utcnow() + timedelta(seconds=110)  # type: ignore[union-attr]
            assert await worker(runtime).run_once() == 0  # not due yet
        finally:
            await runtime.close()


async def test_read_only_tallanto_refuses_the_push_without_writing(tmp_path: Path, database_url: str) -> None:
    fake = FakeTallanto(token=TOKEN)
    with serving(fake):
        runtime = await crm_runtime(tmp_path, "tallanto", fake.url, database_url, tallanto_read_only="1")
        try:
            lead = await add_lead(runtime, PHONES[0], provider="tallanto")
            await worker(runtime).run_once()
            stored = await runtime.leads.get(lead.id)  # type: ignore[arg-type]
            assert stored.crm_status == "failed" and stored.crm_error.startswith("read_only:")  # type: ignore[union-attr]
            assert fake.writes == [] and not fake.contacts
        finally:
            await runtime.close()


async def test_provider_none_keeps_leads_in_the_database_only(tmp_path: Path, database_url: str) -> None:
    runtime = build_runtime(make_settings(tmp_path, database_url=database_url))
    await runtime.db.migrate()
    try:
        assert runtime.crm.name == "none" and runtime.background == []
        lead = await add_lead(runtime, PHONES[0], provider=None)
        assert lead.crm_status == "skipped"
        assert await runtime.outbox.for_lead(lead.id) is None  # type: ignore[arg-type]
        assert (await runtime.crm.lookup(PHONES[0])).found is False
    finally:
        await runtime.close()


async def test_real_provider_runs_the_worker_in_background(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path, crm_provider="amo", amo_api_url="http://127.0.0.1:9", amo_access_token="t"))
    try:
        assert [service.name for service in runtime.background] == ["crm-outbox"]
        assert runtime.crm.name == "amo"
    finally:
        await runtime.close()


async def test_summary_sent_to_the_crm_has_no_phone_numbers(tmp_path: Path, database_url: str) -> None:
    fake = FakeTallanto(token=TOKEN)
    with serving(fake):
        runtime = await crm_runtime(tmp_path, "tallanto", fake.url, database_url)
        try:
            dialogue = [("Хочу на ОГЭ по физике", "Оставьте телефон"), ("мой номер 8 (999) 100-00-00, почта a@b.ru", "Спасибо!")]
            state = await stored_dialogue(runtime.store, "42", dialogue, first_name="Анна")
            await add_lead(runtime, PHONES[0], provider="tallanto", user_id=state.user_id, conversation_id=state.conversation_id)
            await worker(runtime).run_once()
            (contact,) = fake.contacts.values()
            assert "Клиент: Хочу на ОГЭ по физике" in contact["description"]
            assert "Ассистент: Оставьте телефон" in contact["description"]
            assert "мой номер [телефон], почта [email]" in contact["description"]
            assert "100-00-00" not in contact["description"] and "a@b.ru" not in contact["description"]
        finally:
            await runtime.close()


async def test_concurrent_claims_never_share_a_row(tmp_path: Path, database_url: str) -> None:
    """Two processes' workers (separate engines) claiming at once each get different rows."""
    runtime = await crm_runtime(tmp_path, "amo", "http://127.0.0.1:9", database_url)
    other = Database(runtime.db.url)
    try:
        for i in range(8):
            await add_lead(runtime, f"+7999200{i:04d}", provider="amo")
        repos = [runtime.outbox, OutboxRepository(other)]
        claims = await asyncio.gather(*(repos[i % 2].claim("amo", limit=1, lease_seconds=60) for i in range(12)))
        ids = [row.id for rows in claims for row in rows]
        assert len(ids) == len(set(ids)) == 8
        assert await runtime.outbox.claim("amo", limit=5, lease_seconds=60) == []  # all leased
    finally:
        await other.dispose()
        await runtime.close()
