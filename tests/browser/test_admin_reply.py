"""The admin Mini App answering a client (issue 16, item 7): an admin opens a handed-off conversation,
writes, and the answer is delivered like a message in the client's staff topic. The service runs with the
manager relay on, its Bot API the fake one (tests/fakes/telegram_api.py), so the test sees what reached
the client's Telegram chat and the topic."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect

from adapters.http.app import create_app
from adapters.wiring import build_runtime
from tests.browser.conftest import ADMIN, DIST, axe_violations, opened, serving, shot, theme_name
from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import SECRET, telegram_settings
from tests.webapp_helpers import ADMIN_TELEGRAM_ID, TEST_BOT_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="package")]
THEMES = [pytest.param(False, id="light"), pytest.param(True, id="dark")]
STAFF = -1001234567890
ADMIN_IRINA = {"id": ADMIN_TELEGRAM_ID, "first_name": "Ирина", "last_name": "Соколова"}
ANSWER = "Здравствуйте! Я менеджер школы, помогу с записью. Удобно, если я пришлю расписание сюда?"


class RelayService:
    def __init__(self, base: str, api: FakeBotAPI, webhook: str) -> None:
        self.base, self.api, self.webhook = base, api, webhook
        self.update_ids = itertools.count(1)

    async def client_writes(self, user: int, *texts: str) -> None:
        """What a parent sends the bot, through the webhook and the durable queue like Telegram's updates;
        each waits for the bot's answer."""
        async with httpx.AsyncClient(base_url=self.base) as client:
            for text in texts:
                before = len(self.api.sent_to(user))
                update = updates.message(next(self.update_ids), user, text)
                response = await client.post(self.webhook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
                assert response.status_code == 200, response.text
                await wait_for(lambda: len(self.api.sent_to(user)) > before, timeout=15, what=f"the bot's answer to {text!r}")

    def texts_to(self, chat_id: int) -> list[str]:
        return [str(m.get("text", "")) for m in self.api.sent_to(chat_id)]


@pytest_asyncio.fixture(scope="module", loop_scope="package")
async def relay_service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayService]:
    api = FakeBotAPI()
    await api.start()
    api.forums.add(STAFF)
    settings = telegram_settings(
        tmp_path_factory.mktemp("admin-reply"), api.base_url, telegram_bot_token=TEST_BOT_TOKEN, manager_chat_id=STAFF,
        admin_miniapp_enabled=True, admin_telegram_ids=[ADMIN_TELEGRAM_ID], webapp_dist_path=str(DIST),
    )
    runtime = build_runtime(settings)
    async with serving(create_app(settings, runtime=runtime)) as base:
        yield RelayService(base, api, settings.telegram_webhook_path)
    await api.stop()


async def open_conversation(page: Page, name: str) -> None:
    await page.get_by_role("tab", name="Диалоги").click()
    await page.locator("button.conversation", has_text=name).first.click()
    await expect(page.get_by_role("heading", name="Диалог №")).to_be_visible()


@pytest.mark.parametrize("dark", THEMES)
async def test_an_admin_answers_a_client_from_the_admin_app(browser: Browser, relay_service: RelayService, dark: bool) -> None:
    theme = theme_name(dark)
    client, first_name = 7301 + int(dark), f"Parent{7301 + int(dark)}"
    await relay_service.client_writes(client, "Здравствуйте! Дочке 9 класс, хотим на ОГЭ по математике", "/manager")
    topic_notes_before = len(relay_service.texts_to(STAFF))
    fail_once = {"armed": False}

    async def flaky(route: Route) -> None:
        if fail_once["armed"]:
            fail_once["armed"] = False
            await route.abort("connectionreset")  # the request never reached the server
        else:
            await route.continue_()

    async with opened(browser, f"{relay_service.base}/admin/miniapp", telegram_user=ADMIN_IRINA, dark=dark) as page:
        await page.route("**/admin/conversations/*/messages", flaky)
        await open_conversation(page, first_name)
        text = page.get_by_role("textbox", name="Ответ клиенту")
        await expect(text).to_be_enabled()
        await text.fill(ANSWER)
        await page.get_by_role("button", name="Отправить").dblclick()  # a double click sends once
        sent = page.locator(".bubble-outgoing").last
        await expect(sent).to_contain_text(ANSWER)
        await expect(sent.locator(".bubble-status")).to_have_text("Доставлено", timeout=15_000)
        await expect(text).to_have_value("")
        await shot(page, f"admin-5-answer-{theme}")
        assert await axe_violations(page) == []

        fail_once["armed"] = True
        await text.fill("Расписание пришлю в течение дня.")
        await text.press("Control+Enter")
        failed = page.locator(".bubble-outgoing").last
        await expect(failed.locator(".bubble-status")).to_contain_text("Не удалось отправить ответ")
        await expect(failed).to_have_attribute("data-state", "failed")
        await shot(page, f"admin-5-answer-failed-{theme}")
        await failed.get_by_role("button", name="Повторить").click()
        await expect(failed.locator(".bubble-status")).to_have_text("Доставлено", timeout=15_000)

        await page.reload()  # the transcript as stored: the manager's messages with their delivery
        await open_conversation(page, first_name)
        managers = page.locator(".transcript .bubble-manager")
        await expect(managers).to_have_count(2)
        await expect(managers.first).to_contain_text(ANSWER)
        await expect(managers.first.locator(".bubble-author")).to_contain_text("Менеджер Ирина Соколова")
        await expect(managers.first.locator(".bubble-author")).to_contain_text("доставлено")

    to_client = relay_service.texts_to(client)
    assert to_client.count(ANSWER) == 1 and to_client.count("Расписание пришлю в течение дня.") == 1
    assert to_client[-2:] == [ANSWER, "Расписание пришлю в течение дня."]
    notes = relay_service.texts_to(STAFF)[topic_notes_before:]
    assert notes == [f"🧑‍💼 Ирина Соколова (админка): {ANSWER}", "🧑‍💼 Ирина Соколова (админка): Расписание пришлю в течение дня."]
    topic = next(m for m in relay_service.api.sent_to(STAFF) if m.get("text") == notes[0])
    assert topic.get("message_thread_id")  # in the client's own topic


async def test_the_composer_says_why_it_cannot_answer(browser: Browser, relay_service: RelayService) -> None:
    """A conversation the bot still has: the composer is closed and says so in plain words."""
    await relay_service.client_writes(7350, "Здравствуйте! Сколько стоит курс?")
    async with opened(browser, f"{relay_service.base}/admin/miniapp", telegram_user=ADMIN) as page:
        await open_conversation(page, "Parent7350")
        await expect(page.get_by_role("textbox", name="Ответ клиенту")).to_be_disabled()
        await expect(page.get_by_role("button", name="Отправить")).to_be_disabled()
        await expect(page.locator("#answer-hint")).to_contain_text("Сейчас диалог ведёт помощник")
        await shot(page, "admin-6-answer-closed-light")
