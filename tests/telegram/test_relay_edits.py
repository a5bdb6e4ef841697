"""A manager editing a message already relayed to the client (issue 16's relay): the client's copy is
edited too (text, or a photo's caption), the transcript keeps the new words, a repeated edit update
changes nothing more, and a client outside Telegram who has not yet received it gets the new words."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import running_service
from tests.telegram.test_relay import CLIENT, MANAGER, STAFF, copies_to, deliver, hand_off, relay_settings, rows

PHOTO = [{"file_id": "p", "file_unique_id": "pu", "width": 1, "height": 1}]


async def test_an_edited_manager_message_is_edited_at_the_client(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        await deliver(
            service,
            updates.staff(10, STAFF, MANAGER, "Занятия по субботам в 10:00.", thread=thread),
            updates.staff(11, STAFF, MANAGER, thread=thread, photo=PHOTO, caption="Расписание на осень"),
        )
        copies = [c.result["message_id"] for c in fake_api.calls_of("copyMessage") if int(c.params["chat_id"]) == CLIENT]
        assert len(copies) == 2 and len(copies_to(fake_api, CLIENT)) == 2

        await deliver(
            service,
            updates.staff_edit(12, 10, STAFF, MANAGER, "Занятия по субботам в 11:00.", thread=thread),
            updates.staff_edit(13, 11, STAFF, MANAGER, thread=thread, photo=PHOTO, caption="Расписание на осень и зиму"),
            updates.staff_edit(14, 10, STAFF, MANAGER, "Занятия по субботам в 11:00.", thread=thread),  # delivered again
        )
        edits = [c.params for c in fake_api.calls_of("editMessageText")]
        assert [(int(e["chat_id"]), int(e["message_id"]), e["text"]) for e in edits][:1] == [
            (CLIENT, copies[0], "Занятия по субботам в 11:00.")
        ]
        captions = [c.params for c in fake_api.calls_of("editMessageCaption")]
        assert [(int(e["chat_id"]), int(e["message_id"]), e["caption"]) for e in captions] == [
            (CLIENT, copies[1], "Расписание на осень и зиму")
        ]
        assert len(edits) == 1  # the repeated edit changed nothing, so nothing was sent
        assert len(copies_to(fake_api, CLIENT)) == 2  # edited in place, never sent as a new message
        stored = await rows(service, "SELECT content FROM messages WHERE role = 'manager' ORDER BY id")
        assert [r[0] for r in stored] == ["Занятия по субботам в 11:00.", "[фото] Расписание на осень и зиму"]


async def test_an_edit_before_an_api_client_received_it_gives_them_the_new_words(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, assistant_api_token="api-token-123")
    auth = {"Authorization": "Bearer api-token-123"}
    async with running_service(settings, fake_api) as service:
        client = service.client
        await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-44", "choice": "handoff"})
        await service.drain()  # the card is a queued relay job
        thread = int(fake_api.sent_to(STAFF)[-1]["message_thread_id"])
        await deliver(
            service,
            updates.staff(5, STAFF, MANAGER, "Стоимость пришлю завтра.", thread=thread),
            updates.staff_edit(6, 5, STAFF, MANAGER, "Стоимость пришлю сегодня вечером.", thread=thread),
        )
        answer = await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-44", "message": "Жду"})
        assert [m["text"] for m in answer.json()["manager_messages"]] == ["Стоимость пришлю сегодня вечером."]
        assert fake_api.calls_of("editMessageText") == []


async def test_an_edit_of_a_message_never_relayed_changes_nothing(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        await deliver(
            service,
            updates.staff(10, STAFF, MANAGER, "/release", thread=thread),  # a command stays in the group
            updates.staff_edit(11, 10, STAFF, MANAGER, "Клиенту: привет", thread=thread),
        )
        assert fake_api.calls_of("editMessageText") == [] and copies_to(fake_api, CLIENT) == []
        async with service.runtime.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM messages WHERE role = 'manager'"))).scalar() == 0


async def test_an_anonymous_group_admin_reaches_the_client(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """An admin who posts as the group (GroupAnonymousBot in ``from``, the group as ``sender_chat``) is a
    manager like any other; a bot or another chat speaking in the topic still is not."""
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        await deliver(
            service,
            updates.anonymous_admin(10, STAFF, "Здравствуйте! Это администратор школы.", thread=thread),
            updates.anonymous_admin(11, STAFF, "Группа по субботам есть.", thread=thread, signature="Старший менеджер"),
            updates.staff(12, STAFF, 777, "Я бот другой системы", thread=thread, is_bot=True),
        )
        assert [int(c["message_id"]) for c in copies_to(fake_api, CLIENT)] == [10_010, 10_011]
        stored = await rows(service, "SELECT content, meta FROM messages WHERE role = 'manager' ORDER BY id")
        names = [(content, json.loads(meta) if isinstance(meta, str) else meta) for content, meta in stored]
        assert [(c, m["manager_name"], m["manager_id"]) for c, m in names] == [
            ("Здравствуйте! Это администратор школы.", "Менеджер", None),
            ("Группа по субботам есть.", "Старший менеджер", None),
        ]


async def test_a_clients_edit_is_shown_in_the_topic(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """Telegram cannot edit a copy of the client's message, so the topic gets a note under the copy;
    a repeated edit update adds nothing, and an edit of a message the managers never saw shows nothing."""
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        await deliver(service, updates.message(1, CLIENT, "Здравствуйте", message_id=501))  # the bot had this one
        thread = await hand_off(service, fake_api, CLIENT, 2)
        await deliver(service, updates.message(20, CLIENT, "Ребёнку 12 лет", message_id=520))
        (copy,) = [c.result["message_id"] for c in fake_api.calls_of("copyMessage") if int(c.params["chat_id"]) == STAFF]
        before = len(fake_api.sent_to(STAFF))
        edit = updates.edited(21, CLIENT, "Ребёнку 13 лет", message_id=520)
        await deliver(service, edit, updates.edited(22, CLIENT, "Привет", message_id=501))
        await service.deliver(edit)  # Telegram delivering the same update again
        await service.drain()
        notes = fake_api.sent_to(STAFF)[before:]
        assert [n["text"] for n in notes] == ["✏️ Клиент изменил сообщение: Ребёнку 13 лет"]
        assert int(notes[0]["message_thread_id"]) == thread
        assert notes[0]["reply_parameters"]["message_id"] == copy  # under the copy it changes
