"""Storage on a real SQLite file and the real PostgreSQL (the `database_url` fixture runs both)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from adapters.storage.database import Database
from adapters.storage.engine import normalize_database_url
from adapters.storage.models import ConsentRecord, Lead, ModelUsage
from adapters.runtime import Runtime
from tests.conftest import REPO
from tests.pg_database import fresh_database


async def test_migrations_create_every_table(db: Database) -> None:
    assert await db.is_migrated()
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            assert journal == "wal"
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
            assert busy >= 5000
        else:
            rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
        tables = {r[0] for r in rows}
    assert {
        "users", "conversations", "messages", "leads", "consent_records",
        "telegram_updates", "crm_outbox", "model_usage", "alembic_version",
    } <= tables


async def test_migrate_twice_is_harmless(db: Database) -> None:
    await db.migrate()
    assert await db.is_migrated()


async def test_user_first_touch_source_is_never_overwritten(runtime: Runtime) -> None:
    user = await runtime.users.get_or_create("telegram", "42", source="ads_vk", first_name="Анна")
    again = await runtime.users.get_or_create("telegram", "42", source="other", first_name="Анна")
    assert again.id == user.id
    assert again.source == "ads_vk"


async def test_concurrent_creation_yields_one_user(runtime: Runtime) -> None:
    users = await asyncio.gather(*(runtime.users.get_or_create("telegram", "777") for _ in range(8)))
    assert len({u.id for u in users}) == 1


async def test_lead_with_outbox_is_one_transaction_and_idempotent(runtime: Runtime) -> None:
    user = await runtime.users.get_or_create("telegram", "9")
    lead = await runtime.leads.create(
        Lead(user_id=user.id, brand="kmipt", channel="telegram", phone="+79991234567", idempotency_key="k1"),
        outbox_provider="amo",
    )
    same = await runtime.leads.create(
        Lead(user_id=user.id, brand="kmipt", channel="telegram", phone="+79991234567", idempotency_key="k1"),
        outbox_provider="amo",
    )
    assert same.id == lead.id
    assert await runtime.leads.count() == 1
    since = datetime.now(UTC) - timedelta(hours=24)
    assert [found.id for found in await runtime.leads.recent_for(user.id, "+79991234567", since)] == [lead.id]
    no_crm = await runtime.leads.create(
        Lead(user_id=user.id, brand="kmipt", channel="api", phone="+79990000000"), outbox_provider=None
    )
    assert no_crm.crm_status == "skipped"


async def test_consent_and_usage(runtime: Runtime) -> None:
    user = await runtime.users.get_or_create("telegram", "11")
    await runtime.consents.record(
        ConsentRecord(user_id=user.id, kind="personal_data", granted=True, channel="telegram",
                      text_version="2026-11-01", telegram_id=11)
    )
    assert await runtime.store.consent_granted(user.id, "personal_data")  # type: ignore[arg-type]
    await runtime.usage.add(ModelUsage(user_id=user.id, model="gpt-4.1", input_tokens=10, output_tokens=5, total_tokens=15))
    assert await runtime.usage.tokens_since(datetime.now(UTC) - timedelta(days=1), user_id=user.id) == 15


def test_naive_datetimes_are_refused() -> None:
    from adapters.storage.models import UTCDateTime

    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////var/data/x.db", "sqlite+aiosqlite:////var/data/x.db"),
    ],
)
def test_hosting_provider_urls_work_as_given(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_unsupported_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        normalize_database_url("mysql://u@h/db")


MIGRATE = "import sys; from adapters.storage.migrate import upgrade; upgrade(sys.argv[1])"


def _migrate_at_once(url: str, processes: int = 3) -> list[subprocess.CompletedProcess[str]]:
    """Start several processes that migrate the same fresh database, as the API and the bot do."""
    started = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    results = []
    for process in started:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def _tables(sync_dsn: str) -> set[str]:
    engine = sa.create_engine(sync_dsn, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_processes_migrating_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "app.db"
    results = _migrate_at_once(f"sqlite+aiosqlite:///{database}")
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-500:] for r in results]
    assert {"users", "conversations", "messages", "alembic_version"} <= _tables(f"sqlite:///{database}")


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_migrating_a_fresh_postgres_database_at_once_all_succeed(postgres_url: str) -> None:
    with fresh_database("sa_migrate") as url:
        results = _migrate_at_once(url)
        assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-500:] for r in results]
        assert {"users", "conversations", "messages", "alembic_version"} <= _tables(url)
