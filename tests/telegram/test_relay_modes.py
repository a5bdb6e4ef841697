"""The manager relay's edges: two clients never crossed, release by button, command and idle time,
reply mode in a plain group, strangers, a blocked client, clients outside Telegram, the admin API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.telegram.relay.cards import RelayAction
from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import running_service
from tests.telegram.test_relay import CLIENT, MANAGER, OTHER, STAFF, copies_to, deliver, hand_off, relay_settings, rows

ADMIN = ("admin", "a-long-test-password")


def last_result(api: FakeBotAPI, method: str, chat_id: int) -> int:
    """The message id the fake gave the last ``method`` call to ``chat_id``."""
    return next(c.result["message_id"] for c in reversed(api.calls_of(method)) if int(c.params["chat_id"]) == chat_id)


async def test_two_clients_in_two_topics_are_never_crossed(tmp_path: Path, fake_api: FakeBotAPI, database_url: str) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api, database_url), fake_api) as service:
        first = await hand_off(service, fake_api, CLIENT, 1)
        second = await hand_off(service, fake_api, OTHER, 20)
        assert first != second
        await deliver(
            service,
            updates.message(30, CLIENT, "вопрос первого"),
            updates.message(31, OTHER, "вопрос второго"),
            updates.staff(32, STAFF, MANAGER, "ответ второму", thread=second),
            updates.staff(33, STAFF, MANAGER, "ответ первому", thread=first),
            updates.staff(34, STAFF, MANAGER, "ответ второму ещё", thread=second),
        )
        into = {int(c["message_id"]): int(c["message_thread_id"]) for c in copies_to(fake_api, STAFF)}
        assert into == {30: first, 31: second}
        assert [int(c["message_id"]) for c in copies_to(fake_api, CLIENT)] == [10_033]
        assert [int(c["message_id"]) for c in copies_to(fake_api, OTHER)] == [10_032, 10_034]
        # A later handoff reuses the topic.
        await deliver(service, updates.message(35, CLIENT, "/release-нет, просто текст"))
        assert len(fake_api.calls_of("createForumTopic")) == 2


async def test_release_by_button_command_and_close(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        (conversation_id,) = (await rows(service, "SELECT id FROM conversations"))[0]
        card = fake_api.sent_to(STAFF)[-1]
        data = RelayAction(action="release", conversation_id=conversation_id).pack()

        # The button: the client is told, the topic says so, the bot answers again.
        await deliver(service, updates.staff_button(5, STAFF, MANAGER, data, thread=thread, message_id=1000))
        assert "завершил разговор" in fake_api.sent_to(CLIENT)[-1]["text"]
        assert "возвращён боту" in fake_api.sent_to(STAFF)[-1]["text"] and card is not fake_api.sent_to(STAFF)[-1]
        await deliver(service, updates.message(6, CLIENT, "А сколько стоит ОГЭ по математике?"))
        assert copies_to(fake_api, STAFF) == [] and fake_api.sent_to(CLIENT)[-1]["text"]

        # A second handoff reuses the topic; /release in it returns the conversation again.
        await deliver(service, updates.message(7, CLIENT, "/manager"))
        assert len(fake_api.calls_of("createForumTopic")) == 1 and int(fake_api.sent_to(STAFF)[-1]["message_thread_id"]) == thread
        await deliver(service, updates.staff(8, STAFF, MANAGER, "/release", thread=thread))
        assert (await rows(service, "SELECT human_mode_until FROM conversations"))[0][0] is None

        # /close also closes the topic; the next handoff reopens it.
        await deliver(service, updates.message(9, CLIENT, "/manager"), updates.staff(10, STAFF, MANAGER, "/close@test_sales_bot", thread=thread))
        assert fake_api.topics[thread]["closed"] is True
        await deliver(service, updates.message(11, CLIENT, "/manager"))
        assert fake_api.topics[thread]["closed"] is False and len(fake_api.calls_of("reopenForumTopic")) == 1
        assert len(fake_api.calls_of("createForumTopic")) == 1


async def test_idle_conversation_returns_to_the_bot(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, handoff_idle_hours=1.5 / 3600)  # 1.5 s
    async with running_service(settings, fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        await deliver(service, updates.staff(5, STAFF, MANAGER, "Добрый день!", thread=thread))
        await asyncio.sleep(0.8)
        assert not any("не писал" in m["text"] for m in fake_api.sent_to(STAFF))  # the manager's message extended it
        await wait_for(lambda: any("не писал" in m["text"] for m in fake_api.sent_to(STAFF)), timeout=10)
        assert (await rows(service, "SELECT active FROM relay_topics"))[0][0] in (False, 0)
        await deliver(service, updates.message(6, CLIENT, "Какие есть курсы по физике?"))
        assert not copies_to(fake_api, STAFF) and fake_api.sent_to(CLIENT)[-1]["text"]  # the bot answers


async def test_reply_mode_in_a_plain_group(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    group = -4001
    settings = relay_settings(tmp_path, fake_api, manager_chat_id=group)
    async with running_service(settings, fake_api) as service:
        await deliver(service, updates.message(1, CLIENT, "/start"), updates.message(2, CLIENT, "/manager"))
        assert fake_api.calls_of("createForumTopic") == []
        card = fake_api.sent_to(group)[-1]
        assert "Режим: ответом на сообщение" in card["text"] and "message_thread_id" not in card
        card_id = last_result(fake_api, "sendMessage", group)
        await deliver(service, updates.message(3, CLIENT, "Можно ли оплатить частями?"))
        copy = copies_to(fake_api, group)[-1]
        assert int(copy["message_id"]) == 3 and copy["reply_parameters"]["message_id"] == card_id
        copied_id = last_result(fake_api, "copyMessage", group)
        # A reply to the copied message and a reply to the card both reach the client; a plain message does not.
        await deliver(
            service,
            updates.staff(4, group, MANAGER, "Да, есть рассрочка — расскажу", reply_to=copied_id),
            updates.staff(5, group, MANAGER, "И ещё: пришлю договор", reply_to=card_id),
            updates.staff(6, group, MANAGER, "Коллеги, кто на обеде?"),
        )
        assert [int(c["message_id"]) for c in copies_to(fake_api, CLIENT)] == [10_004, 10_005]


async def test_strangers_never_reach_a_client(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.update({STAFF, -1009999})
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        (conversation_id,) = (await rows(service, "SELECT id FROM conversations"))[0]
        card_id = last_result(fake_api, "sendMessage", STAFF)
        data = RelayAction(action="release", conversation_id=conversation_id).pack()
        await deliver(
            service,
            updates.staff(5, -1009999, 666, "Я не менеджер", thread=thread),  # another group, same thread id
            updates.staff(6, -1009999, 666, "и ответом", reply_to=card_id),
            updates.staff_button(7, -1009999, 666, data, thread=thread, message_id=card_id),
            updates.callback(8, CLIENT, data),  # a client pressing a forged release button
        )
        assert copies_to(fake_api, CLIENT) == []
        assert (await rows(service, "SELECT active FROM relay_topics"))[0][0] in (True, 1)
        assert (await rows(service, "SELECT count(*) FROM messages WHERE role = 'manager'"))[0][0] == 0


async def test_a_client_who_blocked_the_bot_gives_a_notice_not_a_retry_loop(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        fake_api.fail_next("copyMessage", 403, "Forbidden: bot was blocked by the user")
        await deliver(service, updates.staff(5, STAFF, MANAGER, "Вы здесь?", thread=thread))
        assert "заблокировал бота" in fake_api.sent_to(STAFF)[-1]["text"]
        assert (await rows(service, "SELECT attempts, status FROM telegram_updates WHERE update_id = 5"))[0] == (1, "done")
        assert len(fake_api.calls_of("copyMessage")) == 1


async def test_429_on_the_group_is_waited_out(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        fake_api.fail_next("copyMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        await service.deliver(updates.message(5, CLIENT, "Добрый день"))
        # The update takes the 1 s wait plus a turn: on a loaded machine that is several seconds, so the
        # bound is wide. What is checked does not depend on speed: the order and the gap below.
        await service.settle(5, timeout=60)
        calls = [c for c in fake_api.calls_of("copyMessage") if int(c.params["chat_id"]) == STAFF]
        refused, accepted = calls  # one refused, one sent: no more (a retried update would copy again)
        assert refused.result is None and accepted.result is not None
        # The fake stamps a call when it arrives: the retry came retry_after after the 429 was answered,
        # so a slow machine only makes the gap longer.
        assert accepted.at - refused.at >= 0.95 and int(accepted.params["message_thread_id"]) == thread


async def test_api_client_gets_the_managers_answer_on_the_next_request(tmp_path: Path, fake_api: FakeBotAPI, database_url: str) -> None:
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, database_url, assistant_api_token="api-token-123")
    auth = {"Authorization": "Bearer api-token-123"}
    async with running_service(settings, fake_api) as service:
        client = service.client
        first = await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-42", "message": "Здравствуйте, у меня вопрос по оплате"})
        assert first.json()["manager_messages"] == []
        handoff = await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-42", "choice": "handoff"})
        conversation_id = handoff.json()["conversation_id"]
        await service.drain()  # the card and the client's messages for the topic are queued relay jobs
        card = fake_api.sent_to(STAFF)[-1]
        assert "не из Telegram" in card["text"]
        thread = int(card["message_thread_id"])
        await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-42", "message": "Жду ответа"})
        await service.drain()
        assert any("Клиент: Жду ответа" in m["text"] for m in fake_api.sent_to(STAFF))
        await deliver(service, updates.staff(5, STAFF, MANAGER, "Здравствуйте! Счёт пришлю на почту.", thread=thread))
        assert fake_api.calls_of("copyMessage") == []
        answer = await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-42", "message": "Спасибо"})
        body = answer.json()
        assert body["silent"] is True and body["conversation_id"] == conversation_id
        assert [(m["role"], m["text"], m["manager_name"]) for m in body["manager_messages"]] == [
            ("manager", "Здравствуйте! Счёт пришлю на почту.", f"Manager{MANAGER} Sales")
        ]
        again = await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-42", "message": "Ок"})
        assert again.json()["manager_messages"] == []  # carried once

        # The admin API answers the same way (as the logged-in account, whatever name the body claims)
        # and shows the manager messages in the transcript.
        sent = await client.post(f"/admin/conversations/{conversation_id}/messages", auth=ADMIN, json={"text": "Ещё вопрос решён", "name": "Ирина"})
        assert sent.json() == {"ok": True, "conversation_id": conversation_id, "delivery": "waiting"}
        transcript = (await client.get(f"/admin/conversations/{conversation_id}", auth=ADMIN)).json()
        managers = [(m["content"], m["meta"]["manager_name"]) for m in transcript["messages"] if m["role"] == "manager"]
        assert managers == [("Здравствуйте! Счёт пришлю на почту.", f"Manager{MANAGER} Sales"), ("Ещё вопрос решён", "admin")]
        later = await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-42", "message": "?"})
        assert [m["text"] for m in later.json()["manager_messages"]] == ["Ещё вопрос решён"]


async def test_admin_answers_and_releases_a_telegram_client(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        thread = await hand_off(service, fake_api, CLIENT, 1)
        (conversation_id,) = (await rows(service, "SELECT id FROM conversations"))[0]
        client = service.client
        sent = await client.post(f"/admin/conversations/{conversation_id}/messages", auth=ADMIN, json={"text": "Добрый день! <b>Ирина</b>"})
        assert sent.json()["delivery"] == "delivered"
        assert fake_api.sent_to(CLIENT)[-1]["text"] == "Добрый день! &lt;b&gt;Ирина&lt;/b&gt;"
        assert "(админка)" in fake_api.sent_to(STAFF)[-1]["text"] and int(fake_api.sent_to(STAFF)[-1]["message_thread_id"]) == thread
        assert (await client.post("/admin/conversations/99999/messages", auth=ADMIN, json={"text": "x"})).status_code == 404
        assert (await client.post(f"/admin/conversations/{conversation_id}/messages", auth=ADMIN, json={"text": "  "})).status_code == 422
        released = await client.post(f"/admin/conversations/{conversation_id}/release", auth=ADMIN)
        assert released.json()["in_human_mode"] is False
        await service.drain()  # the client's notice and the topic's note are a queued relay job
        assert "завершил разговор" in fake_api.sent_to(CLIENT)[-1]["text"] and "администратор" in fake_api.sent_to(STAFF)[-1]["text"]


async def test_a_group_where_the_bot_cannot_make_topics_gets_the_card_in_reply_mode(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    fake_api.fail_next("createForumTopic", 400, "Bad Request: not enough rights to create a topic")
    async with running_service(relay_settings(tmp_path, fake_api), fake_api) as service:
        await deliver(service, updates.message(1, CLIENT, "/start"), updates.message(2, CLIENT, "/manager"))
        card = fake_api.sent_to(STAFF)[-1]
        assert "Режим: ответом на сообщение" in card["text"] and "message_thread_id" not in card
        await deliver(service, updates.staff(3, STAFF, MANAGER, "Здравствуйте!", reply_to=last_result(fake_api, "sendMessage", STAFF)))
        assert [int(c["message_id"]) for c in copies_to(fake_api, CLIENT)] == [10_003]


async def test_relay_off_keeps_the_runbook_card(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, manager_relay_enabled=False)
    async with running_service(settings, fake_api) as service:
        await deliver(service, updates.message(1, CLIENT, "/start"), updates.message(2, CLIENT, "/manager"), updates.message(3, CLIENT, "алло"))
        card = fake_api.sent_to(STAFF)[-1]
        assert "Нужен менеджер" in card["text"] and "reply_markup" not in card and "message_thread_id" not in card
        assert fake_api.calls_of("createForumTopic") == [] and fake_api.calls_of("copyMessage") == []
        await deliver(service, updates.staff(4, STAFF, MANAGER, "ответ"))
        assert fake_api.calls_of("copyMessage") == []


async def test_api_client_retrying_a_message_is_shown_to_managers_once(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """The Mini App chat retries a dropped stream with the same idempotency_key: one line in the topic."""
    fake_api.forums.add(STAFF)
    settings = relay_settings(tmp_path, fake_api, assistant_api_token="api-token-123")
    auth = {"Authorization": "Bearer api-token-123"}
    async with running_service(settings, fake_api) as service:
        client = service.client
        await client.post("/api/assistant/ask", headers=auth, json={"user_id": "site-43", "choice": "handoff"})
        body = {"user_id": "site-43", "message": "Когда перезвоните?", "idempotency_key": "retry-key-0001"}
        first = await client.post("/api/assistant/ask", headers=auth, json=body)
        again = await client.post("/api/assistant/ask", headers=auth, json=body)
        assert first.status_code == again.status_code == 200
        await service.drain()
        assert [m["text"] for m in fake_api.sent_to(STAFF)].count("👤 Клиент: Когда перезвоните?") == 1
