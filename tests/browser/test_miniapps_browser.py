"""Both Mini Apps in Debian's headless Chromium (Playwright), served by the real app on 127.0.0.1.

Telegram is faked in the page (fake_telegram.js) with initData signed by the test bot token; every
request off 127.0.0.1 (telegram.org's script included) is aborted. Screenshots of each screen go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import pytest_asyncio
import uvicorn

from adapters.http.app import create_app
from adapters.wiring import Runtime, build_runtime
from tests.conftest import IN_CI, REPO, make_settings
from tests.webapp_helpers import (
    ADMIN_TELEGRAM_ID,
    PLAIN_TELEGRAM_ID,
    TEST_BOT_TOKEN,
    RecordingNotifier,
    sign_init_data,
)

pytest.importorskip("playwright")
from playwright.async_api import Browser, Page, Route, async_playwright, expect  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
DIST = REPO / "webapp" / "dist"
SHOTS = REPO / "test-artifacts" / "screenshots"
FAKE_TELEGRAM = (Path(__file__).parent / "fake_telegram.js").read_text("utf-8")
LIGHT = {"bg_color": "#ffffff", "text_color": "#000000", "hint_color": "#999999", "link_color": "#2481cc",
         "button_color": "#2481cc", "button_text_color": "#ffffff", "secondary_bg_color": "#f1f1f1"}
DARK = {"bg_color": "#212d3b", "text_color": "#ffffff", "hint_color": "#7d8b99", "link_color": "#5eb5f7",
        "button_color": "#5289c1", "button_text_color": "#ffffff", "secondary_bg_color": "#151e27"}
BASIC = ("admin", "a-long-test-password")


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    if not (DIST / "index.html").exists() or not (DIST / "admin" / "index.html").exists():
        return "the Mini Apps are not built (make webapp)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _requirements() -> None:
    problem = _missing()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}: CI must run the browser tests")
        pytest.skip(problem)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Runtime]]:
    tmp = tmp_path_factory.mktemp("browser")
    settings = make_settings(tmp, telegram_bot_token=TEST_BOT_TOKEN, admin_miniapp_enabled=True,
                             admin_telegram_ids=[ADMIN_TELEGRAM_ID], webapp_dist_path=str(DIST))
    runtime = build_runtime(settings)
    runtime.notifier = RecordingNotifier()
    await runtime.db.migrate()
    await _seed_conversation(runtime)
    async with serving(settings, runtime) as base:
        yield base, runtime


@asynccontextmanager
async def serving(settings: Any, runtime: Runtime) -> AsyncIterator[str]:
    """The real app under uvicorn on a free local port, for the browser; yields its base URL."""
    app = create_app(settings, runtime=runtime)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(uv.serve())
    for _ in range(200):
        if uv.started:
            break
        await asyncio.sleep(0.05)
    assert uv.started, "the test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def _local_only(route: Route) -> None:
    if urlparse(route.request.url).hostname == "127.0.0.1":
        await route.continue_()
    else:
        await route.abort()


@asynccontextmanager
async def opened(browser: Browser, url: str, *, telegram_user: dict[str, Any] | None = None, dark: bool = False,
                 basic: tuple[str, str] | None = None) -> AsyncIterator[Page]:
    """A fresh context (own cookies, own Basic credentials) with the page opened at ``url``."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 780}, locale="ru-RU", color_scheme="dark" if dark else "light",
        http_credentials={"username": basic[0], "password": basic[1]} if basic else None,
    )
    await context.route("**/*", _local_only)
    if telegram_user is not None:
        config = {"initData": sign_init_data(TEST_BOT_TOKEN, user=telegram_user), "user": telegram_user,
                  "colorScheme": "dark" if dark else "light", "theme": DARK if dark else LIGHT}
        await context.add_init_script(f"window.__FAKE_TG__ = {json.dumps(config)};\n{FAKE_TELEGRAM}")
    try:
        page = await context.new_page()
        await page.goto(url)
        yield page
    finally:
        await context.close()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def pick(page: Page, step: str, value: str) -> None:
    await page.locator(f'[data-step="{step}"] [data-value="{value}"]').click()


