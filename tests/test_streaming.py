"""Streamed answers: the text pulled from incomplete JSON, checked sentence by sentence (agent/streaming.py),
and the model client reading the Responses API's server-sent events (agent/llm.py) on the real SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder

from agent.errors import ModelUnavailable
from agent.guardrails import check_reply
from agent.llm import LLM, BlockSSEDecoder
from agent.loop import answer_format
from agent.streaming import AnswerPreview, answer_text_so_far, sentence_prefixes
from evals import streams
from tests import openai_fakes as fake
from tests.conftest import make_settings

KNOWN = {36900}


def guard(text: str) -> str:
    return check_reply(text, known_amounts=KNOWN, brand_domain="kmipt.ru").text


class Shown:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.statuses: list[str] = []

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def text(self, text: str) -> None:
        self.texts.append(text)


def feed_all(preview: AnswerPreview, answer_text: str) -> None:
    raw = json.dumps({"text": answer_text, "quick_replies": [], "program_ids": [], "ask_contact": False}, ensure_ascii=False)
    for piece in streams.token_pieces(raw):
        preview.feed(piece)


def test_text_of_incomplete_json_with_escapes() -> None:
    assert answer_text_so_far('{"text": "Здравствуйте! \\"ЕГЭ\\"\\nКурс') == 'Здравствуйте! "ЕГЭ"\nКурс'
    assert answer_text_so_far('{"te') == ""
    assert answer_text_so_far('{"text": "Цена \\u2014 ') == "Цена — "
    assert answer_text_so_far('{"text": "a\\') == "a"  # half an escape waits for the next delta
    assert answer_text_so_far("") == ""


def test_sentence_boundaries() -> None:
    text = "Здравствуйте! Курс идёт весь год. Варианты:\n1. Очно\n2. Онлайн и ещё"
    assert list(sentence_prefixes(text)) == [
        "Здравствуйте!",
        "Здравствуйте! Курс идёт весь год.",
        "Здравствуйте! Курс идёт весь год. Варианты:",
        "Здравствуйте! Курс идёт весь год. Варианты:\n1. Очно",
    ]
    assert list(sentence_prefixes("Без точки в конце")) == []


def test_preview_grows_by_checked_sentences_only() -> None:
    shown = Shown()
    preview = AnswerPreview(shown, guard)
    answer = "Здравствуйте! Очный курс стоит 36 900 ₽ за семестр. Подробнее на https://kmipt.ru/courses/ и в чате. Запишем?"
    feed_all(preview, answer)
    assert shown.texts == [
        "Здравствуйте!",
        "Здравствуйте! Очный курс стоит 36 900 ₽ за семестр.",
        "Здравствуйте! Очный курс стоит 36 900 ₽ за семестр. Подробнее на https://kmipt.ru/courses/ и в чате.",
        answer,
    ]
    assert all(answer.startswith(text) for text in shown.texts)


def test_an_invented_amount_stops_the_preview_before_it_is_shown() -> None:
    shown = Shown()
    preview = AnswerPreview(shown, guard)
    feed_all(preview, "Здравствуйте! Со скидкой выйдет 99 000 ₽ за год. Это выгодно. Запишем?")
    assert shown.texts == ["Здравствуйте!"]
    assert preview.stopped


def test_a_foreign_link_stops_the_preview() -> None:
    shown = Shown()
    preview = AnswerPreview(shown, guard)
    feed_all(preview, "Вот ответ. Смотрите https://evil.example/x прямо сейчас. И ещё.")
    assert shown.texts == ["Вот ответ."]


def test_status_for_tool_rounds_only_before_text() -> None:
    shown = Shown()
    preview = AnswerPreview(shown, guard)
    preview.tools(["catalog_search", "kb_file_search"])
    preview.tools(["catalog_search"])  # the same status is not repeated
    preview.tools(["kb_file_search"])
    feed_all(preview, "Готово. Вот программы.")
    preview.tools(["catalog_search"])
    assert shown.statuses == ["Подбираю программы…", "Смотрю в базе знаний…"]


def test_a_broken_sink_turns_the_preview_off() -> None:
    class Broken(Shown):
        def text(self, text: str) -> None:
            raise RuntimeError("socket closed")

    preview = AnswerPreview(Broken(), guard)
    feed_all(preview, "Раз. Два. Три.")
    assert preview.stopped


# ---------------------------------------------------------------- the model client


def make_llm(tmp_path: Path, **overrides: object) -> LLM:
    async def no_sleep(seconds: float) -> None:
        return None

    return LLM(make_settings(tmp_path, openai_api_key="sk-test", openai_max_retries=2, **overrides), sleep=no_sleep)


ANSWER = fake.response(fake.answer("Здравствуйте! Курс стоит 36 900 ₽. Запишем?"), input_tokens=50, output_tokens=30)


async def respond(llm: LLM, deltas: list[str] | None):
    try:
        return await llm.respond(
            instructions="be nice",
            input_items=[{"role": "user", "content": "привет"}],
            tools=[],
            answer_format=answer_format(),
            on_text=deltas.append if deltas is not None else None,
        )
    finally:
        await llm.aclose()


@respx.mock(base_url=fake.BASE_URL)
async def test_streamed_answer_is_the_same_turn_and_hands_on_every_delta(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(return_value=fake.streamed(ANSWER))
    deltas: list[str] = []
    turn = await respond(make_llm(tmp_path), deltas)
    assert fake.sent(route)["stream"] is True
    assert "".join(deltas) == ANSWER.json()["output"][0]["content"][0]["text"] == turn.text
    assert len(deltas) > 5
    assert turn.usage.total_tokens == 80 and turn.calls == []


@respx.mock(base_url=fake.BASE_URL)
async def test_streamed_tool_round_gives_the_calls(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    calls = fake.response(fake.function_call("catalog_search", {"grade": 9}, "call_a"))
    respx_mock.post("/responses").mock(return_value=fake.streamed(calls))
    deltas: list[str] = []
    turn = await respond(make_llm(tmp_path), deltas)
    assert [(c.name, c.call_id, json.loads(c.arguments)) for c in turn.calls] == [("catalog_search", "call_a", {"grade": 9})]
    assert deltas == []


@respx.mock(base_url=fake.BASE_URL)
async def test_a_server_without_streaming_still_works(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    respx_mock.post("/responses").mock(return_value=ANSWER)  # ignores "stream": true, answers JSON
    deltas: list[str] = []
    turn = await respond(make_llm(tmp_path), deltas)
    assert "36 900" in turn.text and deltas == []


@respx.mock(base_url=fake.BASE_URL)
async def test_openai_stream_false_never_asks_for_a_stream(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(return_value=ANSWER)
    deltas: list[str] = []
    turn = await respond(make_llm(tmp_path, openai_stream=False), deltas)
    assert "stream" not in fake.sent(route) and "36 900" in turn.text and deltas == []


@respx.mock(base_url=fake.BASE_URL)
async def test_errors_before_the_stream_are_retried(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(side_effect=[fake.error(503), fake.streamed(ANSWER)])
    deltas: list[str] = []
    turn = await respond(make_llm(tmp_path), deltas)
    assert route.call_count == 2 and "".join(deltas) == turn.text


@respx.mock(base_url=fake.BASE_URL)
async def test_a_stream_cut_after_text_is_not_retried(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    """A retry would show the answer's beginning twice: the turn fails (and answers offline) instead."""
    route = respx_mock.post("/responses").mock(side_effect=[fake.streamed(ANSWER, cut_after=12), fake.streamed(ANSWER)])
    deltas: list[str] = []
    with pytest.raises(ModelUnavailable, match="ended before"):
        await respond(make_llm(tmp_path), deltas)
    assert route.call_count == 1 and deltas


