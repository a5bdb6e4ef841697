"""Rate limits on the `limits` library: in memory by default, shared through Redis when REDIS_URL is set."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until a request would be allowed again (0 when allowed)


def make_storage(redis_url: str | None) -> Storage:
    if redis_url:
        scheme, rest = redis_url.split("://", 1)
        return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix="sales_agent")
    return MemoryStorage()


class RateLimiter:
    """A named limit of ``requests`` per ``window_seconds`` for any key (a user id, an IP)."""

    def __init__(self, storage: Storage, name: str, requests: int, window_seconds: int) -> None:
        # The sliding-window counter keeps two counters per key that expire, so memory stays bounded
        # under many distinct keys (the moving window keeps every event and purged them far slower).
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.name = name
        self.item = RateLimitItemPerSecond(requests, window_seconds)

    async def hit(self, key: str) -> Decision:
        if await self.limiter.hit(self.item, self.name, key):
            return Decision(True, 0)
        stats = await self.limiter.get_window_stats(self.item, self.name, key)
        return Decision(False, max(1, math.ceil(stats.reset_time - time.time())))
