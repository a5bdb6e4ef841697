"""SharedSpacing (the Telegram global budget and amo's pace across replicas, on Redis's clock) never lets
more than its rate be used in any second, however late a busy event loop wakes its senders: a
saturated process woke hundreds of waiting senders late and they went out together
(bench/scale_webhooks.py: up to 52 messages in one second against 30). And a late sender is not
starved: it still goes while the second has room."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from adapters.http.ratelimit import SharedSpacing
from tests.replicas import most_in_any_window

pytestmark = pytest.mark.redis


async def test_senders_woken_late_never_put_more_than_the_rate_in_one_second(redis_url: str) -> None:
    spacing = SharedSpacing(redis_url, f"test-{uuid.uuid4().hex[:8]}", 10)  # one every 0.1 s, 10 a second
    went: list[float] = []

    async def send() -> None:
        async with spacing:
            went.append(time.monotonic())

    try:
        senders = [asyncio.create_task(send()) for _ in range(30)]
        # Until every sender has reserved its moment (0.0 ... 2.9 s ahead), however slow the machine.
        deadline = time.monotonic() + 20
        while float(await spacing._redis.get(spacing._key) or 0) - time.time() < 2.0:  # noqa: SLF001
            assert time.monotonic() < deadline, "the senders did not reserve their moments"
            await asyncio.sleep(0.01)
        # The stall starts right after a sender has gone: the next moment is 0.1 s away, so no claim is
        # in flight. (One sent just before the stall is used on Redis's clock then, but its sender
        # resumes only after the stall, beside the late ones: 11 within a second on this clock.)
        gone = len(went)
        while len(went) == gone:
            assert time.monotonic() < deadline, "no sender went"
            await asyncio.sleep(0.002)
        began = time.monotonic()
        time.sleep(1.2)  # the event loop is busy elsewhere while a dozen of those moments pass
        await asyncio.gather(*senders)
        elapsed = time.monotonic() - began
        given_up = int(await spacing._redis.get(spacing.late_key) or 0)  # noqa: SLF001
    finally:
        await spacing.aclose()
    # Woken together, the late senders would go out at once; at most 10 of them use their moments in
    # that second, the others reserve new ones (counted where operators and the benches read it).
    assert len(went) == 30
    assert most_in_any_window(went, 1.0) <= 10, [round(t - min(went), 3) for t in sorted(went)]
    assert given_up >= 1
    # Nobody starves: 30 at 10 a second after the stall, with slack for a loaded machine.
    assert elapsed < 1.2 + 3.0 + 4.0, elapsed
