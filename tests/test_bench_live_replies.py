"""Smoke run of bench/live_replies.py: its figures come from real feedback and real streamed turns
(correctness, not speed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_live_replies", REPO / "bench" / "live_replies.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.real_transport
async def test_feedback_first_text_and_cpu_figures_come_from_real_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.model_turn, "AnswerPreview", bench.TimedPreview)
    process, url = bench.start_fake_server(1.0, 0.02)
    try:
        drafted = await bench.feedback_round(tmp_path / "drafts", url, 3, drafts=True)
        typing = await bench.feedback_round(tmp_path / "typing", url, 3, drafts=False)
        streamed = await bench.cpu_round(tmp_path, url, 4, stream=True)  # raises unless the turns streamed
        plain = await bench.cpu_round(tmp_path, url, 4, stream=False)
    finally:
        process.terminate()
        process.wait(10)
    assert len(drafted["feedback"]) == len(typing["feedback"]) == 3
    assert len(drafted["text"]) == 3 and all(0 < x for x in drafted["text"])
    assert all(s <= x for s, x in zip(drafted["sentence"], drafted["text"], strict=True))
    assert streamed > 0 and plain > 0