@respx.mock(base_url=fake.BASE_URL)
async def test_an_error_event_fails_the_call(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    body = streams.encode([("error", {"type": "error", "code": "server_error", "message": "boom", "sequence_number": 1})])
    respx_mock.post("/responses").mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body))
    with pytest.raises(ModelUnavailable, match="server_error"):
        await respond(make_llm(tmp_path), [])


@respx.mock(base_url=fake.BASE_URL)
async def test_a_stream_answered_by_an_html_page_is_refused(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    respx_mock.post("/responses").mock(return_value=httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ModelUnavailable, match="not a Responses object"):
        await respond(make_llm(tmp_path), [])


# ---------------------------------------------------------------- the event decoder


def _decoded(decoder: Any, chunks: list[bytes]) -> list[tuple[str | None, str, str | None, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in decoder.iter_bytes(iter(chunks))]


_LINE = st.sampled_from([
    "event: response.output_text.delta", "event:response.completed", 'data: {"delta": "Здравствуйте! "}',
    "data:no space", "data", "data: second line", ": a comment", "id: 7", "id: bad\0id", "retry: 1500",
    "retry: soon", "event", "unknown: field", "",
])


@given(
    lines=st.lists(_LINE, max_size=14),
    ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=14),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
@settings(max_examples=400, deadline=None)
def test_the_block_decoder_reads_the_same_events_as_the_sdks(lines: list[str], ends: list[str], cuts: list[int]) -> None:
    """agent/llm.py reads the stream a whole event at a time (for speed); whatever the chunking and the
    line ends, it must hand on exactly the events the SDK's own line-by-line decoder would."""
    body = "".join(line + ends[n % len(ends)] for n, line in enumerate(lines)).encode("utf-8")
    points = sorted({min(cut, len(body)) for cut in cuts})
    chunks = [body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)]
    assert _decoded(BlockSSEDecoder(), chunks) == _decoded(SSEDecoder(), chunks)


def test_the_block_decoder_on_a_real_stream_split_everywhere() -> None:
    body = streams.encode(streams.response_events(fake.response(fake.answer("Здравствуйте! Чем помочь?")).json()))
    expected = _decoded(SSEDecoder(), [body])
    assert [e[0] for e in expected][-1] == "response.completed"
    for cut in range(0, len(body), 7):
        assert _decoded(BlockSSEDecoder(), [body[:cut], body[cut:]]) == expected
