"""Relay traffic that starts in an HTTP request (an admin's answer, a message of a client outside
Telegram shown in the topic, the topic's note of an admin's release) goes through the durable update
queue like staff-group updates: a send Telegram refuses for now (a flood wait longer than the sender
waits in place) is retried by the queue instead of being lost, and the request itself never calls
the Bot API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from tests.crm_helpers import wait_for
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import Service, running_service
from tests.telegram.test_relay import CLIENT, STAFF, hand_off, relay_settings, rows

ADMIN = ("admin", "a-long-test-password")
API = {"Authorization": "Bearer api-token-123"}
FLOOD = "Too Many Requests: retry after 61"  # over the 60 s the sender waits in place: the update fails


def accepted(api: FakeBotAPI, chat_id: int) -> list[str]:
    """Texts Telegram accepted for ``chat_id`` (a refused call is recorded too, without a result)."""
    return [c.params["text"] for c in api.calls_of("sendMessage") if c.result is not None and int(c.params["chat_id"]) == chat_id]


async def relay_jobs(service: Service) -> list[str]:
    """The queue rows the relay's HTTP-side work became (negative update ids, never Telegram's)."""
    return [r[0] for r in await rows(service, "SELECT status FROM telegram_updates WHERE update_id < 0")]


async def test_an_api_clients_message_reaches_the_topic_after_a_flood_wait(tmp_path: Path, fake_api: FakeBotAPI, database_url: str) -> None:
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, database_url, assistant_api_token="api-token-123")
    async with running_service(settings, fake_api) as service:
        client = service.client
        await client.post("/api/assistant/ask", headers=API, json={"user_id": "site-51", "choice": "handoff"})
        await wait_for(lambda: any("не из Telegram" in m["text"] for m in fake_api.sent_to(STAFF)), timeout=10, what="the card")
        fake_api.fail_next("sendMessage", 429, FLOOD, retry_after=61)
        asked = await client.post("/api/assistant/ask", headers=API, json={"user_id": "site-51", "message": "Жду ответа"})
        assert asked.status_code == 200
        shown = lambda: accepted(fake_api, STAFF).count("👤 Клиент: Жду ответа") == 1  # noqa: E731
        await wait_for(shown, timeout=10, what="the client's message in the topic")
        assert await relay_jobs(service) and set(await relay_jobs(service)) <= {"done", "processing"}


async def test_an_admin_answer_is_delivered_after_a_flood_wait(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        await hand_off(service, fake_api, CLIENT, 1)
        (conversation_id,) = (await rows(service, "SELECT id FROM conversations"))[0]
        fake_api.fail_next("sendMessage", 429, FLOOD, retry_after=61)
        body = {"text": "Добрый день! Группа есть.", "idempotency_key": "flood-answer-01"}
        sent = await service.client.post(f"/admin/conversations/{conversation_id}/messages", auth=ADMIN, json=body)
        assert sent.status_code == 200 and sent.json()["delivery"] in {"pending", "delivered"}
        await wait_for(lambda: accepted(fake_api, CLIENT).count(body["text"]) == 1, timeout=10, what="the answer")
        notes = lambda: accepted(fake_api, STAFF).count(f"🧑‍💼 admin (админка): {body['text']}") == 1  # noqa: E731
        await wait_for(notes, timeout=10, what="the note in the topic")
        again = await service.client.post(f"/admin/conversations/{conversation_id}/messages", auth=ADMIN, json=body)
        assert again.json()["delivery"] == "delivered"  # the same key: nothing sent twice
        assert accepted(fake_api, CLIENT).count(body["text"]) == 1


async def test_the_admin_api_calls_no_bot_method_itself(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """While the Bot API hangs, an admin's release and answer still answer: the queue carries the sends."""
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        await hand_off(service, fake_api, CLIENT, 1)
        (conversation_id,) = (await rows(service, "SELECT id FROM conversations"))[0]
        held = fake_api.hold(lambda params: True)  # every sendMessage hangs until released
        try:
            answer = service.client.post(f"/admin/conversations/{conversation_id}/messages", auth=ADMIN, json={"text": "Минуту, уточню."})
            sent = await asyncio.wait_for(answer, timeout=15)  # a request that sends itself would hang here
            assert sent.status_code == 200 and sent.json()["delivery"] == "pending"
            release = service.client.post(f"/admin/conversations/{conversation_id}/release", auth=ADMIN)
            released = await asyncio.wait_for(release, timeout=15)
            assert released.json()["in_human_mode"] is False
        finally:
            held.set()
        await wait_for(lambda: any("завершил разговор" in m["text"] for m in fake_api.sent_to(CLIENT)), timeout=10, what="the release notice")
        async with service.runtime.db.engine.connect() as conn:
            kinds = (await conn.execute(text("SELECT payload FROM telegram_updates WHERE update_id < 0"))).scalars().all()
        assert any('"admin_answer"' in k for k in kinds) and any('"released"' in k for k in kinds)


async def test_a_withdrawal_scrubs_the_relay_jobs_of_the_clients_messages(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """A job row carries what the client wrote: «удалите мои данные» blanks it like the client's updates."""
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, assistant_api_token="api-token-123")
    async with running_service(settings, fake_api) as service:
        client = service.client
        await client.post("/api/assistant/ask", headers=API, json={"user_id": "site-52", "choice": "handoff"})
        await client.post("/api/assistant/ask", headers=API, json={"user_id": "site-52", "message": "Мы живём на Лесной, 5"})
        await service.drain()
        assert any("Лесной" in p for p in await job_payloads(service))
        forget = await client.post("/api/assistant/ask", headers=API, json={"user_id": "site-52", "message": "удалите мои данные"})
        assert [q["payload"] for q in forget.json()["quick_replies"]] == ["forget:yes", "forget:no"]
        confirmed = await client.post("/api/assistant/ask", headers=API, json={"user_id": "site-52", "choice": "forget:yes"})
        assert confirmed.status_code == 200
        await service.drain()
        assert not any("Лесной" in p for p in await job_payloads(service))


async def job_payloads(service: Service) -> list[str]:
    return [r[0] for r in await rows(service, "SELECT payload FROM telegram_updates WHERE update_id < 0")]
