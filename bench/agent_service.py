#!/usr/bin/env python3
"""The assistant service's own cost per turn, and whether conversations wait for one another.

    python bench/agent_service.py [--conversations 40] [--turns 6] [--concurrent 100] [--concurrent-turns 3] [--delay 1.0]

1. Overhead: sequential turns through AssistantService.handle with an instant scripted model behind
   the LLM port (tools, storage on a fresh SQLite file, guardrails all real). Prints p50/p99 ms per turn
   and turns/s, next to a baseline measured in the same run: the storage floor (open the turn: load the
   conversation and store the user's message; finish it: store the reply and save) that any turn must pay. Target: overhead p50 <= 10 ms.
2. Concurrency: N conversations at once, the real openai SDK over HTTP to a fake Responses server on
   127.0.0.1 (a separate process) that answers every call after `--delay` seconds. Ideal: every
   conversation's turns take turns x delay, so N x turns turns finish in turns x delay seconds. Prints
   the achieved rate as a fraction of that ideal (after one untimed warm-up turn). Target: >= 80 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.runtime import Runtime
from adapters.wiring import build_runtime, settle_startup_heap  # noqa: E402
from agent.llm_types import FunctionCall, ModelOutput, WebAnswer  # noqa: E402
from agent.settings import Settings  # noqa: E402
from agent.state import NewMessage  # noqa: E402
from agent.types import Channel, Inbound, Usage  # noqa: E402
from tests.thread_server import free_port  # noqa: E402

MESSAGES = [
    "11 класс, ЕГЭ по математике, онлайн",
    "Можно ли оплатить материнским капиталом?",
    "А пробное занятие бесплатное?",
    "Спасибо, подумаю",
]


class ScriptedLLM:
    """An instant model behind the LLM port: a tool call for questions, then a final answer."""

    model = "scripted"

    async def respond(self, *, instructions: str, input_items: list[dict[str, Any]], tools: list[dict[str, Any]],
                      answer_format: dict[str, Any], allow_tools: bool = True, on_text: Any = None) -> ModelOutput:
        usage = Usage(model_calls=1, input_tokens=50, output_tokens=10, total_tokens=60)
        last = input_items[-1]
        if allow_tools and last.get("role") == "user":
            text = str(last.get("content"))
            if "класс" in text:
                call = FunctionCall(call_id="c1", name="catalog_search",
                                    arguments='{"grade": 11, "goal": "ege", "subject": "math", "format": "online"}')
                return ModelOutput(calls=[call], usage=usage)
            if "?" in text:
                return ModelOutput(calls=[FunctionCall(call_id="c2", name="kb_file_search", arguments=json.dumps({"query": text}))], usage=usage)
        answer = {"text": "Вот что я нашёл. Источник: kmipt.ru/courses/.", "quick_replies": [], "program_ids": [], "ask_contact": False}
        return ModelOutput(text=json.dumps(answer, ensure_ascii=False), usage=usage)

    async def web_search(self, *, query: str, domain: str, instructions: str) -> WebAnswer:
        return WebAnswer(text="")

    async def aclose(self) -> None:
        return None


def _settings(folder: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, persistent_data_path=str(folder), catalog_dir=str(ROOT / "catalog"),  # type: ignore[call-arg]
                    knowledge_dir=str(ROOT / "knowledge"), legal_dir=str(ROOT / "legal"), **overrides)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _runtime(settings: Settings, *, scripted: bool) -> Runtime:
    runtime = build_runtime(settings, llm=ScriptedLLM() if scripted else None)  # type: ignore[arg-type]
    await runtime.db.migrate()
    return runtime


def _inbound(user: str, turn: int, text: str) -> Inbound:
    return Inbound(channel=Channel.telegram, user_id=user, text=text, idempotency_key=f"bench:{user}:{turn}")


async def measure_overhead(folder: Path, conversations: int, turns: int) -> dict[str, float]:
    runtime = await _runtime(_settings(folder / "overhead"), scripted=True)
    assert runtime.assistant is not None
    handle_ms: list[float] = []
    floor_ms: list[float] = []
    engines: set[str] = set()
    try:
        started = time.perf_counter()
        for c in range(conversations):
            for t in range(turns):
                begin = time.perf_counter()
                reply = await runtime.assistant.handle(_inbound(f"u{c}", t, MESSAGES[t % len(MESSAGES)]))
                handle_ms.append((time.perf_counter() - begin) * 1000)
                engines.add(reply.engine)
        elapsed = time.perf_counter() - started
        store = runtime.store
        for c in range(conversations):  # the baseline: the storage work every turn needs, nothing else
            for t in range(turns):
                begin = time.perf_counter()
                question = NewMessage(content="вопрос", channel="telegram", idempotency_key=f"f{c}:{t}")
                opened = await store.open_turn("telegram", f"floor{c}", "kmipt", question)
                assert opened.state is not None
                await store.finish_turn(opened.state, question.model_copy(update={"content": "ответ"}), [])
                floor_ms.append((time.perf_counter() - begin) * 1000)
    finally:
        await runtime.close()
    if engines != {"model"}:
        raise RuntimeError(f"expected every turn answered by the scripted model, got {engines}")
    return {
        "turns": len(handle_ms),
        "p50_ms": statistics.median(handle_ms),
        "p99_ms": _percentile(handle_ms, 0.99),
        "turns_per_s": len(handle_ms) / elapsed,
        "floor_p50_ms": statistics.median(floor_ms),
    }


def start_fake_server(delay: float, delta_delay: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    """The fake Responses server in its own process (its CPU stays out of the figures); a streamed
    request gets its text deltas ``delta_delay`` apart."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_responses", "--port", str(port), "--delay", str(delay),
         "--delta-delay", str(delta_delay)], cwd=ROOT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the fake Responses server did not start")


