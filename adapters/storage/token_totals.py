"""Today's token spend for the daily budgets, without a SUM over model_usage on every turn.

Each (day start, user) total — and the (day start, everyone) total — is read from model_usage once,
then kept up to date in memory from the usage this process writes, and read again from the database
once it is older than ``refresh_seconds``. Without Redis a budget is a soft limit: with several
processes (API and bot workers) each sees the others' spend at most ``refresh_seconds`` late, so
together they may overshoot a budget by what the others spent within that window. With REDIS_URL,
``SharedTokenTotals`` keeps the totals in Redis and the budgets are hard across processes.
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

    async def user_and_total(self, since: datetime, user_id: int) -> tuple[int, int]:
        return await self.since(since, user_id=user_id), await self.since(since)

    async def add(self, records: Iterable[UsageRecord], at: datetime) -> None:
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

    async def aclose(self) -> None:
        return None


# INCRBY only the totals that exist (KEYS[i] by ARGV[i]), all in one round trip: a missing one is read
# from model_usage (the truth, which already holds the usage being added) the next time a budget is checked.
_ADD_IF_PRESENT = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, ARGV[i]) end
end
return nil
"""
KEY_TTL_SECONDS = 2 * 86_400


class SharedTokenTotals:
    """Today's totals in Redis (REDIS_URL), shared by every process: the daily budgets are hard across
    processes, each check reading what all of them have committed so far.

    A (UTC day, user) total is read from model_usage once (``SET NX``, so the first reader wins) and
    then only incremented, by each process right after it commits usage; it expires after two days.
    The one gap: usage committed between a first reader's SUM and its ``SET NX`` is not counted (a
    window of one round trip, once per user and day). ``since`` values that are not a UTC midnight
    (the service asks only for day starts) are summed from the database every time.
    """

    def __init__(self, query: Query, redis_url: str, *, prefix: str = "sales_agent:tokens") -> None:
        import redis.asyncio as redis

        self._query = query
        self._redis = redis.from_url(redis_url)
        self._prefix = prefix
        self._add = self._redis.register_script(_ADD_IF_PRESENT)

    def _key(self, day: datetime, user_id: int | None) -> str:
        return f"{self._prefix}:{day.date().isoformat()}:{'all' if user_id is None else user_id}"

    async def since(self, since: datetime, *, user_id: int | None = None) -> int:
        if since != since.replace(hour=0, minute=0, second=0, microsecond=0):
            return await self._query(since, user_id)
        key = self._key(since, user_id)
        value = await self._redis.get(key)
        if value is None:
            await self._redis.set(key, await self._query(since, user_id), nx=True, ex=KEY_TTL_SECONDS)
            value = await self._redis.get(key)
        return int(value or 0)

    async def user_and_total(self, since: datetime, user_id: int) -> tuple[int, int]:
        """The user's total and everyone's, in one round trip when both are kept (a turn checks both)."""
        if since == since.replace(hour=0, minute=0, second=0, microsecond=0):
            user, total = await self._redis.mget(self._key(since, user_id), self._key(since, None))
            if user is not None and total is not None:
                return int(user), int(total)
        return await self.since(since, user_id=user_id), await self.since(since)

    async def add(self, records: Iterable[UsageRecord], at: datetime) -> None:
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        totals: dict[int | None, int] = {}
        for record in records:
            if record.usage.total_tokens:
                for user in {record.user_id, None}:
                    totals[user] = totals.get(user, 0) + record.usage.total_tokens
        if totals:
            await self._add(keys=[self._key(day, user) for user in totals], args=list(totals.values()))

    async def aclose(self) -> None:
        await self._redis.aclose()
