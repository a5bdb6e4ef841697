"""Limits on every door (issue 20, findings 3, 4, 5, 10): failed admin logins, leads, the assistant's
IP limit counted after authentication, and every X-Forwarded-For line behind a trusted proxy."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.wiring import build_runtime
from tests.conftest import make_settings
from tests.security.conftest import serve_app
from tests.webapp_helpers import TEST_BOT_TOKEN, RecordingNotifier, sign_init_data

PASSWORD = "a-long-test-password"
TOKEN = "assistant-token-0123456789"


@asynccontextmanager
async def serve(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {
        "telegram_bot_token": TEST_BOT_TOKEN, "assistant_api_token": TOKEN, "metrics_enabled": True,
        "startup_preflight_mode": "off", "trusted_proxy_ips": ["127.0.0.1/32"],
    }
    values.update(overrides)
    settings = make_settings(tmp_path, **values)
    runtime = build_runtime(settings, notifier=RecordingNotifier())
    async with serve_app(settings, runtime) as client:
        yield client


def _address() -> str:
    """A fresh client address per test (a shared Redis keeps counts for the whole window)."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@pytest.mark.parametrize("path", ["/admin/leads", "/metrics", "/api/kb/search?q=цена"])
async def test_admin_password_guessing_is_stopped_per_ip(
    tmp_path: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    address = _address()
    async with serve(tmp_path) as client:
        wrong = [await client.get(path, auth=("admin", f"guess-{n}"), headers=_from(address)) for n in range(10)]
        right = await client.get(path, auth=("admin", PASSWORD), headers=_from(address))
        elsewhere = await client.get(path, auth=("admin", PASSWORD), headers=_from(_address()))
    assert [r.status_code for r in wrong] == [401] * 10
    assert right.status_code == 429, "the right password must not work after ten guesses from the address"
    assert right.json()["reason"] == "too_many_failed_logins"
    assert 0 < int(right.headers["retry-after"]) <= 900
    assert elsewhere.status_code == 200, elsewhere.text  # another address is not locked out
    assert "admin login failed from " + address in caplog.text


async def test_admin_password_guessing_is_stopped_per_username(tmp_path: Path) -> None:
    """Thirty failures for one username from thirty addresses lock that username for the window."""
    async with serve(tmp_path) as client:
        for _ in range(30):
            response = await client.get("/admin/leads", auth=("admin", "guess"), headers=_from(_address()))
            assert response.status_code == 401
        locked = await client.get("/admin/leads", auth=("admin", PASSWORD), headers=_from(_address()))
    assert locked.status_code == 429 and "retry-after" in locked.headers


async def test_failed_logins_are_shared_through_redis(tmp_path: Path, redis_url: str) -> None:
    address = _address()
    # A fresh username per run: the per-username window lives in the shared Redis for 15 minutes, so a
    # fixed name would carry earlier runs' failures; the 429 below then comes from the shared per-IP window.
    guesser = f"guess-{uuid.uuid4().hex[:8]}"
    async with serve(tmp_path / "a", redis_url=redis_url) as first, serve(tmp_path / "b", redis_url=redis_url) as second:
        for n in range(10):
            replica = first if n % 2 else second
            assert (await replica.get("/admin/leads", auth=(guesser, f"g{n}"), headers=_from(address))).status_code == 401
        assert (await first.get("/admin/leads", auth=("admin", PASSWORD), headers=_from(address))).status_code == 429
        assert (await second.get("/admin/leads", auth=("admin", PASSWORD), headers=_from(address))).status_code == 429


async def test_the_published_sample_password_opens_nothing(tmp_path: Path) -> None:
    """The runbook's `.env` sample ADMIN_PASS=strong_password: the service starts, the admin stays shut,
    and the unauthenticated diagnostics don't tell a guesser that the password is weak."""
    async with serve(tmp_path, admin_pass="strong_password", startup_preflight_mode="fail") as client:
        response = await client.get("/admin/leads", auth=("admin", "strong_password"))
        diagnostics = (await client.get("/api/runtime/diagnostics")).text
    assert response.status_code == 401
    assert "admin_pass" not in diagnostics and "ADMIN_PASS" not in diagnostics


def _tma(user_id: int) -> dict[str, str]:
    return {"Authorization": "tma " + sign_init_data(TEST_BOT_TOKEN, user={"id": user_id, "first_name": "Ольга"})}


LEAD = {"name": "Ольга", "phone": "+7 916 123-45-67", "consent_personal_data": True}


async def test_leads_are_limited_per_user(tmp_path: Path) -> None:
    async with serve(tmp_path) as client:
        codes = [(await client.post("/api/leads", headers=_tma(3001), json=LEAD)).status_code for _ in range(6)]
        other = await client.post("/api/leads", headers=_tma(3002), json=LEAD)
    assert codes == [201] * 5 + [429]
    assert other.status_code == 201


async def test_leads_are_limited_per_ip(tmp_path: Path) -> None:
    address = _address()
    async with serve(tmp_path, leads_rate_limit_ip_requests=3) as client:
        codes = [
            (await client.post("/api/leads", headers={**_tma(4000 + n), **_from(address)}, json=LEAD)).status_code
            for n in range(4)
        ]
    assert codes == [201, 201, 201, 429]


async def test_unknown_program_ids_are_refused(tmp_path: Path) -> None:
    async with serve(tmp_path) as client:
        response = await client.post("/api/leads", headers=_tma(3003), json={**LEAD, "program_ids": ["no-such-program"]})
        known = await client.post("/api/leads", headers=_tma(3004), json={**LEAD, "program_ids": ["ege-math-10-11-offline"]})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "program_ids" and "no-such-program" in response.json()["detail"]
    assert known.status_code == 201, known.text


async def test_junk_requests_do_not_lock_real_users_out(tmp_path: Path) -> None:
    """Everyone behind one address (a proxy): unauthenticated junk is limited on its own budget."""
    address = _address()
    async with serve(
        tmp_path, assistant_rate_limit_ip_requests=5, assistant_rate_limit_auth_failures=3
    ) as client:
        junk = [
            (await client.post("/api/assistant/ask", headers={"Authorization": "Bearer nope", **_from(address)},
                               json={"message": "x", "user_id": "u"})).status_code
            for _ in range(8)
        ]
        real = await client.post(
            "/api/assistant/ask", headers={"Authorization": f"Bearer {TOKEN}", **_from(address)},
            json={"message": "Здравствуйте", "user_id": "crm-1"},
        )
    assert junk == [401, 401, 401, 429, 429, 429, 429, 429]
    assert real.status_code == 200, real.text


async def test_every_forwarded_for_line_is_read_behind_a_trusted_proxy(tmp_path: Path) -> None:
    """The client sends its own X-Forwarded-For line; the proxy adds another with the real address.
    Reading only the first line let each request pick a fresh address and dodge the limits."""
    real = _address()
    async with serve(tmp_path, leads_rate_limit_ip_requests=2) as client:
        codes = []
        for n in range(3):
            headers = [("X-Forwarded-For", _address()), ("X-Forwarded-For", real), *_tma(5000 + n).items()]
            codes.append((await client.post("/api/leads", headers=headers, json=LEAD)).status_code)
    assert codes == [201, 201, 429]


def test_client_ip_reads_all_forwarded_for_lines() -> None:
    from starlette.requests import Request

    from adapters.http.auth import client_ip

    scope = {
        "type": "http", "client": ("10.0.0.5", 1234),
        "headers": [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-for", b"203.0.113.9, 10.0.0.6")],
    }
    assert client_ip(Request(scope), ["10.0.0.0/8"]) == "203.0.113.9"
