"""SharedSpacing (the Telegram global budget across replicas, on Redis's clock) never lets a sender use a
moment its event loop woke it too late for: a saturated process woke hundreds of waiting senders late
and they went out together (bench/scale_webhooks.py: up to 50 messages in one second against 30)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from adapters.http.ratelimit import SharedSpacing
from tests.replicas import most_in_any_window

pytestmark = pytest.mark.redis


async def test_senders_woken_late_take_new_moments_instead_of_going_out_together(redis_url: str) -> None:
    spacing = SharedSpacing(redis_url, f"test-{uuid.uuid4().hex[:8]}", 10)  # one every 0.1 s
    went: list[float] = []

    async def send() -> None:
        async with spacing:
            went.append(time.monotonic())

    try:
        senders = [asyncio.create_task(send()) for _ in range(10)]
        await asyncio.sleep(0.05)  # each has reserved its moment: 0.0, 0.1, ... 0.9 s from now
        time.sleep(0.6)  # the event loop is busy elsewhere while six of those moments pass
        await asyncio.gather(*senders)
        given_up = int(await spacing._redis.get(spacing.late_key) or 0)  # noqa: SLF001
    finally:
        await spacing.aclose()
    # Woken together, the six late senders would go out within milliseconds; they take new moments
    # 0.1 s apart instead, so no 0.25 s holds more than the rate allows (3) plus one on time.
    assert len(went) == 10
    assert given_up >= 5  # counted where operators and bench/scale_webhooks.py can read it
    assert most_in_any_window(went, 0.25) <= 4, [round(t - went[0], 3) for t in sorted(went)]
