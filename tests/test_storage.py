"""Storage on a real SQLite file and the real PostgreSQL (the `database_url` fixture runs both)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from adapters.storage import migrate
from adapters.storage.database import Database
from adapters.storage.engine import normalize_database_url, sync_url
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


@contextlib.contextmanager
def _fresh_databases(kind: str, tmp_path: Path, count: int) -> Iterator[list[str]]:
    """``count`` empty databases of ``kind`` (SQLite files, or PostgreSQL databases dropped after)."""
    if kind == "sqlite":
        yield [f"sqlite+aiosqlite:///{tmp_path / f'fresh{i}.db'}" for i in range(count)]
        return
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(fresh_database("sa_schema")) for _ in range(count)]


def _plain(value: object) -> str:
    """A reflected item as text (a partial index's WHERE comes back as a TextClause object)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_plain(value[key])}" for key in sorted(value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain(item) for item in value) + "]"
    return str(value)


def _schema(url: str) -> dict[str, object]:
    """Everything the database says about its tables, in a comparable form. Columns are compared by
    name: a column a revision added comes last in its table, the models may list it elsewhere, and
    no statement of the service depends on column order (none selects or inserts without names)."""
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        schema: dict[str, object] = {}
        for table in sorted(inspector.get_table_names()):
            schema[table] = {
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")), bool(c.get("autoincrement")))
                    for c in inspector.get_columns(table)
                ),
                "primary_key": inspector.get_pk_constraint(table),
                "foreign_keys": sorted(_plain(fk) for fk in inspector.get_foreign_keys(table)),
                "unique": sorted(_plain(u) for u in inspector.get_unique_constraints(table)),
                "indexes": sorted(_plain(i) for i in inspector.get_indexes(table)),
                "checks": sorted(_plain(c) for c in inspector.get_check_constraints(table)),
            }
        with engine.connect() as conn:
            # The index definitions as the database keeps them (the partial indexes' WHERE included).
            query = (
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                if engine.dialect.name == "sqlite"
                else "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            )
            schema["index definitions"] = sorted(tuple(row) for row in conn.execute(text(query)))
            schema["version"] = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
        return schema
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_empty_database_gets_the_schema_alembic_builds(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """upgrade() creates an empty database from the models' metadata (no Alembic import at start-up):
    the result must be exactly what running every revision gives, on both backends."""
    if kind == "postgresql":
        request.getfixturevalue("postgres_url")  # skips (or fails in CI) without the server
    from alembic import command

    with _fresh_databases(kind, tmp_path, 2) as (by_metadata, by_revisions):
        migrate.upgrade(by_metadata)
        command.upgrade(migrate.alembic_config(by_revisions), "head")
        built, migrated = _schema(by_metadata), _schema(by_revisions)
        assert built["version"] == migrated["version"] == [migrate.head_revision()]
        assert built == migrated
        assert migrate.is_up_to_date(by_metadata)


def test_the_head_read_from_the_revision_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite:///unused.db"))
    assert migrate.head_revision() == script.get_current_head()


def test_start_up_migrates_a_new_database_without_importing_alembic(tmp_path: Path) -> None:
    """A new database and one at head are answered without Alembic (its import was ~0.1-0.2 s of
    bench/startup.py); an older revision still goes through Alembic."""
    from alembic import command

    database = tmp_path / "app.db"
    probe = (
        "import sys; from adapters.storage.migrate import upgrade, is_up_to_date; upgrade(sys.argv[1]); "
        "print(is_up_to_date(sys.argv[1]), 'alembic' in sys.modules)"
    )

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, f"sqlite+aiosqlite:///{database}"], cwd=REPO, capture_output=True, text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    assert run() == "True False"  # new
    assert run() == "True False"  # at head
    command.downgrade(migrate.alembic_config(f"sqlite:///{database}"), "0003")
    assert run() == "True True"  # an older revision: Alembic upgrades it
