#!/usr/bin/env python3
"""N assistant processes behind one PostgreSQL (and one Redis) serve conversations as one service (issue 18).

    python bench/scale_agent.py [--processes 3] [--conversations 300] [--turns 3] [--delay 1.0] [--runs 1]

Starts ``--processes`` worker processes, each building the production runtime (adapters.wiring.build_runtime:
the real AssistantService, storage on one fresh PostgreSQL database, REDIS_URL set so the daily token
budgets are shared) with the real openai SDK over HTTP to the fake Responses server of
bench/agent_service.py (`python -m tests.fake_responses`, a process of its own) that answers every
call after ``--delay`` seconds. The conversations are split evenly between the processes; each process
runs its share at once, each conversation's turns one after another. Every process does one untimed
warm-up turn, then all start together.

Ideal, as in bench/agent_service.py: every conversation's turns take turns × delay, so all
conversations × turns finish in turns × delay seconds; printed as the achieved rate's fraction of that
(elapsed from the first process's start to the last one's end). Target: >= 95 %.

Baseline, in the same run (``--no-floor`` to skip): the same processes and conversations where a turn is
only its model call, through the same SDK client with the warm-up turn's instructions, tools and answer
format (no storage, no locks, no guardrails): what this machine allows before the service does anything,
printed as a fraction of ideal next to the service's, and the service's fraction of that floor.

Checks, printed with the figures: every turn answered by the model (none fell back to offline), and
the database holds each conversation's messages exactly once (a user message and a reply per turn).

Needs PostgreSQL and Redis on 127.0.0.1 (TEST_PG_DSN as the tests use it; SCALE_REDIS_URL, below).
tests/test_scale_agent.py runs it small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from uvicorn.loops.auto import auto_loop_factory  # noqa: E402

from bench.agent_service import _settings, run_conversations, start_fake_server, warm_up  # noqa: E402
from tests.pg_database import fresh_database  # noqa: E402
from tests.replicas import flush_limits  # noqa: E402

# A Redis database of its own (SCALE_REDIS_URL to change it): the service's keys (token totals per user id,
# send budgets) must not meet those of tests or other benchmarks running beside it on the same Redis,
# and the run clears its limits first.
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/11")
TARGET = 0.95
START_TIMEOUT = 120.0  # a worker imports the SDKs and the catalog: seconds on a loaded 2-core machine


@dataclass
class Outcome:
    processes: int
    conversations: int
    turns: int
    delay: float
    elapsed: float
    answered: int  # turns the model answered
    offline: int  # turns that fell back to offline (the fake server not reached)
    stored_once: bool  # every conversation's messages in the database exactly once
    per_process_s: tuple[float, ...]  # each process's own elapsed time
    workers_cpu_s: float  # CPU the worker processes used while they ran their conversations
    machine_busy_s: float  # CPU the whole machine used meanwhile (all cores: PostgreSQL, the fake server, …)

    @property
    def ideal(self) -> float:
        return self.turns * self.delay

    @property
    def fraction(self) -> float:
        return self.ideal / self.elapsed

    @property
    def ok(self) -> bool:
        return self.offline == 0 and self.answered == self.conversations * self.turns and self.stored_once

    def report(self) -> str:
        total = self.conversations * self.turns
        met = "met" if self.fraction >= TARGET else "MISSED"
        return "\n".join([
            f"{self.processes} processes on one PostgreSQL + Redis, {self.conversations} conversations × {self.turns} turns, "
            f"fake Responses server answering after {self.delay:g} s:",
            f"  {total} turns in {self.elapsed:.2f} s (ideal {self.ideal:.2f} s) · {total / self.elapsed:.1f} turns/s of ideal "
            f"{total / self.ideal:.1f} → {self.fraction:.0%} of ideal   [target >= {TARGET:.0%}: {met}]",
            f"  each process: {' / '.join(f'{s:.2f} s' for s in self.per_process_s)}",
            f"  CPU per turn: {self.workers_cpu_s / total * 1000:.1f} ms in the workers, {self.machine_busy_s / total * 1000:.1f} ms "
            f"machine-wide (busy {self.machine_busy_s:.1f} of {os.cpu_count()} × {self.elapsed:.1f} core-seconds)",
            f"  answered by the model: {self.answered}/{total} (offline fallbacks: {self.offline}); "
            f"each conversation's messages stored exactly once: {self.stored_once}",
            f"  guarantees: {'all held' if self.ok else 'BROKEN'}",
        ])


# ---- the worker process -------------------------------------------------------------------------

async def floor_conversations(llm: Any, request: dict[str, Any], numbers: range, turns: int) -> list[str]:
    """The baseline: each turn only the model call (the warm-up turn's request with the turn's question)."""
    engines: list[str] = []

    async def conversation(c: int) -> None:
        for t in range(turns):
            items = [{"role": "user", "content": f"Вопрос номер {t}: расскажите о курсах"}]
            await llm.respond(**{**request, "input_items": items})
            engines.append("model")

    await asyncio.gather(*(conversation(c) for c in numbers))
    return engines


async def worker(first: int, count: int, turns: int, folder: Path, *, floor: bool = False) -> None:
    import logging

    logging.disable(logging.WARNING)
    from adapters.wiring import build_runtime

    settings = _settings(
        folder, openai_api_key="sk-bench", openai_base_url=os.environ["BENCH_OPENAI_BASE_URL"], openai_max_retries=0,
        database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"],
    )
    runtime = build_runtime(settings)
    assistant = runtime.assistant
    assert assistant is not None
    llm = assistant.model.llm if assistant.model is not None else None
    assert llm is not None
    request: dict[str, Any] = {}
    respond = llm.respond

    async def recorded(**kwargs: Any) -> Any:  # the warm-up turn's model request, for the floor
        request.update(kwargs)
        return await respond(**kwargs)

    llm.respond = recorded  # type: ignore[method-assign]
    try:
        await warm_up(assistant, f"warm-up-{first}")
        llm.respond = respond  # type: ignore[method-assign]
        print("ready", flush=True)
        sys.stdin.readline()  # "go": every process starts at once
        started, cpu = time.time(), time.process_time()
        numbers = range(first, first + count)
        if floor:
            engines = await floor_conversations(llm, request, numbers, turns)
        else:
            engines = await run_conversations(assistant, numbers, turns)
        ended, cpu = time.time(), time.process_time() - cpu
    finally:
        await runtime.close()
    print(json.dumps({"started": started, "ended": ended, "cpu": cpu, "engines": engines}), flush=True)


# ---- the driver ---------------------------------------------------------------------------------

def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _migrate(database_url: str, folder: Path) -> None:
    from adapters.wiring import build_runtime

    async def go() -> None:
        runtime = build_runtime(_settings(folder, database_url=database_url))
        try:
            await runtime.db.migrate()
        finally:
            await runtime.close()

    asyncio.run(go())


def stored_once(database_url: str, conversations: int, turns: int) -> bool:
    """Each bench conversation (user c<N>) holds exactly 2 × turns messages, none repeated."""
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT u.external_id, m.role, m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN users u ON u.id = c.user_id WHERE u.external_id LIKE 'c%'"
        ).fetchall()
    by_user: dict[str, list[tuple[str, str]]] = {}
    for external_id, role, content in rows:
        by_user.setdefault(str(external_id), []).append((str(role), str(content)))
    if len(by_user) != conversations:
        return False
    for messages in by_user.values():
        questions = [content for role, content in messages if role == "user"]
        if len(messages) != 2 * turns or len(set(questions)) != turns:
            return False
    return True


def run(processes: int, conversations: int, turns: int, delay: float, *, workdir: Path, floor: bool = False) -> Outcome:
    flush_limits(REDIS_URL)  # earlier runs' token totals for the same user ids (keys are per user id)
    fake, base_url = start_fake_server(delay)
    workers: list[subprocess.Popen[str]] = []
    try:
        with fresh_database("scale_agent") as database_url:
            _migrate(database_url, workdir / "migrate")
            env = {
                # LANG as the image sets it (python:3.11-slim): under the C locale turns took twice as long.
                "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT), "HOME": str(workdir),
                "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "BENCH_OPENAI_BASE_URL": base_url,
            }
            share = conversations // processes
            for n in range(processes):
                count = share if n < processes - 1 else conversations - share * (processes - 1)
                workers.append(subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--worker", str(n * share), str(count),
                     "--turns", str(turns), "--workdir", str(workdir / f"worker-{n}"), *(["--floor"] if floor else [])],
                    cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                ))
            for process in workers:  # each has built its runtime and done its warm-up turn
                assert process.stdout is not None
                line = process.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError(f"a worker did not start (exit {process.poll()}): {line!r}")
            busy = machine_busy_seconds()
            for process in workers:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            results = []
            for process in workers:
                assert process.stdout is not None
                results.append(json.loads(process.stdout.readline()))
            busy = machine_busy_seconds() - busy
            for process in workers:
                process.wait(START_TIMEOUT)
            once = floor or stored_once(database_url, conversations, turns)
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
        fake.terminate()
        fake.wait(10)
    engines = [engine for result in results for engine in result["engines"]]
    return Outcome(
        processes=processes, conversations=conversations, turns=turns, delay=delay,
        elapsed=max(r["ended"] for r in results) - min(r["started"] for r in results),
        answered=engines.count("model"), offline=engines.count("offline"), stored_once=once,
        per_process_s=tuple(r["ended"] - r["started"] for r in results),
        workers_cpu_s=sum(r["cpu"] for r in results), machine_busy_s=busy,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--worker", nargs=2, type=int, metavar=("FIRST", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)  # a worker of the baseline
    parser.add_argument("--no-floor", action="store_true", help="skip the model-call-only baseline")
    args = parser.parse_args()
    if args.worker:
        args.workdir.mkdir(parents=True, exist_ok=True)
        # The event loop `serve` runs on (uvloop when installed: adapters/main.py), as in production.
        with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
            runner.run(worker(args.worker[0], args.worker[1], args.turns, args.workdir, floor=args.floor))
        return
    fractions: list[float] = []
    floors: list[float] = []
    ok = True
    for number in range(args.runs):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="bench-scale-agent-") as tmp:
            if not args.no_floor:
                floor = run(args.processes, args.conversations, args.turns, args.delay, workdir=Path(tmp) / "floor", floor=True)
                floors.append(floor.fraction)
            outcome = run(args.processes, args.conversations, args.turns, args.delay, workdir=Path(tmp))
        print(f"run {number + 1} (load average before {load:.2f}, after {os.getloadavg()[0]:.2f}):")
        print(outcome.report())
        if not args.no_floor:
            print(f"  floor (each turn only its model call, same processes and SDK client): {floor.elapsed:.2f} s → "
                  f"{floor.fraction:.0%} of ideal; the service reaches {outcome.fraction / floor.fraction:.0%} of the floor")
        fractions.append(outcome.fraction)
        ok = ok and outcome.ok
    if args.runs > 1:
        print(f"fraction of ideal over {args.runs} runs: median {statistics.median(fractions):.0%} "
              f"(min {min(fractions):.0%}, max {max(fractions):.0%})   [target >= {TARGET:.0%}: "
              f"{'met' if min(fractions) >= TARGET else 'MISSED'}]")
        if floors:
            print(f"floor over {args.runs} runs: median {statistics.median(floors):.0%} (min {min(floors):.0%}, max {max(floors):.0%})")
    sys.exit(0 if ok and min(fractions) >= TARGET else 1)


if __name__ == "__main__":
    main()
