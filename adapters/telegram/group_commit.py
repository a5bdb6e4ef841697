"""Group commit: many callers, one transaction.

Each caller hands in one item and waits for its own result; a single flusher writes everything
that queued up meanwhile in one transaction. Under load N commits become a few, and every caller
still returns only after its item is committed (the webhook answers only then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500  # SQLite allows 32766 bound parameters per statement; 500 rows x 8 columns fit


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Result]]], max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # A caller that goes away (client disconnect) cancels only its own future: the write runs in
        # the flusher's task, which no caller awaits, so the others' items are written all the same
        # (and so is its own, already handed in). No asyncio.shield: its extra future and callbacks
        # per request were ~2 % of the webhook's CPU.
        return await future

    async def _flush(self) -> None:
        # One turn of the event loop before the first write: the requests whose bodies arrived with
        # this one's hand their items in too. Without it a batch took about half of what was in flight
        # (14 of 32 webhook requests under bench/http_hot_paths.py), with it nearly all (27): half the
        # commits, each writing the same shared pages once for twice the rows.
        await asyncio.sleep(0)
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
