"""Benchmark of live replies (issue 15): how soon a parent sees something, how soon the answer's text,
and what streaming costs. Every figure is printed next to a baseline measured in the same run.

1. Feedback: ``--chats`` private chats write at the same moment; each update goes the whole way
   (getUpdates in polling mode, the default, or a webhook POST with ``--mode webhook`` → durable queue →
   workers → aiogram → the fake Bot API, tests/fakes/telegram_api.py) to the
   real assistant, whose model (the fake Responses server, a separate process) writes its first token
   after ``--delay`` s. Per chat: the update handed to Telegram (the fake) → the first feedback
   request arriving at the fake Bot API. Baseline: the same with drafts refused (the typing indicator, what the bot did before).
2. First text: per chat, the model's first text delta reaching the service → the first draft with
   answer text (or the final message, when the answer was done before the next draft was due) at the
   fake Bot API. Baseline: the first delta → the first whole sentence handed on
   (the earliest a checked sentence can be shown); the rest is the one-draft-a-second interval.
3. CPU per turn: process CPU of ``--cpu-turns`` turns streamed (a live reply watching, stream: true)
   against the same turns not streamed (OPENAI_STREAM=false), alternating rounds, same fake server.

    python bench/live_replies.py [--chats 50] [--mode polling|webhook] [--delay 1.0] [--delta-delay 0.05]
                                 [--cpu-turns 120] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.wiring import build_runtime  # noqa: E402
from agent import model_turn  # noqa: E402
from agent.streaming import AnswerPreview, live_reply  # noqa: E402
from agent.types import Channel, Inbound  # noqa: E402
from bench.agent_service import _percentile, _settings, start_fake_server  # noqa: E402
from tests.fakes import updates  # noqa: E402
from tests.fakes.telegram_api import FakeBotAPI  # noqa: E402
from tests.telegram.conftest import running_service, telegram_settings  # noqa: E402

FIRST_CHAT = 700_000


class TimedPreview(AnswerPreview):
    """The service's own preview, noting when its first delta came and its first sentence went out."""

    first_delta: dict[int, float] = {}
    first_sentence: dict[int, float] = {}

    def feed(self, delta: str) -> None:
        chat = getattr(self.sink, "chat_id", 0)
        TimedPreview.first_delta.setdefault(chat, time.monotonic())
        super().feed(delta)
        if self.shown:
            TimedPreview.first_sentence.setdefault(chat, time.monotonic())


async def feedback_round(folder: Path, model_url: str, chats: int, *, drafts: bool, mode: str = "polling") -> dict[str, Any]:
    api = FakeBotAPI()
    await api.start()
    if not drafts:
        api.refuse_drafts()
    settings = telegram_settings(folder, api.base_url, openai_api_key="sk-bench", openai_base_url=model_url,
                                 openai_max_retries=0, telegram_queue_poll_seconds=0.5, telegram_mode=mode,
                                 # production's send limits (the tests' settings lift them)
                                 telegram_send_chat_per_second=1, telegram_send_chat_burst=3,
                                 telegram_send_global_per_second=30)
    TimedPreview.first_delta.clear()
    TimedPreview.first_sentence.clear()
    posted: dict[int, float] = {}
    try:
        async with running_service(settings, api) as service:
            await service.deliver(updates.message(1, FIRST_CHAT - 1, "Здравствуйте"))  # warm-up, untimed
            await service.settle(1, timeout=60)
            api.calls.clear()  # with drafts refused, the warm-up taught the process to use typing

            async def write(n: int) -> None:
                chat = FIRST_CHAT + n
                posted[chat] = time.monotonic()
                await service.deliver(updates.message(100 + n, chat, f"Здравствуйте! Вопрос {n}: есть ли курсы по физике?"))

            await asyncio.gather(*(write(n) for n in range(chats)))
            for n in range(chats):
                await service.settle(100 + n, timeout=120)
    finally:
        await api.stop()
    feedback, text_after_token, sentence_after_token = [], [], []
    for chat, at in posted.items():
        calls = [c for c in api.calls if int(c.params.get("chat_id") or 0) == chat]
        first = next((c.at for c in calls if c.method in ("sendMessageDraft", "sendChatAction")), None)
        if first is not None:
            feedback.append(first - at)
        # The answer's first words: a draft with text, or the message itself when the answer was done
        # before the next draft was due.
        shown = next((c.at for c in calls if c.method == "sendMessage" or (c.method == "sendMessageDraft"
                      and c.params.get("text", "").strip() and not c.params["text"].startswith("<i>"))), None)
        token = TimedPreview.first_delta.get(chat)
        if drafts and shown is not None and token is not None:
            text_after_token.append(shown - token)
            sentence_after_token.append(TimedPreview.first_sentence[chat] - token)
    return {"feedback": feedback, "text": text_after_token, "sentence": sentence_after_token, "chats": chats}


class CountingLive:
    def __init__(self) -> None:
        self.count = 0

    def status(self, text: str) -> None:
        self.count += 1

    def text(self, text: str) -> None:
        self.count += 1


