"""The Mini App chat on the stream, in Debian's headless Chromium (Playwright): the real app with a
model (a fake Responses server on 127.0.0.1 that writes its answer slowly over SSE). The parent sees
typing dots, then the answer growing sentence by sentence, then the final reply with its program card,
in the light and the dark theme (screenshots in test-artifacts/screenshots/, README's in docs/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from adapters.wiring import Runtime, build_runtime
from tests import openai_fakes as fake
from tests.browser.test_miniapps_browser import (  # noqa: F401  (fixtures: the browser and the skip rule)
    DIST,
    PARENT,
    REPO,
    SHOTS,
    _requirements,
    browser,
    opened,
    serving,
    shot,
)
from tests.conftest import make_settings
from tests.fake_responses import responses_app
from tests.thread_server import ThreadServer
from tests.webapp_helpers import TEST_BOT_TOKEN, RecordingNotifier

pytest.importorskip("playwright")
from playwright.async_api import Browser, expect  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ANSWER = (
    "Здравствуйте! Для 10 класса подойдёт очный курс подготовки к ЕГЭ по математике в Долгопрудном. "
    "Занятия идут весь учебный год, группы небольшие. Стоимость семестра — 36 900 ₽. "
    "Хотите записаться на бесплатное пробное занятие?"
)


def model_script(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
    if not any(item.get("type") == "function_call_output" for item in body["input"]):
        return [fake.function_call("catalog_search", {"grade": 10, "goal": "ege", "subject": "math", "format": "offline"})]
    return [fake.answer(ANSWER, program_ids=["ege-math-10-11-offline"])]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Runtime]]:
    tmp = tmp_path_factory.mktemp("browser-stream")
    with ThreadServer(responses_app(model_script, delay=0.8, delta_delay=0.08)) as model:
        settings = make_settings(tmp, telegram_bot_token=TEST_BOT_TOKEN, webapp_dist_path=str(DIST),
                                 openai_api_key="sk-test", openai_base_url=f"{model.url}/v1")
        runtime = build_runtime(settings)
        runtime.notifier = RecordingNotifier()
        async with serving(settings, runtime) as base:
            yield base, runtime


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
async def test_the_chat_shows_typing_then_the_growing_answer_then_the_reply(
    browser: Browser, server: tuple[str, Runtime], dark: bool
) -> None:
    base, _ = server
    user = {**PARENT, "id": PARENT["id"] + (1 if dark else 0)}  # each theme its own conversation
    async with opened(browser, f"{base}/app", telegram_user=user, dark=dark) as page:
        await page.get_by_role("tab", name="Чат с помощником").click()
        await page.fill("#chat-input", "здравствуйте, сын в 10 класе, нужна матиматика к егэ очно. сколько стоит?")
        await page.get_by_role("button", name="Отправить", exact=True).click()
        live = page.locator(".bubble-live")
        await expect(live.locator(".typing")).to_be_visible()  # before the first word: typing dots
        growing = live.locator("p")
        await expect(growing).to_contain_text("Здравствуйте!", timeout=15_000)
        await expect(growing).to_contain_text("в Долгопрудном.", timeout=15_000)  # a sentence more: it grows
        partial = await growing.inner_text()
        await shot(page, f"user-chat-streaming{'-dark' if dark else ''}")
        await expect(live).to_have_count(0, timeout=20_000)  # the final reply took the bubble's place
        final = page.locator(".bubble-assistant").last
        await expect(final).to_contain_text("Хотите записаться на бесплатное пробное занятие?")
        await expect(final.locator("article.card")).to_have_count(1)
        assert ANSWER.startswith(partial.rstrip("▍").strip()) and len(partial) < len(ANSWER)
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(33, 45, 59)" if dark else "rgb(255, 255, 255)")
    if os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
        docs = REPO / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        name = f"user-chat-streaming{'-dark' if dark else ''}.png"
        shutil.copy(SHOTS / name, docs / name)
