"""Shared fixtures: isolated settings, real SQLite files and a fresh PostgreSQL database per session."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from adapters.runtime import Runtime
from adapters.storage.database import Database
from adapters.wiring import build_runtime
from agent.settings import Settings
from tests.pg_database import PG_ADMIN_DSN, fresh_database

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own env vars must not change what the tests see."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("RENDER", raising=False)


@pytest.fixture(autouse=True)
def _model_calls_through_plain_httpx(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """respx intercepts httpx, not the aiohttp transport production uses for model calls
    (agent.llm.default_http_client), so tests get a plain httpx client; tests marked ``real_transport``
    keep production's and talk to a real server on 127.0.0.1 (tests/test_llm_transport.py)."""
    if request.node.get_closest_marker("real_transport"):
        return
    import agent.llm

    monkeypatch.setattr(agent.llm, "default_http_client", lambda s: httpx.AsyncClient(timeout=s.openai_timeout_seconds))


@pytest.fixture(autouse=True)
def _unfreeze_the_heap_after_each_test() -> Iterator[None]:
    """A server freezes its start-up heap once (adapters.wiring.settle_startup_heap); tests start many
    apps in one process, so each test's objects go back to the collector when it ends."""
    yield
    gc.unfreeze()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "persistent_data_path": str(tmp_path / "data"),
        "catalog_dir": str(REPO / "catalog"),
        "knowledge_dir": str(REPO / "knowledge"),
        "legal_dir": str(REPO / "legal"),
        "webapp_dist_path": str(tmp_path / "no-webapp-build"),
        "admin_pass": "a-long-test-password",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def app_client(settings: Settings, runtime: Runtime | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app with its lifespan (migrations, preflight) run."""
    app = create_app(settings, runtime=runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_url() -> str:
    """The Redis at 127.0.0.1:6379 (skips outside CI when it is down; in CI that is a failure)."""
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), 2)
    except Exception as error:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"Redis not reachable in CI: {error}")
        pytest.skip(f"Redis at 127.0.0.1:6379 not reachable: {error}")
    finally:
        await client.aclose()
    return REDIS_URL


def run_script(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/<script> as an operator would, with only PATH and ``env`` in the environment."""
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL at {PG_ADMIN_DSN} is not reachable ({type(error).__name__})"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database per test session, so parallel runs never share tables."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}: CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; start it to run the PostgreSQL tests")
    with fresh_database("sa_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run a storage test on a real SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    _truncate_all(url)


def _truncate_all(url: str) -> None:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


MakeRuntime = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_runtime(tmp_path: Path, database_url: str) -> AsyncIterator[MakeRuntime]:
    """Builds migrated runtimes on each storage backend (DATABASE_URL accepts SQLite URLs too), with
    fakes injected through build_runtime's keywords (``notifier=``, ``llm=``, ``crm=``, ``clock=``, ...);
    closes them after the test."""
    built: list[Runtime] = []

    async def make(**parts: Any) -> Runtime:
        rt = build_runtime(make_settings(tmp_path, database_url=database_url), **parts)
        built.append(rt)
        await rt.db.migrate()
        return rt

    yield make
    for rt in built:
        await rt.close()


@pytest.fixture
async def runtime(make_runtime: MakeRuntime) -> Runtime:
    """A migrated runtime on each storage backend, offline (no model key)."""
    return await make_runtime()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The Responses API faked at the HTTP seam (a test module may define its own ``api``)."""
    from tests import openai_fakes

    with respx.mock(base_url=openai_fakes.BASE_URL, assert_all_called=False) as router:
        yield router
