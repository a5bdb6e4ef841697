"""The one retry policy type and where each loop's numbers come from (Settings)."""

from __future__ import annotations

from pathlib import Path

from tenacity import RetryCallState

from adapters.crm.outbox import OutboxWorker
from adapters.retry import Backoff
from adapters.wiring import build_runtime
from tests.conftest import make_settings
from tests.webapp_helpers import TEST_BOT_TOKEN


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    retry = Backoff(2.0, 60.0)
    assert [retry.delay(n) for n in (1, 2, 3, 4, 5, 6, 40)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_jitter_only_adds_up_to_its_share() -> None:
    retry = Backoff(5.0, 1800.0, jitter=0.1)
    delays = [retry.delay(3) for _ in range(200)]
    assert all(20.0 <= d <= 22.0 for d in delays) and len(set(delays)) > 1


def test_the_tenacity_wait_counts_failures_the_same_way() -> None:
    retry = Backoff(0.5, 10.0)
    wait = retry.tenacity_wait()
    for attempt in (1, 2, 3, 6):
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        assert wait(state) == retry.delay(attempt)


async def test_every_loop_takes_its_numbers_from_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, telegram_bot_token=TEST_BOT_TOKEN, crm_provider="amo", amo_api_url="http://127.0.0.1:9",
        amo_access_token="t", crm_retry_base_seconds=7, crm_retry_max_seconds=70,
        telegram_queue_retry_base_seconds=3, telegram_queue_retry_max_seconds=30,
        telegram_polling_retry_base_seconds=4, telegram_polling_retry_max_seconds=40,
        telegram_startup_retry_base_seconds=5, telegram_startup_retry_max_seconds=50,
        telegram_claim_retry_max_seconds=6, telegram_queue_poll_seconds=0.25,
        telegram_send_retry_base_seconds=0.1, telegram_send_retry_max_seconds=1,
    )
    runtime = build_runtime(settings)
    telegram = runtime.telegram
    assert telegram is not None
    (outbox,) = [s for s in runtime.background if isinstance(s, OutboxWorker)]
    assert outbox.policy.retry == Backoff(7, 70, jitter=0.1)
    assert telegram.queue.retry == Backoff(3, 30)
    assert telegram.polling.retry == Backoff(4, 40)
    assert telegram.startup_retry == Backoff(5, 50)
    assert telegram.workers.claim_retry == Backoff(0.5, 6)
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = 5
    assert telegram.policy._wait(state) == 1.0  # 0.1 doubled four times is 1.6, capped at 1
    await runtime.close()
