"""Today's token spend for the daily budgets, without a SUM over model_usage on every turn.

Each (day start, user) total — and the (day start, everyone) total — is read from model_usage once,
then kept up to date in memory from the usage this process writes, and read again from the database
once it is older than ``refresh_seconds``. A budget is a soft limit: with several processes (API and
bot workers) each sees the others' spend at most ``refresh_seconds`` late, so together they may
overshoot a budget by what the others spent within that window.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from agent.state import UsageRecord

REFRESH_SECONDS = 60.0
MAX_ENTRIES = 10_000  # users active today; the least recently read are forgotten first

# (since, user_id | None) -> tokens spent since then by that user (None: by everyone)
Query = Callable[[datetime, int | None], Awaitable[int]]


@dataclass
class _Entry:
    tokens: int
    read_at: float


class TokenTotals:
    def __init__(
        self,
        query: Query,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._query = query
        self._refresh = refresh_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[datetime, int | None], _Entry] = OrderedDict()
        self._days: set[datetime] = set()  # the ``since`` values asked for: one a UTC day

    async def since(self, since: datetime, *, user_id: int | None = None) -> int:
        key = (since, user_id)
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry.read_at >= self._refresh:
            entry = _Entry(await self._query(since, user_id), self._clock())
            self._entries[key] = entry
            self._days.add(since)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return entry.tokens

    def add(self, records: Iterable[UsageRecord], at: datetime) -> None:
        """Count usage this process has just committed (``at``: its created_at)."""
        days = [since for since in self._days if since <= at]
        for record in records:
            tokens = record.usage.total_tokens
            if not tokens:
                continue
            for since in days:
                for user in {record.user_id, None}:
                    entry = self._entries.get((since, user))
                    if entry is not None:
                        entry.tokens += tokens
