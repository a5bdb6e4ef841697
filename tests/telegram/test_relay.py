"""The manager relay through real aiogram, the real assistant (offline policy) and the fake Bot API:
a topic per client in a forum staff group, messages both ways with media, release, reply mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from adapters.telegram.relay.cards import RelayAction
from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import Service, running_service, telegram_settings

STAFF = -1001234567890
CLIENT, OTHER = 701, 702
MANAGER = 9001


def relay_settings(tmp_path: Path, api: FakeBotAPI, database_url: str | None = None, **overrides: Any):
    return telegram_settings(tmp_path, api.base_url, database_url, **{"manager_chat_id": STAFF, **overrides})


async def deliver(service: Service, *items: dict[str, Any]) -> None:
    for item in items:
        await service.deliver(item)
        await service.settle(item["update_id"])


async def rows(service: Service, sql: str, **params: Any) -> list[Any]:
    async with service.runtime.db.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def copies_to(api: FakeBotAPI, chat_id: int) -> list[dict[str, Any]]:
    return [c.params for c in api.calls_of("copyMessage") if int(c.params["chat_id"]) == chat_id]


def staff_posts(api: FakeBotAPI) -> list[dict[str, Any]]:
    return api.sent_to(STAFF)


async def hand_off(service: Service, api: FakeBotAPI, user: int, first_update: int) -> int:
    """The client picks grade 9 and OGE, then asks for a manager; returns the topic's thread id."""
    await deliver(
        service,
        updates.message(first_update, user, "/start"),
        updates.callback(first_update + 1, user, "grade:9"),
        updates.callback(first_update + 2, user, "goal:oge"),
        updates.message(first_update + 3, user, "/manager"),
    )
    created = [c.params for c in api.calls_of("createForumTopic")]
    return next(t for t, topic in api.topics.items() if topic["name"] == created[-1]["name"])


async def test_handoff_opens_a_topic_and_messages_flow_both_ways_with_media(
    tmp_path: Path, fake_api: FakeBotAPI, database_url: str
) -> None:
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, database_url, admin_webapp_url="https://bot.example.org/admin/miniapp")
    async with running_service(settings, fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        (conversation_id,) = (await rows(service, "SELECT id FROM conversations"))[0]
        topic = fake_api.topics[thread]
        assert topic["chat_id"] == STAFF and topic["name"] == f"Parent{CLIENT} · 9 кл · ОГЭ · #{conversation_id}"
        card = staff_posts(fake_api)[-1]
        assert int(card["message_thread_id"]) == thread
        assert "Нужен менеджер" in card["text"] and "Последние сообщения" in card["text"] and "Режим: тема" in card["text"]
        assert "согласие на обработку данных: нет" in card["text"]
        assert f'href="https://bot.example.org/admin/conversations/{conversation_id}"' in card["text"]
        assert card["reply_markup"]["inline_keyboard"][1][0]["url"] == "https://bot.example.org/admin/miniapp"
        button = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        assert RelayAction.unpack(button).conversation_id == conversation_id

        # Client -> topic: text and media copied; the handoff's reply was the one notice, the bot
        # says nothing more.
        before = len(fake_api.sent_to(CLIENT))
        assert "Передаю разговор менеджеру" in fake_api.sent_to(CLIENT)[-1]["text"]
        await deliver(
            service,
            updates.message(5, CLIENT, "Здравствуйте, а можно перейти в другую группу?"),
            updates.photo(6, CLIENT),
            updates.document(7, CLIENT),
            updates.voice(8, CLIENT),
            updates.contact(9, CLIENT, "+79991234567"),
        )
        copied = copies_to(fake_api, STAFF)
        # The copies are made inside each update (not a queued job), so they are all there once the
        # updates are done; if not, say what became of the updates and what the client got.
        assert [int(c["message_id"]) for c in copied] == [5, 6, 7, 8, 9], (
            await rows(service, "SELECT update_id, status, attempts, last_error FROM telegram_updates ORDER BY update_id"),
            await rows(service, "SELECT id, human_mode_until FROM conversations"),
            [m["text"][:80] for m in fake_api.sent_to(CLIENT)[before:]],
        )
        assert all(int(c["message_thread_id"]) == thread and int(c["from_chat_id"]) == CLIENT for c in copied)
        assert fake_api.sent_to(CLIENT)[before:] == []

        # Topic -> client: text and a photo copied; stored as manager messages with who wrote them.
        await deliver(
            service,
            updates.staff(10, STAFF, MANAGER, "Ольга, добрый день! Да, можно.", thread=thread),
            updates.staff(11, STAFF, MANAGER, thread=thread, photo=[{"file_id": "p", "file_unique_id": "pu", "width": 1, "height": 1}], caption="Расписание"),
        )
        to_client = copies_to(fake_api, CLIENT)
        assert [(int(c["from_chat_id"]), int(c["message_id"])) for c in to_client] == [(STAFF, 10_010), (STAFF, 10_011)]
        stored = await rows(service, "SELECT content, meta FROM messages WHERE role = 'manager' ORDER BY id")
        assert [r[0] for r in stored] == ["Ольга, добрый день! Да, можно.", "[фото] Расписание"]
        meta = stored[0][1] if isinstance(stored[0][1], dict) else __import__("json").loads(stored[0][1])
        assert meta["manager_id"] == MANAGER and meta["manager_name"] == f"Manager{MANAGER} Sales" and meta["delivery"] == "delivered"

        # Not relayed: the bot's own messages, service messages, commands; the same update twice.
        await deliver(
            service,
            updates.staff(12, STAFF, 4242, "бот пишет сам", thread=thread, is_bot=True),
            updates.staff(13, STAFF, MANAGER, thread=thread, forum_topic_edited={"name": "Новое имя"}),
            updates.staff(14, STAFF, MANAGER, "/unknown", thread=thread),
        )
        await service.deliver(updates.staff(10, STAFF, MANAGER, "Ольга, добрый день! Да, можно.", thread=thread))
        assert len(copies_to(fake_api, CLIENT)) == 2
        user_rows = await rows(service, "SELECT content FROM messages WHERE role = 'user' ORDER BY id")
        assert [r[0] for r in user_rows][-5:] == [
            "Здравствуйте, а можно перейти в другую группу?", "[фото]", "[документ] Справка из школы",
            "[голосовое сообщение]", "[пользователь отправил свой номер телефона]",
        ]
