"""Queue workers: claim due updates, run different chats at once, keep claims alive, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from adapters.retry import Backoff
from adapters.telegram.claims import ClaimLost, processing_under
from adapters.telegram.queue import ClaimedUpdate, UpdateQueue
from agent.logging_setup import describe_error

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0  # below docker's stop_grace_period (30 s) and uvicorn's (20 s)
HOUSEKEEPING_MIN_SECONDS = 0.2
INGEST_QUIET_SECONDS = 0.05  # no webhook request for this long ends a burst
COMPLETION_BATCH_SECONDS = 0.02
BURST_CLAIMS = 4  # during a burst: at most this many updates claimed...
BURST_CLAIM_INTERVAL_SECONDS = 0.05  # ...per interval (80 updates/s)


class PermanentFailure(Exception):
    """The update can never be processed (e.g. its payload is not a valid Update): dead-letter it now."""


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class UpdateWorkers:
    """One per process. ``handle`` processes one update; raising schedules a retry."""

    name = "telegram-workers"

    def __init__(
        self,
        queue: UpdateQueue,
        handle: Callable[[ClaimedUpdate], Awaitable[None]],
        *,
        concurrency: int,
        poll_seconds: float,
        on_dead: Callable[[ClaimedUpdate], Awaitable[None]] | None = None,
        shutdown_grace_seconds: float = SHUTDOWN_GRACE_SECONDS,
        claim_retry: Backoff | None = None,
    ) -> None:
        self.queue = queue
        self.handle = handle
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        # The database is down: claims are retried slower (TELEGRAM_CLAIM_RETRY_MAX_SECONDS).
        self.claim_retry = claim_retry or Backoff(2 * poll_seconds, 10.0)
        self.on_dead = on_dead
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.worker_id = worker_name()
        self.inflight: dict[asyncio.Task[None], ClaimedUpdate] = {}
        self.processed = 0

    async def run(self) -> None:
        housekeeping = asyncio.create_task(self._housekeeping(), name="telegram-queue-housekeeping")
        try:
            await self._claim_loop()
        except asyncio.CancelledError:
            await self._drain()
            raise
        finally:
            housekeeping.cancel()

    async def _claim_loop(self) -> None:
        wakeup = self.queue.wakeup
        failures = 0
        while True:
            # Cleared before claiming, so a row queued meanwhile sets it again; when every slot is
            # busy, a finishing update sets it and the next claim picks up whatever arrived.
            wakeup.clear()
            self.queue.fresh_rows = False
            burst = self._ingesting()
            free = self.concurrency - len(self.inflight)
            if burst:
                free = min(free, BURST_CLAIMS)
            if free > 0:
                try:
                    claimed = await self.queue.claim(self.worker_id, free)
                    failures = 0
                except Exception as error:  # the database is down: keep trying, slower
                    failures += 1
                    delay = self.claim_retry.delay(failures)
                    log.error("claiming updates failed (%s); retrying in %.1fs", type(error).__name__, delay)
                    await asyncio.sleep(delay)
                    continue
                for item in claimed:
                    task = asyncio.create_task(self._process(item), name=f"telegram-update-{item.update_id}")
                    self.inflight[task] = item
                    task.add_done_callback(self._finished)
                if len(claimed) == free and not burst:
                    continue  # possibly more waiting: claim again once a slot frees
            if burst:
                await asyncio.sleep(BURST_CLAIM_INTERVAL_SECONDS)
                continue
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (SIGTERM).
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await wakeup.wait()
            except TimeoutError:
                continue  # another process may have queued something: look again
            if not self.queue.fresh_rows:
                # Only finished updates: let a few more finish, so one claim serves them all
                # (a claim that finds nothing costs as much as one that finds something).
                await asyncio.sleep(COMPLETION_BATCH_SECONDS)

    def _ingesting(self) -> bool:
        """Whether webhook requests are arriving: then claims are rationed.

        The webhook and the workers share this process's event loop and (on SQLite) one database
        writer, and processing an update costs several times what taking one in does. Answering
        Telegram fast comes first (it waits for each answer before sending more): during a burst
        the workers claim a few updates per interval, and catch up in full once it ends.
        """
        queue = self.queue
        return queue.ingesting > 0 or asyncio.get_running_loop().time() - queue.last_ingest < INGEST_QUIET_SECONDS

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.inflight.pop(task, None)
        # A finished update may unblock the next one in its chat, and frees a slot.
        self.queue.wakeup.set()

    async def _process(self, item: ClaimedUpdate) -> None:
        try:
            with processing_under(lambda: self.queue.confirm(item, self.worker_id)):
                await self.handle(item)
        except ClaimLost:
            log.info("update %s: its lease lapsed and another worker took it over; that one answers", item.update_id)
        except asyncio.CancelledError:
            await self._quietly(self.queue.release(item, self.worker_id))
            raise
        except PermanentFailure as error:
            log.error("update %s dead-lettered: %s", item.update_id, error)
            await self._quietly(self.queue.fail(item, self.worker_id, str(error), permanent=True))
        except Exception as error:
            description = describe_error(error)  # stored as last_error too: no statement values
            log.warning("update %s failed (attempt %s): %s", item.update_id, item.attempts, description, exc_info=True)
            status = await self._quietly(self.queue.fail(item, self.worker_id, description))
            if status == "dead" and self.on_dead is not None:
                await self._quietly(self.on_dead(item))
        else:
            await self._quietly(self.queue.complete(item, self.worker_id))
            self.processed += 1

    async def _quietly(self, step: Awaitable[str | None]) -> str | None:
        """A bookkeeping write that fails leaves the claim to expire; the update is then reclaimed."""
        try:
            return await step
        except Exception as error:
            log.error("update queue bookkeeping failed: %s", type(error).__name__)
            return None

    async def _housekeeping(self) -> None:
        interval = max(self.queue.lease.total_seconds() / 3, HOUSEKEEPING_MIN_SECONDS)
        while True:
            await asyncio.sleep(interval)
            try:
                if self.inflight:
                    await self.queue.extend_leases(self.worker_id)
                dead, purged = await self.queue.maintain()
                if dead or purged:
                    log.info("update queue: %s dead-lettered after repeated crashes, %s done rows purged", dead, purged)
            except Exception as error:
                log.error("update queue housekeeping failed: %s", type(error).__name__)

    async def _drain(self) -> None:
        """SIGTERM: let in-flight updates finish for a while, then hand the rest back to the queue."""
        if not self.inflight:
            return
        tasks = list(self.inflight)
        log.info("stopping: waiting for %s in-flight update(s)", len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.info("released %s unfinished update(s) back to the queue", len(pending))
