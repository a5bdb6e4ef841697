"""The runbook's runtime endpoints and the error contract: JSON 4xx with a reason, never a 500."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from agent.settings import Settings
from tests.conftest import app_client, make_settings

SECRETS = {
    "telegram_bot_token": "123456789:AAAbbbCCCdddEEEfffGGGhhhIIIjjjKKKlll",
    "openai_api_key": "sk-secret-openai-key-0123456789",
    "admin_pass": "very-secret-admin-password",
    "assistant_api_token": "assistant-token-secret-42",
    "amo_access_token": "amo-secret-token-xyz",
    "tallanto_api_token": "tallanto-secret-token-abc",
    "telegram_webhook_secret": "webhook_secret_value_1",
}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in app_client(settings):
        yield c


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.headers["x-request-id"]


async def test_health_reports_database_down_within_a_check_interval(settings: Settings, tmp_path: Path) -> None:
    """Health answers from a database check a background task repeats every second: 503 at the first
    failed check (no request waits on the database), 200 again after the next good one."""
    import asyncio

    from adapters.storage.database import Database

    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        runtime = app.state.runtime
        health_check = app.state.health
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def wait_for(status: int) -> httpx.Response:
                for _ in range(60):  # up to 3 s: the check runs every health_check.interval (1 s)
                    response = await client.get("/api/health")
                    if response.status_code == status:
                        return response
                    await asyncio.sleep(0.05)
                raise AssertionError(f"health never answered {status}")

            assert (await client.get("/api/health")).status_code == 200
            healthy_db = runtime.db
            runtime.db = Database(f"sqlite+aiosqlite:///{not_a_dir}/x.db")
            down = await wait_for(503)
            runtime.db = healthy_db
            up = await wait_for(200)
    assert down.json() == {"ok": False, "reason": "database_unavailable", "detail": "OperationalError"}
    assert up.json()["ok"] is True and up.json()["database"] == "sqlite"


async def test_a_started_server_exempts_its_start_up_heap_from_the_collector(settings: Settings) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async for client in app_client(settings):
        assert (await client.get("/api/health")).status_code == 200
        assert gc.get_freeze_count() > 10_000  # modules, catalog, knowledge index: the whole start-up heap


async def test_diagnostics_shape(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/runtime/diagnostics")).json()
    assert body["ok"] is True
    runtime = body["runtime"]
    for key in (
        "running_on_render", "persistent_data_root", "database_on_persistent_storage",
        "vector_meta_on_persistent_storage", "telegram_mode", "llm_configured", "crm_provider", "version",
    ):
        assert key in runtime
    assert runtime["llm_configured"] is False
    assert any("OPENAI_API_KEY" in w for w in body["warnings"])


async def test_no_secret_in_diagnostics_or_errors(tmp_path: Path) -> None:
    # A closed local port: preflight's CRM round trip fails fast and never leaves the machine.
    settings = make_settings(
        tmp_path, **SECRETS, crm_provider="amo", amo_api_url="http://127.0.0.1:9", startup_preflight_mode="off"
    )
    async for client in app_client(settings):
        bodies = [
            (await client.get("/api/runtime/diagnostics")).text,
            (await client.get("/api/health")).text,
            (await client.get("/missing")).text,
            (await client.post("/api/health", content=b"{")).text,
            (await client.get("/")).text,
        ]
    joined = "\n".join(bodies)
    for secret in SECRETS.values():
        assert secret not in joined
        assert secret[:12] not in joined


async def test_landing_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/app"' in response.text and "/api/health" in response.text


async def test_app_without_build_says_build_required(client: httpx.AsyncClient) -> None:
    response = await client.get("/app")
    assert response.status_code == 503
    assert "Build required" in response.text


async def test_app_serves_build_with_cache_headers(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>mini app</html>")
    (dist / "assets" / "app-abc123.js").write_text("console.log(1)")
    async for client in app_client(make_settings(tmp_path, webapp_dist_path=str(dist))):
        index = await client.get("/app")
        asset = await client.get("/app/assets/app-abc123.js")
        route = await client.get("/app/some/client/route")
        missing = await client.get("/app/assets/missing.js")
        escape = await client.get("/app/..%2F..%2Fetc%2Fpasswd")
    assert index.status_code == 200 and "mini app" in index.text
    assert index.headers["cache-control"] == "no-cache"
    assert "immutable" in asset.headers["cache-control"]
    assert route.status_code == 200 and "mini app" in route.text
    assert missing.status_code == 404
    assert escape.status_code == 404 or "mini app" in escape.text


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", "/no/such/route", 404, "not_found"),
        ("DELETE", "/api/health", 405, "method_not_allowed"),
        ("PUT", "/", 405, "method_not_allowed"),
    ],
)
async def test_errors_are_json_with_reason(
    client: httpx.AsyncClient, method: str, path: str, status: int, reason: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.json()["reason"] == reason
    assert response.json()["ok"] is False


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/health", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["reason"] == "body_too_large"


async def test_oversized_streamed_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 100_000

    response = await client.post("/api/health", content=chunks())
    assert response.status_code in {405, 413}
    assert response.json()["ok"] is False


async def test_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    forged = await client.get("/api/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert forged.headers["x-request-id"] != "bad id\nwith newline"


async def test_an_unexpected_error_is_a_json_500_with_the_request_id(settings: Settings) -> None:
    """The request context layer is outside FastAPI's error layer, so its 500 carries the request id
    too (inside it, the error layer answered with the bare ``send``)."""
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/boom", boom)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/api/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500 and response.json() == {"ok": False, "reason": "internal_error"}
    assert response.headers["x-request-id"] == "req-500"
