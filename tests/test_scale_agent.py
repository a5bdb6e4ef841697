"""bench/scale_agent.py at CI size: 3 assistant processes on one PostgreSQL and Redis, the real openai
SDK against the fake Responses server: every turn answered by the model, each conversation's messages
stored exactly once, and the conversations of all processes waiting on the model at the same time
(the run takes about turns × delay, not conversations × turns × delay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import scale_agent as bench

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_three_assistant_processes_on_one_database_serve_conversations_at_once(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    outcome = bench.run(3, 60, 2, 1.0, workdir=tmp_path)  # ~20-40 s with the processes' start
    report = outcome.report()
    print(report)
    assert outcome.offline == 0 and outcome.answered == 120, report
    assert outcome.stored_once, report
    # Ideal 2 s; each process's 20 conversations one after another would take 40 s (5 % of ideal). The
    # full size and its >= 95 % target are the benchmark's (README: CPU-bound on 2 cores, not met);
    # here a turn costs ~10 ms of CPU with PostgreSQL, so a loaded CI machine still stays well above 30 %.
    assert outcome.fraction >= 0.3, report


def test_the_floor_runs_only_the_model_calls(tmp_path: Path, redis_url: str, postgres_url: str) -> None:
    """The baseline the benchmark prints beside the service: the same processes, each turn only its model call."""
    outcome = bench.run(2, 10, 2, 0.5, workdir=tmp_path, floor=True)
    assert outcome.answered == 20 and outcome.offline == 0, outcome.report()
    assert outcome.workers_cpu_s > 0 and outcome.machine_busy_s > 0
