"""Fixtures for the Mini Apps in Debian's headless Chromium (Playwright), served by the real app on 127.0.0.1.

Telegram is faked in the page (fake_telegram.js) with initData signed by the test bot token; every request
off 127.0.0.1 (telegram.org's script included) is aborted unless a test routes it. Screenshots (390×844,
light and dark) go to test-artifacts/screenshots/; axe-core (npm, webapp/node_modules) checks accessibility.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import pytest_asyncio
import respx
import uvicorn

from adapters.http.app import create_app
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.catalog import SearchCriteria
from agent.types import Channel
from tests import openai_fakes as fake
from agent.llm import LLM
from pydantic import SecretStr
from tests.assistant_helpers import Chat
from tests.conftest import IN_CI, REPO, make_settings
from tests.thread_server import free_port
from tests.webapp_helpers import ADMIN_TELEGRAM_ID, TEST_BOT_TOKEN, RecordingNotifier, sign_init_data

pytest.importorskip("playwright")
from playwright.async_api import Browser, Page, Route, async_playwright  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
DIST = REPO / "webapp" / "dist"
AXE = REPO / "webapp" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO / "test-artifacts" / "screenshots"
FAKE_TELEGRAM = (Path(__file__).parent / "fake_telegram.js").read_text("utf-8")
VIEWPORT = {"width": 390, "height": 844}
LIGHT = {"bg_color": "#ffffff", "text_color": "#000000", "hint_color": "#999999", "link_color": "#2481cc",
         "button_color": "#2481cc", "button_text_color": "#ffffff", "secondary_bg_color": "#f1f1f1"}
DARK = {"bg_color": "#212d3b", "text_color": "#ffffff", "hint_color": "#7d8b99", "link_color": "#5eb5f7",
        "button_color": "#5289c1", "button_text_color": "#ffffff", "secondary_bg_color": "#151e27"}
BASIC = ("admin", "a-long-test-password")
PARENT_ID = 2002
PARENT = {"id": PARENT_ID, "first_name": "Ольга", "username": "olga_parent"}
ADMIN = {"id": ADMIN_TELEGRAM_ID, "first_name": "Менеджер"}


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    if not (DIST / "index.html").exists() or not (DIST / "admin" / "index.html").exists():
        return "the Mini Apps are not built (make webapp)"
    if not AXE.exists():
        return "axe-core is not installed (cd webapp && npm install)"
    return None


@pytest.fixture(scope="package", autouse=True)
def _requirements() -> None:
    problem = _missing()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}: CI must run the browser tests")
        pytest.skip(problem)


async def _real_dialogs(settings: Any) -> None:
    """Conversations for the admin screens, produced by the real assistant on the server's database: one
    with the model (faked at the HTTP seam) calling catalog_search and showing a card, then asking for a
    manager; one offline. The served runtime has no model key: the browser chat answers offline."""
    with_model = settings.model_copy(update={"openai_api_key": SecretStr("sk-test"), "openai_max_retries": 1})
    llm = LLM(with_model, http_client=httpx.AsyncClient(timeout=5))
    runtime = build_runtime(with_model, llm=llm, notifier=RecordingNotifier())
    assert runtime.assistant.model is not None
    program = runtime.catalog.search("kmipt", SearchCriteria(grade=11, goal="ege", subject="physics"),
                                     today=runtime.assistant.today()).items[0]
    with respx.mock(base_url=fake.BASE_URL, assert_all_called=False) as api:
        api.post("/responses").mock(side_effect=[
            fake.response(fake.function_call("catalog_search", {"grade": 11, "goal": "ege", "subject": "physics", "format": None})),
            fake.response(fake.answer(
                "Подобрала курс подготовки к ЕГЭ по физике для 11 класса:\n- занятия раз в неделю;\n- первое занятие бесплатно.\n\n"
                "Подробнее на сайте: https://kmipt.ru/",
                program_ids=[program.id])),
        ])
        irina = Chat(runtime, user_id="4004")
        await irina.send(text="Здравствуйте! Сыну в 11 класс, нужна физика к ЕГЭ")
    await irina.send(choice="handoff")
    await irina.send(text="А есть скидка, если дочь тоже пойдёт?")
    await runtime.close()
    runtime = build_runtime(settings, notifier=RecordingNotifier())  # no model: the offline policy answers
    offline = Chat(runtime, user_id="4005", channel=Channel.telegram)
    for choice in ("grade:9", "goal:oge", "subject:math", "format:online"):
        await offline.send(choice=choice)
    async with runtime.db.session() as session:  # first names as Telegram would have given them
        from sqlmodel import select

        from adapters.storage.models import User
        for user in (await session.exec(select(User))).all():
            user.first_name = {"4004": "Ирина", "4005": "Павел"}.get(user.external_id, user.first_name)
            user.source = {"4004": "vk_ads"}.get(user.external_id, user.source)
            session.add(user)
        await session.commit()
    await runtime.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Runtime]]:
    tmp = tmp_path_factory.mktemp("browser")
    # The admin screens' tests each make sure the same two Mini App leads exist (POST /api/leads, the same
    # users from 127.0.0.1): more than LEADS_RATE_LIMIT_USER_REQUESTS allows in an hour. The limit has its
    # own tests; here it would only answer 429 to the fixtures.
    settings = make_settings(tmp, telegram_bot_token=TEST_BOT_TOKEN, admin_miniapp_enabled=True,
                             admin_telegram_ids=[ADMIN_TELEGRAM_ID], webapp_dist_path=str(DIST),
                             leads_rate_limit_user_requests=1000, leads_rate_limit_ip_requests=1000)
    # The bot's own notifier would call Telegram: record instead.
    runtime = build_runtime(settings, notifier=RecordingNotifier())
    app = create_app(settings, runtime=runtime)
    await runtime.db.migrate()
    await _real_dialogs(settings)
    async with serving(app) as base:
        yield base, runtime


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app served for real on 127.0.0.1 (lifespan included) for as long as the block runs."""
    port = free_port()
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


