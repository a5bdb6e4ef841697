"""Consent withdrawal (152-ФЗ): one method for every channel (Telegram /forget and its button, typed
«удалите мои данные» in the bot, the API and the Mini App chat, the admin API). A withdrawal is its
own consent record, blocks leads and CRM pushes until consent is given again, and deletes or
anonymises the user's personal data: messages, undelivered leads and their outbox rows, the update
queue and the dead letters (read back row by row here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapters.crm.outbox import OutboxWorker
from adapters.storage.models import Lead
from adapters.wiring import Runtime, build_runtime
from agent.errors import ConsentRequired
from agent.leads import LeadRequest
from agent.ports import CrmPushResult, LeadPayload
from agent.withdrawal import UserRef
from tests.assistant_helpers import FakeCRM
from tests.conftest import app_client, make_settings
from tests.fakes import updates
from tests.storage_helpers import stored_dialogue
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import Service, fake_api, running_service, telegram_settings
from tests.webapp_helpers import PLAIN_TELEGRAM_ID, TEST_BOT_TOKEN, sign_init_data

__all__ = ["fake_api"]  # the fake Bot API fixture, shared with the Telegram tests

USER, OTHER_USER = 900, 901
PHONE = "+79161234567"
OTHER_PHONE = "+7 916 765-43-21"
BASIC = ("admin", "a-long-test-password")
TOKEN = "assistant-token-0123456789"


async def say(service: Service, update: dict[str, Any]) -> list[dict[str, Any]]:
    before = len(service.api.calls_of("sendMessage"))
    await service.deliver(update)
    await service.settle(update["update_id"])
    return [c.params for c in service.api.calls_of("sendMessage")[before:]]


async def rows(db_owner: Service | Runtime, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    runtime = db_owner.runtime if isinstance(db_owner, Service) else db_owner
    async with runtime.db.engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(text(sql), params)).all()]


def _buttons(message: dict[str, Any]) -> list[str]:
    return [b["callback_data"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


class RecordingCRM(FakeCRM):
    name = "amo"  # claims the outbox rows the leads below were queued for

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[LeadPayload] = []

    async def push_lead(self, lead: LeadPayload) -> CrmPushResult:
        self.pushed.append(lead)
        return CrmPushResult(crm_ids={"lead_id": f"l-{lead.lead_id}"})


@pytest.fixture
async def bot(tmp_path: Path, fake_api: FakeBotAPI, database_url: str) -> AsyncIterator[Service]:
    settings = telegram_settings(tmp_path, fake_api.base_url, database_url)
    async with running_service(settings, fake_api) as running:
        yield running


async def _lead_with_consent(bot: Service, first_update: int) -> None:
    await say(bot, updates.callback(first_update, USER, "contact:start"))
    await say(bot, updates.callback(first_update + 1, USER, "consent:yes"))
    (created,) = await say(bot, updates.contact(first_update + 2, USER, PHONE))
    assert "Заявка №" in created["text"]


@pytest.mark.parametrize("how", ["/forget", "Удалите мои данные, пожалуйста"])
async def test_the_issue_repro_a_withdrawal_blocks_the_next_lead(bot: Service, how: str) -> None:
    """Issue 20, finding 1, in webhook mode: consent yes, a phone → lead; /forget (or the typed
    request), confirm; another phone → the consent prompt again and no lead."""
    await _lead_with_consent(bot, 1)
    assert len(await rows(bot, "SELECT id FROM leads")) == 1
    (question,) = await say(bot, updates.message(4, USER, how))
    assert "Удалить" in question["text"]
    (done,) = await say(bot, updates.callback(5, USER, _buttons(question)[0]))
    assert "согласие на обработку персональных данных отозвано" in done["text"]
    assert "заявку №1, которую ещё не получил менеджер" in done["text"]  # no CRM: the lead was only here
    sent = await say(bot, updates.message(6, USER, f"Мой номер {OTHER_PHONE}"))
    joined = " ".join(m["text"] for m in sent)
    assert "Заявка №" not in joined and "согласие на обработку персональных данных" in joined
    assert "consent:yes" in [b for m in sent for b in _buttons(m)]
    assert await rows(bot, "SELECT id FROM leads") == []
    records = await rows(bot, "SELECT kind, granted, event, channel FROM consent_records ORDER BY id")
    assert records == [("personal_data", True, "granted", "telegram"), ("personal_data", False, "withdrawn", "telegram")]


async def test_queue_payloads_and_dead_letters_are_scrubbed(bot: Service, capsys: pytest.CaptureFixture[str]) -> None:
    """The processed rows kept 48 h for idempotency and the dead letters held the phone; after the
    withdrawal each row is still there (a redelivery is still recognised) without any personal data."""
    broken = updates.message(1, USER, f"Мой номер {PHONE}")
    broken["message"]["date"] = "вчера"  # not a valid Telegram update: dead-lettered at once
    await say(bot, broken)
    await _lead_with_consent(bot, 2)
    await say(bot, updates.message(10, OTHER_USER, f"Мой номер {OTHER_PHONE}"))
    query = "SELECT update_id, status, payload FROM telegram_updates WHERE chat_id = :chat ORDER BY update_id"
    before = await rows(bot, query, chat=USER)
    assert [(u, s) for u, s, _ in before] == [(1, "dead"), (2, "done"), (3, "done"), (4, "done")]
    assert sum("9161234567" in p for _, _, p in before) == 2 and all("Parent900" in p for _, _, p in before)

    (question,) = await say(bot, updates.message(5, USER, "/forget"))
    await say(bot, updates.callback(6, USER, _buttons(question)[0]))

    after = await rows(bot, query, chat=USER)
    with capsys.disabled():  # the closing note's evidence: the rows before and after
        for label, found in (("before", before), ("after", after)):
            print(f"\n{label}: {[(u, s) for u, s, _ in found]}; payloads with the phone: "
                  f"{sum('9161234567' in p for _, _, p in found)}, with the name: {sum('Parent900' in p for _, _, p in found)}")
    assert [(u, s) for u, s, _ in after] == [(1, "dead"), (2, "done"), (3, "done"), (4, "done"), (5, "done"), (6, "done")]
    assert all(json.loads(p) == {"update_id": u} for u, _, p in after)
    (dead_error,) = await rows(bot, "SELECT last_error FROM telegram_updates WHERE update_id = 1")
    assert dead_error == ("consent withdrawn: payload removed",)
    (untouched,) = await rows(bot, query, chat=OTHER_USER)
    assert "765-43-21" in untouched[2]  # another user's rows are theirs
    # A redelivery of an old update within the 48 h is still recognised and not processed again.
    assert await say(bot, updates.contact(4, USER, PHONE)) == []
    assert await rows(bot, "SELECT id FROM leads WHERE user_id = (SELECT id FROM users WHERE external_id = '900')") == []


# ---------------------------------------------------------------- the core on both databases


async def _consenting_user(runtime: Runtime, external_id: str) -> int:
    user = await runtime.users.get_or_create("telegram", external_id, first_name="Мария", username="maria")
    assert runtime.lead_service is not None and user.id is not None
    await runtime.lead_service.record_consent(user_id=user.id, brand="kmipt", granted=True, channel="telegram", telegram_id=int(external_id))
    return user.id


async def test_delivered_leads_are_kept_anonymised_and_nothing_is_pushed_again(runtime: Runtime) -> None:
    await stored_dialogue(runtime.store, "910", [(f"мой телефон {PHONE}", "Спасибо!")], first_name="Мария")
    user_id = await _consenting_user(runtime, "910")
    delivered = await runtime.leads.create(Lead(user_id=user_id, brand="kmipt", channel="telegram", phone=PHONE, name="Мария"), outbox_provider="amo")
    (claimed,) = await runtime.outbox.claim("amo", limit=10, lease_seconds=60)
    await runtime.outbox.delivered(claimed, {"contact_id": "c-77", "lead_id": "l-88"}, "l-88")
    pending = await runtime.leads.create(
        Lead(user_id=user_id, brand="kmipt", channel="telegram", phone=PHONE, manager_note="перезвоните после 18"), outbox_provider="amo"
    )
    assert await runtime.outbox.counts() == {"delivered": 1, "pending": 1}

    assert runtime.assistant is not None
    withdrawn = await runtime.assistant.withdraw_consent(UserRef(user_id=user_id), "admin")

    erasure = withdrawn.erasure
    assert erasure is not None and erasure.leads_deleted == [pending.id] and erasure.outbox_rows_deleted == 1
    assert [(k.lead_id, k.crm_ids) for k in erasure.leads_kept] == [(delivered.id, {"contact_id": "c-77", "lead_id": "l-88"})]
    assert erasure.messages == 2 and erasure.conversations == 1
    assert f"Заявку №{delivered.id} менеджер уже получил" in withdrawn.text and "30 дней" in withdrawn.text
    assert "edu@kmipt.ru" in withdrawn.text and "сейчас" not in withdrawn.text.lower()
    assert await rows(runtime, "SELECT id, phone, name, manager_note, crm_id FROM leads") == [(delivered.id, "", None, None, "l-88")]
    assert await runtime.outbox.counts() == {"delivered": 1}
    assert await rows(runtime, "SELECT count(*) FROM messages") == [(0,)]
    assert await rows(runtime, "SELECT first_name, username FROM users WHERE id = :u", u=user_id) == [(None, None)]

    # No lead and no CRM push until consent is given again.
    crm = RecordingCRM()
    worker = OutboxWorker(crm, runtime.outbox, runtime.leads, runtime.messages)
    assert await worker.run_once() == 0 and crm.pushed == []
    request = LeadRequest(user_id=user_id, conversation_id=None, brand="kmipt", channel="api", phone=PHONE)
    assert runtime.lead_service is not None
    with pytest.raises(ConsentRequired):
        await runtime.lead_service.create(request, now=datetime.now(UTC))
    await runtime.lead_service.record_consent(user_id=user_id, brand="kmipt", granted=True, channel="miniapp", telegram_id=910)
    assert (await runtime.lead_service.create(request, now=datetime.now(UTC) + timedelta(seconds=1))).created
    # With consent again, a new lead queued for the CRM is pushed (the worker above was not idle by accident).
    await runtime.leads.create(Lead(user_id=user_id, brand="kmipt", channel="api", phone=PHONE), outbox_provider="amo")
    assert await worker.run_once() == 1 and [lead.phone for lead in crm.pushed] == [PHONE]


async def test_withdrawing_twice_or_for_an_unknown_user(runtime: Runtime) -> None:
    assert runtime.assistant is not None
    unknown = await runtime.assistant.withdraw_consent(UserRef(identity="api", external_id="nobody"), "api")
    assert unknown.erasure is None and await rows(runtime, "SELECT count(*) FROM consent_records") == [(0,)]
    user_id = await _consenting_user(runtime, "911")
    for _ in range(2):
        again = await runtime.assistant.withdraw_consent(UserRef(identity="telegram", external_id="911"), "telegram")
        assert again.erasure is not None and again.erasure.user_id == user_id
    events = await rows(runtime, "SELECT event FROM consent_records WHERE user_id = :u ORDER BY id", u=user_id)
    assert events == [("granted",), ("withdrawn",), ("withdrawn",)]


# ---------------------------------------------------------------- the HTTP channels


@pytest.fixture
async def http(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = make_settings(
        tmp_path, database_url=database_url, assistant_api_token=TOKEN, telegram_bot_token=TEST_BOT_TOKEN,
        startup_preflight_mode="off",
    )
    runtime = build_runtime(settings)
    async for client in app_client(settings, runtime):
        yield client, runtime


def _caller(channel: str) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and body fields of an API client or a Mini App user."""
    if channel == "api":
        return {"Authorization": f"Bearer {TOKEN}"}, {"user_id": "crm-42"}
    init = sign_init_data(TEST_BOT_TOKEN, user={"id": PLAIN_TELEGRAM_ID, "first_name": "Ольга"})
    return {"Authorization": f"tma {init}"}, {}