async def cpu_round(folder: Path, model_url: str, turns: int, *, stream: bool) -> float:
    settings = _settings(folder / f"cpu-{stream}-{time.monotonic_ns()}", openai_api_key="sk-bench",
                         openai_base_url=model_url, openai_max_retries=0, openai_stream=stream)
    runtime = build_runtime(settings)
    await runtime.db.migrate()
    assistant = runtime.assistant
    assert assistant is not None
    live = CountingLive()
    engines: set[str] = set()

    async def turn(n: int) -> None:
        inbound = Inbound(channel=Channel.telegram, user_id=f"cpu{n % 20}", text=f"Вопрос {n}: расскажите о курсах",
                          idempotency_key=f"cpu:{stream}:{n}")
        with live_reply(live):
            engines.add((await assistant.handle(inbound)).engine)

    try:
        await turn(-1)  # warm-up (SDK models built on first use)
        started = time.process_time()
        for block in range(0, turns, 20):  # 20 conversations at once, as in a busy hour
            await asyncio.gather(*(turn(n) for n in range(block, min(turns, block + 20))))
        spent = time.process_time() - started
    finally:
        await runtime.close()
    if engines != {"model"} or (stream and live.count == 0) or (not stream and live.count):
        raise RuntimeError(f"expected model turns, streamed={stream}: engines {engines}, live texts {live.count}")
    return spent / turns * 1000


def ms(values: list[float], share: float) -> float:
    return _percentile(values, share) * 1000


async def run(args: argparse.Namespace) -> int:
    model_turn.AnswerPreview = TimedPreview  # type: ignore[misc]
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        process, url = start_fake_server(args.delay, args.delta_delay)
        try:
            drafted = await feedback_round(Path(folder) / "drafts", url, args.chats, drafts=True, mode=args.mode)
            typing = await feedback_round(Path(folder) / "typing", url, args.chats, drafts=False, mode=args.mode)
        finally:
            process.terminate()
            process.wait(10)
        fast, fast_url = start_fake_server(0.0, 0.0)
        try:
            streamed, plain = [], []
            for _ in range(args.rounds):
                plain.append(await cpu_round(Path(folder), fast_url, args.cpu_turns, stream=False))
                streamed.append(await cpu_round(Path(folder), fast_url, args.cpu_turns, stream=True))
        finally:
            fast.terminate()
            fast.wait(10)
    d, t = drafted["feedback"], typing["feedback"]
    print(f"feedback ({args.chats} chats at once, {args.mode} mode, model's first token after {args.delay:g} s):")
    if len(d) < args.chats or len(t) < args.chats:
        print(f"  MISSING feedback: drafts {len(d)}/{args.chats}, typing {len(t)}/{args.chats}")
        ok = False
    met = ms(d, 0.5) <= 300 and ms(d, 0.99) <= 300
    ok &= met
    print(f"  «Thinking…» draft: p50 {ms(d, 0.5):.0f} ms · p99 {ms(d, 0.99):.0f} ms   [target <= 300 ms: {'met' if met else 'MISSED'}]")
    print(f"  baseline, typing indicator (drafts refused): p50 {ms(t, 0.5):.0f} ms · p99 {ms(t, 0.99):.0f} ms"
          f" → drafts/typing p50 {statistics.median(d) / statistics.median(t):.2f}×")
    x, s = drafted["text"], drafted["sentence"]
    print(f"first visible text after the model's first token ({len(x)} chats, one draft a second per chat):")
    met = bool(x) and ms(x, 0.5) <= 1200 and ms(x, 0.99) <= 1200
    ok &= met
    print(f"  p50 {ms(x, 0.5):.0f} ms · p99 {ms(x, 0.99):.0f} ms   [target <= 1200 ms: {'met' if met else 'MISSED'}]")
    print(f"  baseline, first whole sentence written: p50 {ms(s, 0.5):.0f} ms · p99 {ms(s, 0.99):.0f} ms"
          f" → shown/written p50 {statistics.median(x) / statistics.median(s):.2f}×")
    ratio = statistics.median(streamed) / statistics.median(plain)
    met = ratio <= 1.3
    ok &= met
    print(f"CPU per turn ({args.rounds} rounds × {args.cpu_turns} turns each, instant fake model):")
    print(f"  streamed {statistics.median(streamed):.1f} ms (rounds {', '.join(f'{v:.1f}' for v in streamed)}) · "
          f"not streamed {statistics.median(plain):.1f} ms (rounds {', '.join(f'{v:.1f}' for v in plain)})"
          f" → {ratio:.2f}×   [target <= 1.3×: {'met' if met else 'MISSED'}]")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--mode", choices=("polling", "webhook"), default="polling")
    parser.add_argument("--delay", type=float, default=1.0, help="the model's time to its first token")
    parser.add_argument("--delta-delay", type=float, default=0.05, help="seconds between the model's text deltas")
    parser.add_argument("--cpu-turns", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