@pytest_asyncio.fixture(scope="package", loop_scope="package")
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
                 basic: tuple[str, str] | None = None, contact_phone: str | None = None,
                 before: Any = None, wait_until: str = "load") -> AsyncIterator[Page]:
    """A fresh context (own cookies, own Basic credentials) at 390×844 with the page opened at ``url``."""
    context = await browser.new_context(
        viewport=VIEWPORT, locale="ru-RU", color_scheme="dark" if dark else "light",
        http_credentials={"username": basic[0], "password": basic[1]} if basic else None,
    )
    await context.route("**/*", _local_only)
    if telegram_user is not None:
        config = {"initData": sign_init_data(TEST_BOT_TOKEN, user=telegram_user), "user": telegram_user,
                  "colorScheme": "dark" if dark else "light", "theme": DARK if dark else LIGHT,
                  "contactPhone": contact_phone}
        await context.add_init_script(f"window.__FAKE_TG__ = {json.dumps(config)};\n{FAKE_TELEGRAM}")
    try:
        page = await context.new_page()
        if before is not None:
            await before(page)
        await page.goto(url, wait_until=wait_until)  # type: ignore[arg-type]
        yield page
    finally:
        await context.close()


def theme_name(dark: bool) -> str:
    return "dark" if dark else "light"


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical WCAG 2.x A/AA violations axe-core finds on the page as it is now (the fake
    Telegram's own MainButton and BackButton are Telegram's, not the app's: left out)."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "() => axe.run({ exclude: ['#tg-main', '#tg-back'] },"
        " { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]


async def admin_leads(base: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, auth=BASIC) as client:
        return (await client.get("/admin/leads?per_page=200")).json()["items"]


DOC_SHOTS = ("user-2-results-light", "user-3-lead-errors-light", "user-5-duplicate-dark", "user-chat-light",
             "user-chat-typing-light", "user-chat-stream-light", "user-chat-stream-dark",
             "user-chat-dark", "user-browser-lead-light", "admin-1-leads-light", "admin-3-transcript-dark",
             "admin-4-funnel-light", "admin-5-answer-light", "admin-5-answer-failed-light", "admin-6-answer-closed-light")


@pytest.fixture(scope="package", autouse=True)
def _doc_screenshots() -> Any:
    """After the browser tests: UPDATE_DOC_SCREENSHOTS=1 copies the README's pictures (on purpose only)."""
    yield
    import os
    import shutil

    if os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
        docs = REPO / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        for name in DOC_SHOTS:
            if (SHOTS / f"{name}.png").exists():
                shutil.copy(SHOTS / f"{name}.png", docs / f"{name}.png")