def _asker(client: httpx.AsyncClient, channel: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """POST /api/assistant/ask as the channel's caller; every answer must be a 200."""
    headers, who = _caller(channel)

    async def ask(**body: Any) -> dict[str, Any]:
        response = await client.post("/api/assistant/ask", headers=headers, json={**who, **body})
        assert response.status_code == 200, response.text
        return response.json()

    return ask


@pytest.mark.parametrize("channel", ["api", "miniapp"])
async def test_api_and_miniapp_chat_withdraw_like_the_bot(http: tuple[httpx.AsyncClient, Runtime], channel: str) -> None:
    client, runtime = http
    ask = _asker(client, channel)

    asked = await ask(message=f"Мой номер {PHONE}")
    assert [q["payload"] for q in asked["quick_replies"]] == ["consent:yes", "consent:no"]
    assert (await ask(choice="consent:yes"))["lead_id"] == 1
    confirm = await ask(message="/forget" if channel == "miniapp" else "Прошу удалить мои персональные данные")
    assert [q["payload"] for q in confirm["quick_replies"]] == ["forget:yes", "forget:no"]
    done = await ask(choice="forget:yes")
    assert "отозвано" in done["text"] and "заявку №1" in done["text"]
    assert await rows(runtime, "SELECT count(*) FROM messages") == [(0,)]
    assert await rows(runtime, "SELECT count(*) FROM leads") == [(0,)]
    assert await rows(runtime, "SELECT event, channel FROM consent_records ORDER BY id") == [("granted", channel), ("withdrawn", channel)]
    again = await ask(message=f"Мой номер {OTHER_PHONE}")
    assert again["lead_id"] is None and [q["payload"] for q in again["quick_replies"]] == ["consent:yes", "consent:no"]


@pytest.mark.parametrize("channel", ["api", "miniapp"])
async def test_a_withdrawal_is_heard_while_a_manager_has_the_conversation(
    http: tuple[httpx.AsyncClient, Runtime], channel: str
) -> None:
    """While a manager has the conversation the bot is silent, but a withdrawal is the client's right in
    every channel: outside Telegram (no /forget command there) the typed request must still work."""
    client, runtime = http
    ask = _asker(client, channel)

    await ask(message=f"Мой номер {PHONE}")
    await ask(choice="consent:yes")
    assert "handoff" in (await ask(choice="handoff"))["actions"]
    assert (await ask(message="ок, жду"))["silent"]  # the handoff holds for neutral messages
    confirm = await ask(message="удалите мои данные")
    assert [q["payload"] for q in confirm["quick_replies"]] == ["forget:yes", "forget:no"]
    done = await ask(choice="forget:yes")
    assert "отозвано" in done["text"]
    assert await rows(runtime, "SELECT count(*) FROM messages") == [(0,)]
    assert await rows(runtime, "SELECT event FROM consent_records ORDER BY id") == [("granted",), ("withdrawn",)]


async def test_admin_forget_and_the_consent_list(http: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = http
    user_id = await _consenting_user(runtime, "920")
    other = await _consenting_user(runtime, "921")
    delivered = await runtime.leads.create(Lead(user_id=user_id, brand="kmipt", channel="telegram", phone=PHONE), outbox_provider="amo")
    (claimed,) = await runtime.outbox.claim("amo", limit=10, lease_seconds=60)
    await runtime.outbox.delivered(claimed, {"lead_id": "l-5"}, "l-5")

    init = sign_init_data(TEST_BOT_TOKEN, user={"id": PLAIN_TELEGRAM_ID, "first_name": "Ольга"})
    refused: list[tuple[dict[str, Any], int]] = [
        ({}, 401), ({"auth": ("admin", "wrong")}, 401), ({"headers": {"Authorization": f"tma {init}"}}, 403)  # not an admin
    ]
    for auth, status in refused:
        assert (await client.post(f"/admin/users/{user_id}/forget", **auth)).status_code == status
        assert (await client.get("/admin/consents", **auth)).status_code == status
    assert await rows(runtime, "SELECT count(*) FROM consent_records WHERE event = 'withdrawn'") == [(0,)]
    assert (await client.post("/admin/users/99999/forget", auth=BASIC)).status_code == 404

    response = await client.post(f"/admin/users/{user_id}/forget", auth=BASIC)
    assert response.status_code == 200, response.text
    assert response.json()["erasure"]["leads_kept"] == [{"lead_id": delivered.id, "crm_ids": {"lead_id": "l-5"}}]

    listed = (await client.get("/admin/consents", auth=BASIC)).json()
    assert [(i["user_id"], i["event"]) for i in listed["items"]] == [(user_id, "withdrawn"), (other, "granted"), (user_id, "granted")]
    withdrawn = (await client.get("/admin/consents", params={"event": "withdrawn"}, auth=BASIC)).json()
    assert withdrawn["total"] == 1 and withdrawn["items"][0]["channel"] == "admin"
    assert withdrawn["items"][0]["crm_leads"] == [{"lead_id": delivered.id, "crm_id": "l-5"}]
    mine = (await client.get("/admin/consents", params={"user_id": other, "event": "granted"}, auth=BASIC)).json()
    assert [i["user_id"] for i in mine["items"]] == [other]
    assert (await client.get("/admin/consents", params={"event": "maybe"}, auth=BASIC)).status_code == 422


# ---------------------------------------------------------------- the manager relay's staff chat

STAFF, MANAGER = -1001234567890, 9001


@pytest.mark.parametrize("forum", [True, False])
async def test_staff_chat_copies_are_removed(tmp_path: Path, fake_api: FakeBotAPI, forum: bool) -> None:
    """The client's messages copied into the staff chat: a forum topic is deleted whole, in a plain
    group the card and the copies are deleted; the managers' updates in the topic are scrubbed too."""
    staff = STAFF if forum else -4001
    if forum:
        fake_api.forums.add(staff)
    settings = telegram_settings(tmp_path, fake_api.base_url, manager_chat_id=staff)
    async with running_service(settings, fake_api) as service:
        await say(service, updates.message(1, USER, "/start"))
        await say(service, updates.message(2, USER, "/manager"))
        await say(service, updates.message(3, USER, f"Мой номер {PHONE}, перезвоните"))
        links = await rows(service, "SELECT message_id FROM relay_links ORDER BY id")
        assert len(links) == 2  # the card and the copied message
        thread = next(iter(fake_api.topics)) if forum else None
        await say(service, updates.staff(4, staff, MANAGER, "Перезвоню, Parent900", thread=thread))
        (question,) = await say(service, updates.message(5, USER, "/forget"))
        await say(service, updates.callback(6, USER, _buttons(question)[0]))

        if forum:
            assert [(int(c.params["chat_id"]), int(c.params["message_thread_id"])) for c in fake_api.calls_of("deleteForumTopic")] == [(staff, thread)]
            (manager_update,) = await rows(service, "SELECT payload FROM telegram_updates WHERE update_id = 4")
            assert json.loads(manager_update[0]) == {"update_id": 4}
        else:
            (deleted,) = [c.params for c in fake_api.calls_of("deleteMessages")]
            assert int(deleted["chat_id"]) == staff and sorted(int(m) for m in deleted["message_ids"]) == sorted(m for (m,) in links)
        assert await rows(service, "SELECT count(*) FROM relay_links") == [(0,)]
        assert await rows(service, "SELECT count(*) FROM relay_topics") == [(0,)]
