"""A small run of the queue benchmark's in-process scenarios: correctness only, not speed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import REPO
from tests.fakes.telegram_api import FakeBotAPI

spec = importlib.util.spec_from_file_location("telegram_queue_bench", REPO / "bench" / "telegram_queue.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


async def test_processing_and_many_chats_scenarios_complete(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    rate = await bench.measure_processing(fake_api.base_url, tmp_path, None, 40)
    assert rate > 0
    assert len(fake_api.calls_of("sendMessage")) == 40
    seconds = await bench.measure_chats(fake_api.base_url, tmp_path, None, 20, 0.2)
    assert 0.2 <= seconds < 2.0  # 20 chats x 0.2 s overlapped instead of running one after another
    assert len({c.params["chat_id"] for c in fake_api.calls_of("sendMessage")}) == 40 + 20