async def warm_up(assistant: Any, user: str) -> None:
    """One untimed turn first: the SDK builds its pydantic response models on first use (a one-off
    ~0.2 s per process that would otherwise land in the first round of the timed run); then the heap
    is frozen as the server does once it has started (adapters/http/app.py)."""
    await assistant.handle(_inbound(user, 0, "Здравствуйте"))
    settle_startup_heap()


async def run_conversations(assistant: Any, numbers: range, turns: int) -> list[str]:
    """Conversations c<number> all at once, each one's turns one after another; each turn's engine."""
    engines: list[str] = []

    async def conversation(c: int) -> None:
        for t in range(turns):
            reply = await assistant.handle(_inbound(f"c{c}", t, f"Вопрос номер {t}: расскажите о курсах"))
            engines.append(reply.engine)

    await asyncio.gather(*(conversation(c) for c in numbers))
    return engines


async def measure_concurrency(folder: Path, base_url: str, conversations: int, turns: int, delay: float) -> dict[str, float]:
    settings = _settings(folder / "concurrent", openai_api_key="sk-bench", openai_base_url=base_url, openai_max_retries=0)
    runtime = await _runtime(settings, scripted=False)
    assert runtime.assistant is not None
    assistant = runtime.assistant
    try:
        await warm_up(assistant, "warm-up")
        started = time.perf_counter()
        engines = await run_conversations(assistant, range(conversations), turns)
        elapsed = time.perf_counter() - started
    finally:
        await runtime.close()
    if set(engines) != {"model"}:
        raise RuntimeError(f"{engines.count('offline')} turns fell back to offline: the fake server was not reached")
    ideal_elapsed = turns * delay
    return {
        "turns": len(engines),
        "elapsed_s": elapsed,
        "ideal_s": ideal_elapsed,
        "rate": len(engines) / elapsed,
        "ideal_rate": conversations * turns / ideal_elapsed,
        "fraction_of_ideal": ideal_elapsed / elapsed,
    }


async def run(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as folder:
        overhead = await measure_overhead(Path(folder), args.conversations, args.turns)
        process, base_url = start_fake_server(args.delay)
        try:
            concurrency = await measure_concurrency(Path(folder), base_url, args.concurrent, args.concurrent_turns, args.delay)
        finally:
            process.terminate()
            process.wait(10)
    return overhead, concurrency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--concurrent-turns", type=int, default=3)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    overhead, concurrency = asyncio.run(run(args))
    ok_overhead = overhead["p50_ms"] <= 10
    ok_rate = concurrency["fraction_of_ideal"] >= 0.8
    print(f"overhead ({overhead['turns']:.0f} turns, instant scripted model):")
    print(f"  p50 {overhead['p50_ms']:.1f} ms · p99 {overhead['p99_ms']:.1f} ms · {overhead['turns_per_s']:.0f} turns/s"
          f"   [target p50 <= 10 ms: {'met' if ok_overhead else 'MISSED'}]")
    print(f"  baseline: storage floor p50 {overhead['floor_p50_ms']:.1f} ms → service overhead = "
          f"{overhead['p50_ms'] / overhead['floor_p50_ms']:.1f}× the floor")
    print(f"concurrency ({args.concurrent} conversations × {args.concurrent_turns} turns, fake Responses server, {args.delay:g} s per call):")
    print(f"  {concurrency['turns']:.0f} turns in {concurrency['elapsed_s']:.2f} s (ideal {concurrency['ideal_s']:.2f} s) · "
          f"{concurrency['rate']:.1f} turns/s of ideal {concurrency['ideal_rate']:.1f} → "
          f"{concurrency['fraction_of_ideal']:.0%} of ideal   [target >= 80 %: {'met' if ok_rate else 'MISSED'}]")
    sys.exit(0 if ok_overhead and ok_rate else 1)


if __name__ == "__main__":
    main()
