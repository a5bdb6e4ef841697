"""The Mini App chat on the live stream (issue 15): a typing indicator with the tool round's status, then a
bubble that grows sentence by sentence (checked text only), replaced by exactly the normal reply with its
program card. The model is the fake Responses server streaming over real HTTP (tests/fake_responses.py);
the served assistant uses it for these tests only. A connection dropped mid-stream and a server error are
made by Playwright's routing; the retry must not make a second turn."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect
from pydantic import SecretStr

from adapters.runtime import Runtime
from agent.llm import LLM
from agent.model_turn import ModelTurn
from agent.prompting import load_prompts
from tests import openai_fakes as fake
from tests.browser.conftest import BASIC, axe_violations, opened, shot, theme_name
from tests.fake_responses import responses_app
from tests.thread_server import ThreadServer
from tools.registry import build_tools, tool_schemas

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="package")]
THEMES = [pytest.param(False, id="light"), pytest.param(True, id="dark")]

QUESTION = "Здравствуйте! Сын в 10 классе, нужна математика к ЕГЭ, очно. Сколько стоит?"
SENTENCES = [
    "Здравствуйте! Для 10 класса подойдёт очный курс подготовки к профильному ЕГЭ по математике — в Долгопрудном или в Москве.",
    "Группы для 10 и для 11 класса занимаются отдельно.",
    "Первый семестр стоит 49 000 ₽, второй — 36 900 ₽, за год — 82 000 ₽.",
    "Хотите записаться на пробное занятие?",
]
ANSWER = " ".join(SENTENCES)
PROGRAM = "ege-math-10-11-offline"


def script(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
    if not any(item.get("type") == "function_call_output" for item in body["input"]):
        return [fake.function_call("catalog_search", {"grade": 10, "goal": "ege", "subject": "math", "format": "offline"})]
    return [fake.answer(ANSWER, program_ids=[PROGRAM])]


@pytest_asyncio.fixture(loop_scope="package")
async def streaming_model(server: tuple[str, Runtime]) -> AsyncIterator[Any]:
    """The served assistant answers with a model that streams (the fake server records every call)."""
    _, runtime = server
    assert runtime.assistant is not None
    app = responses_app(script, delay=0.4, delta_delay=0.03)
    with ThreadServer(app) as model_server:
        settings = runtime.settings.model_copy(update={
            "openai_api_key": SecretStr("sk-test"), "openai_base_url": f"{model_server.url}/v1", "openai_max_retries": 0,
        })
        llm = LLM(settings)
        tools = build_tools(settings)
        offline = runtime.assistant.model
        runtime.assistant.model = ModelTurn(settings, llm, tools, tool_schemas(tools), load_prompts(settings), runtime.store)
        try:
            yield app
        finally:
            runtime.assistant.model = offline
            await llm.aclose()


# Every state the chat's log goes through, recorded in the page as it happens (not polled afterwards).
WATCH = """() => {
  window.__seen = [];
  const log = document.querySelector('.messages');
  const note = () => {
    const typing = log.querySelector('.typing');
    const live = log.querySelector('.bubble-live');
    const last = window.__seen[window.__seen.length - 1];
    const state = live ? 'live:' + live.innerText.trim() : typing ? 'typing:' + typing.innerText.trim() : null;
    if (state && state !== last) window.__seen.push(state);
  };
  new MutationObserver(note).observe(log, { childList: true, subtree: true, characterData: true });
}"""


async def ask(page: Page, text: str) -> None:
    await page.get_by_role("tab", name="Чат с помощником").click()
    await expect(page.locator(".bubble-assistant")).to_have_count(1)  # the greeting: history loaded
    await page.evaluate(WATCH)
    await page.fill("#chat-input", text)
    await page.locator("#chat-input").press("Enter")


async def stored_turns(base: str, telegram_id: int) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=base, auth=BASIC) as client:
        listing = (await client.get("/admin/conversations?per_page=200")).json()["items"]
        mine = [c for c in listing if c["user"]["external_id"] == str(telegram_id)]
        assert len(mine) == 1
        found = (await client.get(f"/admin/conversations/{mine[0]['id']}")).json()
    return [(m["role"], m["content"]) for m in found["messages"]]


@pytest.mark.parametrize("dark", THEMES)
async def test_the_answer_grows_in_the_chat_then_becomes_the_reply(
    browser: Browser, server: tuple[str, Runtime], streaming_model: Any, dark: bool
) -> None:
    base, _ = server
    theme = theme_name(dark)
    user = {"id": 6100 + int(dark), "first_name": "Ольга"}
    async with opened(browser, f"{base}/app", telegram_user=user, dark=dark) as page:
        await ask(page, QUESTION)
        await expect(page.locator(".typing")).to_contain_text("Подбираю программы…")
        await shot(page, f"user-chat-typing-{theme}")
        live = page.locator(".bubble-live")
        await expect(live).to_contain_text(SENTENCES[1])  # two sentences shown, more being written
        await shot(page, f"user-chat-stream-{theme}")
        reply = page.locator(".bubble-assistant").last
        await expect(reply.locator("article.card")).to_have_count(1)  # the final reply: with its program card
        await expect(live).to_have_count(0)
        await expect(page.locator(".typing")).to_have_count(0)
        seen: list[str] = await page.evaluate("window.__seen")
        assert await page.locator(".bubble-assistant").count() == 2  # the greeting and one reply: no leftover bubble
        assert await page.locator(".bubble-user").count() == 1
        assert await axe_violations(page) == []

    assert seen[0].startswith("typing:")  # the indicator first ...
    assert any(s == "typing:Подбираю программы…" for s in seen)  # ... with the tool round's status
    lives = [s.removeprefix("live:") for s in seen if s.startswith("live:")]
    assert len(lives) >= 2, seen  # the bubble grew: more than one state before the reply
    assert all(later.startswith(earlier) for earlier, later in zip(lives, lives[1:]))
    assert all(ANSWER.startswith(shown) for shown in lives)  # each a prefix of the checked answer
    assert not any(s.startswith("typing:") for s in seen[seen.index("live:" + lives[0]):])  # no indicator after text
    assert len(streaming_model.state.seen) == 2  # one turn: the tool round and the answer
    assert [role for role, _ in await stored_turns(base, user["id"])] == ["user", "assistant"]


def cut_after_first_delta(body: bytes) -> bytes:
    """The stream as a phone on a bad line gets it: the events up to the first delta, then nothing."""
    events = body.decode("utf-8").split("\n\n")
    first = next(i for i, block in enumerate(events) if block.startswith("event: delta"))
    return ("\n\n".join(events[: first + 1]) + "\n\n").encode("utf-8")


async def test_a_dropped_stream_gets_its_reply_once_and_an_error_is_retried_politely(
    browser: Browser, server: tuple[str, Runtime], streaming_model: Any
) -> None:
    base, _ = server
    user = {"id": 6200, "first_name": "Ирина"}
    bodies: list[dict[str, Any]] = []
    mode = {"next": "drop"}

    async def flaky(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        bodies.append(body)
        if mode["next"] == "drop" and route.request.headers.get("accept") == "text/event-stream":
            mode["next"] = ""
            real = await route.fetch()  # the server runs the whole turn; the phone loses the rest
            await route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=cut_after_first_delta(await real.body()))
        elif mode["next"] == "error":
            mode["next"] = ""
            await route.fulfill(status=200, headers={"content-type": "text/event-stream"},
                                body='event: error\ndata: {"ok": false, "reason": "internal_error"}\n\n')
        else:
            await route.continue_()

    async with opened(browser, f"{base}/app", telegram_user=user) as page:
        await page.route("**/api/assistant/ask", flaky)
        await ask(page, QUESTION)
        reply = page.locator(".bubble-assistant").last
        await expect(reply.locator("article.card")).to_have_count(1)
        await expect(reply).to_contain_text(SENTENCES[-1])
        assert await page.locator(".bubble-assistant").count() == 2 and await page.locator(".bubble-user").count() == 1
        assert len(bodies) == 2 and bodies[1] == {**bodies[0], "stream": False}  # the same message asked again
        assert len(streaming_model.state.seen) == 2  # and the model ran once for it
        assert [role for role, _ in await stored_turns(base, user["id"])] == ["user", "assistant"]

        mode["next"] = "error"
        await page.fill("#chat-input", "А пробное занятие платное?")
        await page.locator("#chat-input").press("Enter")
        failure = page.locator(".messages .state-error")
        await expect(failure).to_contain_text("Не удалось получить ответ")
        await failure.get_by_role("button", name="Повторить").click()
        await expect(failure).to_have_count(0)
        await expect(page.locator(".bubble-assistant:not(.bubble-live)")).to_have_count(3)
        await expect(page.locator(".bubble-live, .typing")).to_have_count(0)
        assert await page.locator(".bubble-user").count() == 2  # the retry did not repeat the parent's message
        assert bodies[-1]["idempotency_key"] == bodies[-2]["idempotency_key"] != bodies[0]["idempotency_key"]
    turns = await stored_turns(base, user["id"])
    assert [role for role, _ in turns] == ["user", "assistant"] * 2