async def admin_leads(base: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, auth=BASIC) as client:
        return (await client.get("/admin/leads?per_page=200")).json()["items"]


PARENT = {"id": PLAIN_TELEGRAM_ID, "first_name": "Ольга", "username": "olga_parent"}
ADMIN = {"id": ADMIN_TELEGRAM_ID, "first_name": "Менеджер"}


async def test_user_app_walk_to_a_lead(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, runtime = server
    async with opened(browser, f"{base}/app", telegram_user=PARENT) as page:
        back, main = page.locator("#tg-back"), page.locator("#tg-main")
        await expect(page.locator('[data-step="grade"]')).to_be_visible()
        await expect(back).to_be_hidden()
        await shot(page, "user-1-grade")
        await pick(page, "grade", "10")
        await expect(back).to_be_visible()
        await shot(page, "user-2-goal")
        await pick(page, "goal", "ege")
        await shot(page, "user-3-subject")
        await back.click()  # Telegram's BackButton returns to the goal question
        await expect(page.locator('[data-step="goal"]')).to_be_visible()
        await pick(page, "goal", "ege")
        await pick(page, "subject", "math")
        await shot(page, "user-4-format")
        await pick(page, "format", "online")
        cards = page.locator("article.card")
        await expect(cards).to_have_count(3)
        await expect(cards.first.locator(".facts")).to_contain_text("₽")
        await shot(page, "user-5-results")
        program = await cards.first.get_attribute("data-program")
        await cards.first.get_by_role("button", name="Записаться").click()

        consent = page.locator("#consent-personal")
        await expect(consent).not_to_be_checked()  # never pre-ticked
        await expect(page.locator("#consent-marketing")).not_to_be_checked()
        await page.fill("#lead-name", "Ольга")
        await page.fill("#lead-phone", "+7 (999) 123-45-67")
        await expect(main).to_have_text("Отправить заявку")
        await expect(main).to_have_attribute("data-active", "false")
        leads_before = await admin_leads(base)
        await main.click()  # inactive without consent: nothing is sent
        await expect(page.locator("#consent-hint")).to_be_visible()
        await shot(page, "user-6-lead-form")
        assert await admin_leads(base) == leads_before

        await consent.check()
        await expect(page.locator("#consent-hint")).to_be_hidden()
        await expect(main).to_have_attribute("data-active", "true")
        await main.click()
        await expect(page.get_by_role("heading", name="Спасибо! Заявка принята")).to_be_visible()
        await expect(main).to_be_hidden()
        await shot(page, "user-7-done")

        leads = await admin_leads(base)
        assert len(leads) == len(leads_before) + 1
        lead = leads[0]  # newest first
        assert lead["phone"] == "+79991234567" and lead["channel"] == "miniapp" and lead["name"] == "Ольга"
        assert lead["profile"] == {"grade": 10, "goal": "ege", "subject": "math", "format": "online"}
        assert lead["program_ids"] == [program]
        assert isinstance(runtime.notifier, RecordingNotifier)
        assert runtime.notifier.user_messages[-1][0] == PLAIN_TELEGRAM_ID


async def test_user_app_links_legal_texts_and_follows_dark_theme(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, _ = server
    async with opened(browser, f"{base}/app", telegram_user=PARENT, dark=True) as page:
        for step, value in (("grade", "9"), ("goal", "oge"), ("subject", "any"), ("format", "any")):
            await pick(page, step, value)
        await expect(page.locator("article.card")).to_have_count(3)
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(33, 45, 59)"  # DARK bg_color from the Telegram theme
        await shot(page, "user-dark-results")
        await page.get_by_role("button", name="Оставить заявку — менеджер поможет с выбором").click()
        await page.get_by_role("link", name="согласие на обработку персональных данных").click()
        links = await page.evaluate("window.__opened")
        assert links and links[-1].endswith("/api/legal/kmipt/consent")
        await shot(page, "user-dark-lead-form")


async def test_user_app_chat_tab_talks_to_the_assistant(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, _ = server
    async with opened(browser, f"{base}/app", telegram_user=PARENT) as page:
        await page.get_by_role("tab", name="Чат с помощником").click()
        await page.fill("#chat-input", "Здравствуйте! Сыну в 9 класс, нужна подготовка к ОГЭ")
        await page.get_by_role("button", name="Отправить", exact=True).click()
        replies = page.locator(".bubble-assistant")
        await expect(replies).to_have_count(2)  # the greeting and the assistant's answer
        await expect(page.locator(".bubble-live")).to_have_count(0)  # streamed: wait for the final reply
        assert (await replies.last.inner_text()).strip()
        await expect(replies.last).not_to_contain_text("Не получилось")
        await replies.last.locator(".quick .option").first.click()  # a quick reply goes as the assistant's choice
        await expect(replies).to_have_count(3)
        await expect(page.locator(".bubble-live")).to_have_count(0)
        await expect(replies.last).not_to_contain_text("Не получилось")
        await shot(page, "user-chat")


async def test_user_app_in_plain_browser(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, _ = server
    async with opened(browser, f"{base}/app") as page:
        await expect(page.locator(".notice").first).to_contain_text("в браузере")
        for step, value in (("grade", "5"), ("goal", "olympiad"), ("subject", "math"), ("format", "offline")):
            await pick(page, step, value)
        await expect(page.locator("article.card")).to_have_count(3)
        await page.locator("article.card").first.get_by_role("button", name="Записаться").click()
        await expect(page.locator("main .notice")).to_contain_text("внутри Telegram")
        await expect(page.locator("#lead-phone")).to_be_disabled()
        await shot(page, "user-browser-lead-form")
        await page.get_by_role("tab", name="Чат с помощником").click()
        await expect(page.locator(".chat .notice")).to_contain_text("внутри Telegram")


async def test_admin_app_for_an_allowed_admin(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, runtime = server
    await _ensure_a_lead(base)
    async with opened(browser, f"{base}/admin/miniapp", telegram_user=ADMIN) as page:
        first = page.locator("article.lead").first
        await expect(first).to_be_visible()
        lead_id = int(await first.get_attribute("data-lead") or 0)
        await first.locator("select.lead-status").select_option("contacted")
        await expect(first.get_by_text("Сохранено")).to_be_visible()
        stored = await runtime.leads.get(lead_id)
        assert stored is not None and stored.status == "contacted"
        await shot(page, "admin-1-leads")

        await page.fill("#filter-q", "нет такого")
        await page.get_by_role("button", name="Найти").click()
        await expect(page.get_by_text("Заявок не найдено.")).to_be_visible()

        await page.get_by_role("tab", name="Диалоги").click()
        await page.locator("#filter-handoff").check()
        conversation = page.locator("article.conversation", has_text="Ирина")
        await expect(conversation).to_have_count(1)
        number = int(await conversation.get_attribute("data-conversation") or 0)
        await conversation.click()
        await expect(page.get_by_role("heading", name=f"Диалог №{number}")).to_be_visible()
        await expect(page.locator(".tools").first).to_contain_text("Вызовы инструментов: 1")
        await expect(page.locator("#tg-back")).to_be_visible()
        await shot(page, "admin-2-transcript")
        await page.locator("#release").click()
        await expect(page.locator("#release")).to_have_count(0)
        released = await runtime.conversations.get(number)
        assert released is not None and released.human_mode_until is None
        await page.locator("#tg-back").click()
        await expect(page.locator("article.conversation")).to_have_count(0)  # released: none waits for a manager
        await page.locator("#filter-handoff").uncheck()
        await expect(page.locator("article.conversation", has_text="Ирина")).to_have_count(1)
        await page.get_by_role("tab", name="Воронка").click()
        await expect(page.locator("table").first).to_be_visible()
        await shot(page, "admin-3-funnel")


async def test_admin_app_refuses_other_telegram_users(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, _ = server
    async with opened(browser, f"{base}/admin/miniapp", telegram_user=PARENT) as page:
        await expect(page.locator("#admin-error")).to_contain_text("Нет доступа")
        await expect(page.locator("article.lead")).to_have_count(0)
        await shot(page, "admin-forbidden")


async def test_admin_app_in_browser_with_basic_auth(browser: Browser, server: tuple[str, Runtime]) -> None:
    base, runtime = server
    await _ensure_a_lead(base)
    async with opened(browser, f"{base}/admin/miniapp", basic=BASIC) as page:
        await expect(page.locator("article.lead").first).to_be_visible()
        await expect(page.get_by_role("link", name="Выгрузить в CSV")).to_be_visible()
        await shot(page, "admin-browser-leads")


async def _seed_conversation(runtime: Runtime) -> None:
    """A bot conversation handed to a manager, with a tool call, for the admin transcript screen."""
    user = await runtime.users.get_or_create(
        "telegram", "4004", first_name="Ирина", username="irina_m", source="vk_ads"
    )
    assert user.id is not None
    conversation = await runtime.conversations.get_or_create(user.id, "kmipt")
    assert conversation.id is not None
    conversation.profile = {"grade": 11, "goal": "ege", "subject": "physics"}
    conversation.human_mode_until = datetime.now(UTC) + timedelta(hours=20)
    conversation.handoff_reason = "спрашивает о скидке для двоих детей"
    await runtime.conversations.save(conversation)
    turns = [
        ("user", "Здравствуйте! Сыну в 11 класс, нужна физика к ЕГЭ", {}),
        ("assistant", "Подобрала курсы подготовки к ЕГЭ по физике для 11 класса — посмотрите карточки.",
         {"tool_calls": [{"name": "catalog_search", "arguments": {"grade": 11, "goal": "ege", "subject": "physics"}}],
          "cards": [{"id": "ege-physics-10-11-online"}]}),
        ("user", "А есть скидка, если дочь тоже пойдёт?", {}),
        ("assistant", "Уточню у менеджера и вернусь с ответом.",
         {"tool_calls": [{"name": "handoff_to_manager", "arguments": {"reason": "скидка для двоих детей"}}]}),
    ]
    for role, text, meta in turns:
        await runtime.messages.add(conversation.id, role, text, channel="telegram", meta=meta)


async def _ensure_a_lead(base: str) -> None:
    """A lead through the real POST /api/leads, so the admin tests never depend on test order."""
    if await admin_leads(base):
        return
    init_data = sign_init_data(TEST_BOT_TOKEN, user={"id": 3003, "first_name": "Пётр"})
    body = {"name": "Пётр", "phone": "89990001122", "consent_personal_data": True, "grade": 11, "goal": "ege"}
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/leads", json=body, headers={"Authorization": f"tma {init_data}"})
    assert response.status_code == 201, response.text


async def test_screenshots_were_written() -> None:
    """Runs last in this module: the screens above left their pictures for the run's artifacts."""
    names = {p.stem for p in SHOTS.glob("*.png")} if SHOTS.exists() else set()
    assert {"user-5-results", "user-6-lead-form", "admin-1-leads", "admin-forbidden"} <= names
    if os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":  # refresh the README's pictures on purpose only
        _copy_to_docs()


def _copy_to_docs() -> None:
    docs = REPO / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    for name in ("user-1-grade", "user-5-results", "user-6-lead-form", "user-dark-results", "user-chat",
                 "admin-1-leads", "admin-2-transcript"):
        shutil.copy(SHOTS / f"{name}.png", docs / f"{name}.png")
