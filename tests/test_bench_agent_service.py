"""Smoke run of bench/agent_service.py: its figures come from real turns (correctness, not speed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agent.llm import LLM
from agent.loop import answer_format
from tests.conftest import REPO, make_settings
from tests.fake_responses import constant_app, greeting, responses_app
from tests.thread_server import ThreadServer

spec = importlib.util.spec_from_file_location("bench_agent_service", REPO / "bench" / "agent_service.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


async def test_overhead_figures_come_from_model_answered_turns(tmp_path: Path) -> None:
    figures = await bench.measure_overhead(tmp_path, conversations=2, turns=4)  # raises unless every turn used the model
    assert figures["turns"] == 8
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] and figures["floor_p50_ms"] > 0


@pytest.mark.real_transport
async def test_concurrent_conversations_reach_the_fake_server(tmp_path: Path) -> None:
    app = responses_app(greeting, delay=0.05)
    with ThreadServer(app) as server:
        figures = await bench.measure_concurrency(tmp_path, f"{server.url}/v1", conversations=5, turns=2, delay=0.05)
    assert figures["turns"] == 10 and len(app.state.seen) == 11  # and the untimed warm-up turn
    assert figures["ideal_rate"] == 100 and 0 < figures["fraction_of_ideal"] <= 1.05


@pytest.mark.real_transport
async def test_the_benchmark_server_answers_every_call_with_the_same_model_answer(tmp_path: Path) -> None:
    with ThreadServer(constant_app(greeting({}, 0), delay=0.01)) as server:
        llm = LLM(make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=f"{server.url}/v1"))
        try:
            turns = [await llm.respond(instructions="i", input_items=[{"role": "user", "content": f"вопрос {n}"}],
                                       tools=[], answer_format=answer_format()) for n in range(2)]
        finally:
            await llm.aclose()
    assert [turn.calls for turn in turns] == [[], []]
    assert all("класс ребёнка" in turn.text and turn.usage.total_tokens > 0 for turn in turns)
