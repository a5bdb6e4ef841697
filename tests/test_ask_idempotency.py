"""POST /api/assistant/ask with the client's own id for a message (``idempotency_key``): a retry after a
dropped connection (the Mini App chat's stream) gets the same reply and stores no second turn; the key is
the caller's own, so another user sending the same key has a turn of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.wiring import build_runtime
from tests.conftest import app_client, make_settings
from tests.webapp_helpers import TEST_BOT_TOKEN, sign_init_data

BASIC = ("admin", "a-long-test-password")


def mini_app(user_id: int) -> dict[str, str]:
    return {"Authorization": f"tma {sign_init_data(TEST_BOT_TOKEN, user={'id': user_id, 'first_name': 'Ольга'})}"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, telegram_bot_token=TEST_BOT_TOKEN, startup_preflight_mode="off")
    runtime = build_runtime(settings)
    async for c in app_client(settings, runtime):
        yield c


async def transcript(client: httpx.AsyncClient, conversation_id: int) -> list[tuple[str, str]]:
    found = (await client.get(f"/admin/conversations/{conversation_id}", auth=BASIC)).json()
    return [(m["role"], m["content"]) for m in found["messages"]]


async def test_a_retry_with_the_same_key_gets_the_same_reply_and_no_second_turn(client: httpx.AsyncClient) -> None:
    body = {"message": "Здравствуйте, сыну 9 класс, нужна математика", "idempotency_key": "m-1a2b3c4d-0001"}
    first = await client.post("/api/assistant/ask", headers=mini_app(3001), json=body)
    again = await client.post("/api/assistant/ask", headers=mini_app(3001), json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    stored = await transcript(client, first.json()["conversation_id"])
    assert [role for role, _ in stored] == ["user", "assistant"]

    fresh = await client.post("/api/assistant/ask", headers=mini_app(3001), json={**body, "idempotency_key": "m-1a2b3c4d-0002"})
    assert fresh.status_code == 200
    assert [role for role, _ in await transcript(client, first.json()["conversation_id"])] == ["user", "assistant"] * 2


async def test_the_key_is_scoped_to_the_caller(client: httpx.AsyncClient) -> None:
    """Another user with the same key neither receives the first user's reply nor loses their turn."""
    body = {"message": "Здравствуйте, дочке 10 класс, физика к ЕГЭ", "idempotency_key": "same-key-0001"}
    olga = await client.post("/api/assistant/ask", headers=mini_app(3002), json=body)
    other = await client.post("/api/assistant/ask", headers=mini_app(3003), json={**body, "message": "Сколько стоит пробное?"})
    assert other.status_code == 200
    assert other.json()["conversation_id"] != olga.json()["conversation_id"]
    assert [role for role, _ in await transcript(client, other.json()["conversation_id"])] == ["user", "assistant"]


@pytest.mark.parametrize("key", ["", "short", "has space in it", "x" * 65, "кириллица-ключ"])
async def test_a_malformed_key_is_422(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post("/api/assistant/ask", headers=mini_app(3004), json={"message": "hi", "idempotency_key": key})
    assert response.status_code == 422
    assert response.json()["field"] == "idempotency_key"


async def test_a_retry_gets_the_manager_messages_its_first_attempt_took(client: httpx.AsyncClient) -> None:
    """A manager's answer rides on the client's next reply once; if that reply was lost (a dropped
    stream), the retry with the same key carries it again instead of losing it."""
    handed = await client.post("/api/assistant/ask", headers=mini_app(3010), json={"choice": "handoff"})
    conversation = handed.json()["conversation_id"]
    sent = await client.post(f"/admin/conversations/{conversation}/messages", auth=BASIC, json={"text": "Здравствуйте! Это Ирина."})
    assert sent.json()["delivery"] == "waiting"
    body = {"message": "Жду ответа", "idempotency_key": "after-handoff-01"}
    first = await client.post("/api/assistant/ask", headers=mini_app(3010), json=body)
    again = await client.post("/api/assistant/ask", headers=mini_app(3010), json=body)
    assert [m["text"] for m in first.json()["manager_messages"]] == ["Здравствуйте! Это Ирина."]
    assert again.json() == first.json()
    later = await client.post("/api/assistant/ask", headers=mini_app(3010), json={**body, "idempotency_key": "after-handoff-02"})
    assert later.json()["manager_messages"] == []  # still carried once to each message
