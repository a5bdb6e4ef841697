"""agent/llm.py on the real openai SDK, faked at the HTTP seam with respx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
from pydantic import BaseModel

from agent.errors import ModelUnavailable
from agent.llm import LLM
from agent.llm_types import function_tool, json_schema_format
from agent.loop import answer_format
from tests import openai_fakes as fake
from tests.conftest import make_settings


class Args(BaseModel):
    grade: int | None
    subject: str | None


def make_llm(tmp_path: Path, delays: list[float], **overrides: object) -> LLM:
    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    settings = make_settings(tmp_path, openai_api_key="sk-test", openai_max_retries=2, **overrides)
    return LLM(settings, sleep=no_sleep)


async def _respond(llm: LLM):
    return await llm.respond(
        instructions="be nice",
        input_items=[{"role": "user", "content": "hi"}],
        tools=[function_tool("catalog_search", "search", Args)],
        answer_format=answer_format(),
    )


def test_strict_schemas_from_pydantic() -> None:
    tool = function_tool("catalog_search", "search", Args)
    assert tool["type"] == "function" and tool["strict"] is True and tool["name"] == "catalog_search"
    assert tool["parameters"]["additionalProperties"] is False
    assert set(tool["parameters"]["required"]) == {"grade", "subject"}
    fmt = json_schema_format("assistant_reply", Args)
    assert fmt["type"] == "json_schema" and fmt["strict"] is True and fmt["schema"]["additionalProperties"] is False


@respx.mock(base_url=fake.BASE_URL)
async def test_parallel_function_calls_and_request_shape(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(
        return_value=fake.response(
            fake.function_call("catalog_search", {"grade": 9, "subject": "math"}, "call_a"),
            fake.function_call("kb_file_search", {"query": "оплата"}, "call_b"),
            input_tokens=321,
            output_tokens=12,
        )
    )
    llm = make_llm(tmp_path, [])
    turn = await _respond(llm)
    assert [(c.call_id, c.name) for c in turn.calls] == [("call_a", "catalog_search"), ("call_b", "kb_file_search")]
    assert turn.usage.input_tokens == 321 and turn.usage.total_tokens == 333 and turn.usage.model_calls == 1
    body = fake.sent(route)
    assert body["model"] == "gpt-4.1"
    assert body["store"] is False
    assert body["parallel_tool_calls"] is True
    assert body["tool_choice"] == "auto"
    assert body["instructions"] == "be nice"
    assert body["tools"][0]["strict"] is True
    assert body["text"]["format"]["type"] == "json_schema" and body["text"]["format"]["strict"] is True
    await llm.aclose()


@respx.mock(base_url=fake.BASE_URL)
async def test_structured_final_answer_text(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    respx_mock.post("/responses").mock(return_value=fake.response(fake.answer("Здравствуйте!", ask_contact=True)))
    turn = await _respond(make_llm(tmp_path, []))
    assert not turn.calls
    assert '"ask_contact": true' in turn.text


@respx.mock(base_url=fake.BASE_URL)
async def test_429_honours_retry_after_then_succeeds(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(
        side_effect=[fake.error(429, retry_after="7"), fake.response(fake.answer("ok"))]
    )
    delays: list[float] = []
    turn = await _respond(make_llm(tmp_path, delays))
    assert route.call_count == 2
    assert delays == [7.0]
    assert turn.text


@respx.mock(base_url=fake.BASE_URL)
async def test_5xx_exhausting_retries_raises_model_unavailable(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(return_value=fake.error(500))
    delays: list[float] = []
    with pytest.raises(ModelUnavailable):
        await _respond(make_llm(tmp_path, delays))
    assert route.call_count == 3  # OPENAI_MAX_RETRIES=2: one call and two retries, the SDK's own retries off
    assert len(delays) == 2 and all(0 < d <= 8 for d in delays)


@respx.mock(base_url=fake.BASE_URL)
async def test_timeouts_are_retried(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.ConnectError("down"), fake.response(fake.answer("ok"))]
    )
    turn = await _respond(make_llm(tmp_path, []))
    assert route.call_count == 3 and turn.text


@respx.mock(base_url=fake.BASE_URL)
async def test_client_errors_and_spent_quota_are_not_retried(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    route = respx_mock.post("/responses").mock(
        side_effect=[fake.error(400), fake.error(429, retry_after="1", code="insufficient_quota")]
    )
    llm = make_llm(tmp_path, [])
    with pytest.raises(ModelUnavailable):
        await _respond(llm)
    with pytest.raises(ModelUnavailable):
        await _respond(llm)
    assert route.call_count == 2


@respx.mock(base_url=fake.BASE_URL)
async def test_malformed_http_body_is_model_unavailable(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    respx_mock.post("/responses").mock(return_value=httpx.Response(200, text="<html>proxy error</html>"))
    with pytest.raises(ModelUnavailable):
        await _respond(make_llm(tmp_path, []))


@respx.mock(base_url=fake.BASE_URL)
async def test_web_search_is_limited_to_the_domain_and_drops_foreign_citations(
    respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    route = respx_mock.post("/responses").mock(
        return_value=fake.response(
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
            fake.message(
                "Занятия идут по воскресеньям.",
                [
                    fake.url_citation("https://kmipt.ru/courses/", "Курсы"),
                    fake.url_citation("https://www.kmipt.ru/address/", "Адреса"),
                    fake.url_citation("https://evil.example/kmipt.ru", "Чужой"),
                ],
            ),
        )
    )
    answer = await make_llm(tmp_path, []).web_search(query="расписание", domain="kmipt.ru", instructions="only site")
    assert [c.url for c in answer.citations] == ["https://kmipt.ru/courses/", "https://www.kmipt.ru/address/"]
    assert answer.dropped_citations == 1
    body = fake.sent(route)
    assert body["tools"] == [{"type": "web_search", "filters": {"allowed_domains": ["kmipt.ru"]}}]
    assert body["store"] is False


def test_llm_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable):
        LLM(make_settings(tmp_path))


@respx.mock(base_url=fake.BASE_URL)
async def test_request_bytes_equal_what_responses_create_sends(respx_mock: respx.MockRouter, tmp_path: Path) -> None:
    """LLM posts a ready JSON body through the SDK's client, skipping its param transform: the request
    must be the one ``client.responses.create`` would send, byte for byte, headers included."""
    from agent.settings import Settings
    from tools.registry import build_tools, tool_schemas

    route = respx_mock.post("/responses").mock(side_effect=lambda request: fake.response(fake.answer("ok")))
    llm = make_llm(tmp_path, [])
    tools = tool_schemas(build_tools(Settings(_env_file=None)))  # type: ignore[call-arg]
    items = [
        {"role": "user", "content": "Сколько стоит ЕГЭ по математике? +7 *** ***-**-67"},
        {"type": "function_call", "call_id": "c1", "name": "catalog_search", "arguments": '{"grade": 11}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"items": []}'},
    ]
    calls = [
        (dict(instructions="Инструкции", input_items=items, tools=tools, answer_format=answer_format(), allow_tools=allow),
         dict(instructions="Инструкции", input=items, tools=tools, tool_choice="auto" if allow else "none",
              parallel_tool_calls=True, text={"format": answer_format()}))
        for allow in (True, False)
    ]
    for ours, sdk in calls:
        await llm.respond(**ours)
        await llm.client.responses.create(model=llm.model, store=False, **sdk)
    await llm.web_search(query="лагерь", domain="kmipt.ru", instructions="Ищи")
    await llm.client.responses.create(
        model=llm.model, store=False, instructions="Ищи", input="лагерь",
        tools=[{"type": "web_search", "filters": {"allowed_domains": ["kmipt.ru"]}}],
    )
    requests = [call.request for call in route.calls]
    assert len(requests) == 6
    for ours, sdk in zip(requests[::2], requests[1::2], strict=True):
        assert ours.content == sdk.content
        volatile = {"x-stainless-retry-count", "x-stainless-read-timeout", "content-length"}
        assert {k: v for k, v in ours.headers.items() if k not in volatile} == {
            k: v for k, v in sdk.headers.items() if k not in volatile
        }
    await llm.aclose()
