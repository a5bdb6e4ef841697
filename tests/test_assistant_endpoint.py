"""POST /api/assistant/ask: auth, input validation, rate limits (memory and the real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.wiring import build_runtime
from tests.conftest import app_client, make_settings
from tests.webapp_helpers import TEST_BOT_TOKEN, sign_init_data

TOKEN = "assistant-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def serve(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {"assistant_api_token": TOKEN, "startup_preflight_mode": "off"}
    values.update(overrides)
    settings = make_settings(tmp_path, **values)
    runtime = build_runtime(settings)
    async for client in app_client(settings, runtime):
        yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(tmp_path) as c:
        yield c


async def test_ask_returns_the_reply(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/assistant/ask", headers=AUTH, json={"message": "Здравствуйте, 9 класс, ОГЭ", "user_id": "crm-7", "brand": "kmipt"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["text"] and body["engine"] == "offline"
    assert set(body) >= {"text", "quick_replies", "cards", "actions", "conversation_id", "lead_id", "silent"}
    assert "usage" not in body
    pressed = await client.post("/api/assistant/ask", headers=AUTH, json={"choice": body["quick_replies"][0]["payload"], "user_id": "crm-7"})
    assert pressed.status_code == 200 and pressed.json()["text"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer"}],
)
async def test_ask_without_valid_token_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/api/assistant/ask", headers=headers, json={"message": "hi", "user_id": "u"})
    assert response.status_code == 401
    assert response.json() == {"ok": False, "reason": "unauthorized"}
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_mini_app_init_data_is_verified(tmp_path: Path) -> None:
    forged = "query_id=1&auth_date=1&user=%7B%22id%22%3A1%7D&hash=00"
    signed = sign_init_data(TEST_BOT_TOKEN, user={"id": 777, "first_name": "Ольга"})
    async with serve(tmp_path, telegram_bot_token=TEST_BOT_TOKEN) as client:
        refused = await client.post("/api/assistant/ask", headers={"Authorization": f"tma {forged}"}, json={"message": "hi"})
        answered = await client.post(
            "/api/assistant/ask", headers={"Authorization": f"tma {signed}"}, json={"message": "Здравствуйте, 10 класс"}
        )
    assert refused.status_code == 401 and refused.json()["reason"] == "invalid_init_data"
    assert answered.status_code == 200, answered.text
    assert answered.json()["text"] and answered.json()["conversation_id"]


async def test_blank_token_setting_disables_the_token_route(tmp_path: Path) -> None:
    async with serve(tmp_path, assistant_api_token="") as client:
        response = await client.post("/api/assistant/ask", headers={"Authorization": "Bearer "}, json={"message": "hi", "user_id": "u"})
        assert response.status_code == 401


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"message": "", "user_id": "u"}, "body"),
        ({"message": "   ", "user_id": "u"}, "body"),
        ({"user_id": "u"}, "body"),
        ({"message": "hi", "user_id": ""}, "user_id"),
        ({"message": "hi", "user_id": "a b"}, "user_id"),
        ({"message": "x" * 20_001, "user_id": "u"}, "message"),
        ({"message": 5, "user_id": "u"}, "message"),
    ],
)
async def test_bad_input_is_422_with_the_field(client: httpx.AsyncClient, payload: dict[str, Any], field: str) -> None:
    response = await client.post("/api/assistant/ask", headers=AUTH, json=payload)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_missing_user_and_unknown_brand_are_422(client: httpx.AsyncClient) -> None:
    no_user = await client.post("/api/assistant/ask", headers=AUTH, json={"message": "hi"})
    assert no_user.status_code == 422 and no_user.json()["field"] == "user_id"
    brand = await client.post("/api/assistant/ask", headers=AUTH, json={"message": "hi", "user_id": "u", "brand": "nope"})
    assert brand.status_code == 422 and brand.json()["field"] == "brand"


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/assistant/ask", headers={**AUTH, "Content-Type": "application/json"}, content=b"{oops")
    assert response.status_code == 400 and response.json()["reason"] == "malformed_json"


async def test_long_message_is_cut_politely(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/assistant/ask", headers=AUTH, json={"message": "б" * 6000, "user_id": "long"})
    assert response.status_code == 200 and response.json()["text"].startswith("Ваше сообщение очень длинное")


async def test_rate_limits_per_user_and_per_ip(tmp_path: Path) -> None:
    async with serve(tmp_path, assistant_rate_limit_user_requests=2, assistant_rate_limit_ip_requests=3) as client:
        statuses = [
            (await client.post("/api/assistant/ask", headers=AUTH, json={"message": "hi", "user_id": "same"})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        other = await client.post("/api/assistant/ask", headers=AUTH, json={"message": "hi", "user_id": "other"})
        assert other.status_code == 429  # the IP's 3 requests are used up
        assert 1 <= int(other.headers["retry-after"]) <= 60
        assert other.json()["reason"] == "rate_limited"


@pytest.mark.redis
async def test_rate_limits_are_shared_through_redis(tmp_path: Path, redis_url: str) -> None:
    user = f"redis-{uuid.uuid4().hex}"
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    shared = {"redis_url": redis_url, "assistant_rate_limit_user_requests": 2, "trusted_proxy_ips": ["127.0.0.1/32"]}
    headers = {**AUTH, "X-Forwarded-For": ip}
    async with serve(tmp_path / "a", **shared) as first, serve(tmp_path / "b", **shared) as second:
        codes = []
        for client in (first, second, first):
            response = await client.post("/api/assistant/ask", headers=headers, json={"message": "hi", "user_id": user})
            codes.append(response.status_code)
        assert codes == [200, 200, 429]


async def test_failed_authentication_is_throttled_on_its_own_budget(tmp_path: Path) -> None:
    """Guessing tokens is limited (ASSISTANT_RATE_LIMIT_AUTH_FAILURES), but the guesses don't use the
    address's budget for real users (issue 20, finding 5)."""
    async with serve(tmp_path, assistant_rate_limit_auth_failures=3) as client:
        wrong = {"Authorization": "Bearer guessed-token"}
        codes = [
            (await client.post("/api/assistant/ask", headers=wrong, json={"message": "hi", "user_id": "x"})).status_code
            for _ in range(4)
        ]
        assert codes[:3] == [401, 401, 401] and codes[3] == 429
        allowed = await client.post("/api/assistant/ask", headers=AUTH, json={"message": "hi", "user_id": "x"})
        assert allowed.status_code == 200


async def test_forged_forwarded_for_does_not_dodge_the_ip_limit(tmp_path: Path) -> None:
    """Without TRUSTED_PROXY_IPS the peer address counts, whatever X-Forwarded-For says."""
    async with serve(tmp_path, assistant_rate_limit_ip_requests=2) as client:
        codes = []
        for i in range(3):
            headers = {**AUTH, "X-Forwarded-For": f"203.0.113.{i}"}
            response = await client.post("/api/assistant/ask", headers=headers, json={"message": "hi", "user_id": f"u{i}"})
            codes.append(response.status_code)
        assert codes == [200, 200, 429]
