"""Smoke run of bench/startup.py: one launch per mode, each a real process answering /api/health with 200."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_startup", REPO / "bench" / "startup.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_every_mode_starts_and_answers_health() -> None:
    samples = bench.measure(1, timeout=60, warm_up=False)  # time_to_health raises unless a 200 came
    assert set(samples) == {"baseline", *bench.MODES, "imports"}
    assert all(len(values) == 1 and 0 < values[0] < 60 for values in samples.values())
