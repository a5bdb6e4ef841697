"""An admin answering a client from the admin app (POST /admin/conversations/{id}/messages) through the
relay and the fake Bot API: a repeated request (double click, retry with the same idempotency_key) sends
once; the transcript says when the client cannot be answered and why."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import TOKEN, running_service
from tests.telegram.test_relay import CLIENT, STAFF, deliver, hand_off, relay_settings
from tests.webapp_helpers import sign_init_data

ADMIN = ("admin", "a-long-test-password")


async def conversation_of(service, user: int) -> int:  # type: ignore[no-untyped-def]
    listing = (await service.client.get("/admin/conversations", auth=ADMIN)).json()["items"]
    return next(c["id"] for c in listing if c["user"]["external_id"] == str(user))


async def test_a_repeated_answer_with_the_same_key_reaches_the_client_once(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        await hand_off(service, fake_api, CLIENT, 1)
        conversation = await conversation_of(service, CLIENT)
        before_client, before_staff = len(fake_api.sent_to(CLIENT)), len(fake_api.sent_to(STAFF))
        body = {"text": "Здравствуйте! Подберу вам группу.", "name": "Ирина", "idempotency_key": "admin-answer-0001"}
        first = await service.client.post(f"/admin/conversations/{conversation}/messages", auth=ADMIN, json=body)
        again = await service.client.post(f"/admin/conversations/{conversation}/messages", auth=ADMIN, json=body)
        assert first.json()["delivery"] == again.json()["delivery"] == "delivered"
        assert [m["text"] for m in fake_api.sent_to(CLIENT)[before_client:]] == ["Здравствуйте! Подберу вам группу."]
        assert len(fake_api.sent_to(STAFF)) - before_staff == 1  # one note in the topic
        transcript = (await service.client.get(f"/admin/conversations/{conversation}", auth=ADMIN)).json()
        assert [m["content"] for m in transcript["messages"] if m["role"] == "manager"] == ["Здравствуйте! Подберу вам группу."]
        assert transcript["answer"] == {"allowed": True, "reason": None}


async def test_the_transcript_says_why_a_client_cannot_be_answered(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        await deliver(service, updates.message(1, 705, "Здравствуйте"))  # the bot has this one
        await hand_off(service, fake_api, CLIENT, 2)
        bot_has_it = await conversation_of(service, 705)
        handed = await conversation_of(service, CLIENT)

        async def answer(conversation: int) -> dict[str, object]:
            return (await service.client.get(f"/admin/conversations/{conversation}", auth=ADMIN)).json()["answer"]

        assert await answer(bot_has_it) == {"allowed": False, "reason": "not_in_human_mode"}
        assert await answer(handed) == {"allowed": True, "reason": None}
        fake_api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        sent = await service.client.post(f"/admin/conversations/{handed}/messages", auth=ADMIN, json={"text": "Вы здесь?"})
        assert sent.json()["delivery"] == "blocked"
        assert await answer(handed) == {"allowed": False, "reason": "client_blocked"}


async def test_without_the_relay_a_telegram_client_cannot_be_answered_from_the_app(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = relay_settings(tmp_path, fake_api, manager_relay_enabled=False)
    async with running_service(settings, fake_api) as service:
        await deliver(service, updates.message(1, CLIENT, "/start"), updates.message(2, CLIENT, "/manager"))
        conversation = await conversation_of(service, CLIENT)
        transcript = (await service.client.get(f"/admin/conversations/{conversation}", auth=ADMIN)).json()
        assert transcript["conversation"]["in_human_mode"] is True
        assert transcript["answer"] == {"allowed": False, "reason": "relay_unavailable"}


async def test_the_answer_carries_the_authenticated_admin_never_a_name_from_the_body(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """The admin Mini App's Telegram user (signed initData) or the browser login's account is who
    answered: a body claiming another name (the old «name» field) changes nothing."""
    fake_api.forums.add(STAFF)
    irina = 4242
    settings = relay_settings(tmp_path, fake_api, admin_miniapp_enabled=True, admin_telegram_ids=[irina])
    async with running_service(settings, fake_api) as service:
        await hand_off(service, fake_api, CLIENT, 1)
        conversation = await conversation_of(service, CLIENT)
        signed = sign_init_data(TOKEN, user={"id": irina, "first_name": "Ирина", "last_name": "Соколова"})
        from_app = await service.client.post(
            f"/admin/conversations/{conversation}/messages", headers={"Authorization": f"tma {signed}"},
            json={"text": "Здравствуйте!", "name": "Директор Пётр"},
        )
        from_browser = await service.client.post(
            f"/admin/conversations/{conversation}/messages", auth=ADMIN, json={"text": "Добрый день!", "name": "Ирина"},
        )
        assert from_app.json()["delivery"] == from_browser.json()["delivery"] == "delivered"
        transcript = (await service.client.get(f"/admin/conversations/{conversation}", auth=ADMIN)).json()
        managers = [(m["content"], m["meta"]["manager_name"], m["meta"]["manager_id"]) for m in transcript["messages"] if m["role"] == "manager"]
        assert managers == [("Здравствуйте!", "Ирина Соколова", irina), ("Добрый день!", "admin", None)]
        notes = [m["text"] for m in fake_api.sent_to(STAFF) if "(админка)" in m["text"]]
        assert notes == ["🧑‍💼 Ирина Соколова (админка): Здравствуйте!", "🧑‍💼 admin (админка): Добрый день!"]
