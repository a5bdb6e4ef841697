"""Rate limits on the `limits` library: in memory by default, shared through Redis when REDIS_URL is set."""

from __future__ import annotations

import asyncio
import bisect
import math
import secrets
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from agent.settings import Settings


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until a request would be allowed again (0 when allowed)


class LoopMemoryStorage(MemoryStorage):
    """limits' in-memory storage with a cheaper clean-up. The library's own pass over every key starts
    again after any call that finds the last one finished, and hands each key's trim to a thread
    (``asyncio.to_thread`` per key): with the Telegram sender's chat keys (hundreds in a burst) those
    passes were ~9 % of the process's CPU under a webhook burst (py-spy, bench/http_hot_paths.py).
    Here a pass runs at most every ``EXPIRY_INTERVAL`` seconds, on the event loop: a bisect per key,
    with no await, so no other call sees a key half trimmed. The limits themselves are the library's
    (entries and counters are still judged by their own times); only the memory is freed later."""

    EXPIRY_INTERVAL = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._next_expiry = 0.0

    # The library calls its scheduler by its private (name-mangled) name before every hit; this
    # replaces it (tests/test_http_auth.py fails if a new limits release stops calling it).
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + self.EXPIRY_INTERVAL
            self.expire(time.time())

    def expire(self, now: float) -> None:
        """Drop the moving windows' entries and the counters that expired by ``now`` (epoch seconds)."""
        for key, events in list(self.events.items()):
            # Newest first: the entries from the first expired one on are all expired.
            kept = events[: bisect.bisect_left(events, -now, key=lambda event: -event.expiry)]
            if kept:
                self.events[key] = kept
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


def make_storage(redis_url: str | None) -> Storage:
    if redis_url:
        scheme, rest = redis_url.split("://", 1)
        return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix="sales_agent")
    return LoopMemoryStorage()


def storage_for(settings: Settings) -> Storage:
    """The limits' storage: Redis when REDIS_URL is set (shared by every process), else this process's memory."""
    return make_storage(settings.redis_url.get_secret_value() if settings.redis_url else None)


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
        return Decision(False, await self._retry_after(key))

    async def check(self, key: str) -> Decision:
        """Whether one more hit would be allowed, without taking it (a lock-out test before counting)."""
        if await self.limiter.test(self.item, self.name, key):
            return Decision(True, 0)
        return Decision(False, await self._retry_after(key))

    async def _retry_after(self, key: str) -> int:
        stats = await self.limiter.get_window_stats(self.item, self.name, key)
        return max(1, math.ceil(stats.reset_time - time.time()))


async def wait_for_slot(limiter: MovingWindowRateLimiter, item: RateLimitItem, *identifiers: str) -> None:
    """Wait until ``item`` allows one more hit for ``identifiers``, then take it. On a Redis storage
    every process counts against the same window, so N processes together stay within the limit."""
    while not await limiter.hit(item, *identifiers):
        stats = await limiter.get_window_stats(item, *identifiers)
        await asyncio.sleep(max(0.01, stats.reset_time - time.time()))


# A moving window on Redis's own clock: the time is read inside the script, when the entry is taken.
# (limits' moving window stamps entries with the caller's clock read before the round trip; a replica
# that waits for the CPU between the two enters its entry early, and on a loaded machine the replicas
# together overshot a window by half.) The scripts below start with _CLOCK, set key, limit, window, owner
# (the member's prefix), mode ('take', or 'peek': only tell how long until there is room) and
# wait_prefix, then end with _WINDOW_ENTRY: '0' when there is room (an entry taken unless peeking),
# else wait_prefix followed by the seconds until there is.
_CLOCK = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
"""
_WINDOW_ENTRY = """
redis.call('ZREMRANGEBYSCORE', key, '-inf', t - window)
if redis.call('ZCARD', key) < limit then
  if mode ~= 'peek' then
    redis.call('ZADD', key, t, owner .. ':' .. now[1] .. now[2])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
  end
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return wait_prefix .. tostring(tonumber(oldest[2]) + window - t)
"""


# Even spacing on Redis's own clock (a shared GCRA without burst): each caller gets the next free
# moment, at least 1/rate after the previous one, and is told that moment and how long to wait for it.
_NEXT_SLOT = _CLOCK + """
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(t, next_free)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil((slot + interval - t) * 1000) + 1000)
return {tostring(slot), tostring(slot - t)}
"""

# Using a reserved moment (SharedSpacing.take), on Redis's clock. KEYS[1] counts moments given up,
# KEYS[2] holds the moments used in the last second, KEYS[3] (optional) a chat's moving window.
# The seconds still to wait when the moment has not come yet. A moment is used when fewer than
# ARGV[2] were used in the last second — on time or late: a late one is not given up while the
# second has room, so a lagging loop loses no capacity and no send starves; when the second is full
# the moment is given up ('late') and the caller reserves a new one. Then, with a chat key, an entry
# in its window (ARGV[4] entries per ARGV[5] seconds) or 'chat:<seconds>' until it has room; '0' = go.
_CLAIM_SLOT = _CLOCK + """
local slot, cap, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
if slot > t then return tostring(slot - t) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t - 1)
if redis.call('ZCARD', KEYS[2]) >= cap then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], 86400)
  return 'late'
end
local member = owner .. ':' .. now[1] .. now[2]
if #KEYS == 3 then
  local limit, window = tonumber(ARGV[4]), tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', t - window)
  if redis.call('ZCARD', KEYS[3]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    return 'chat:' .. tostring(tonumber(oldest[2]) + window - t)
  end
  redis.call('ZADD', KEYS[3], t, member)
  redis.call('PEXPIRE', KEYS[3], math.ceil(window * 1000))
end
redis.call('ZADD', KEYS[2], t, member)
redis.call('PEXPIRE', KEYS[2], 2000)
return '0'
"""


# SharedWindow: a moving window on Redis's clock for one key of many; ARGV[4] == "peek" only tells
# how long until there is room, without taking it (SharedSpacing.take takes the entry).
_WINDOW_SLOT = _CLOCK + """
local key, limit, window, owner, mode, wait_prefix = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ''
""" + _WINDOW_ENTRY


class SharedWindow:
    """At most ``limit`` entries per key in any ``window`` seconds across every process using the
    same Redis, counted on Redis's clock when the entry is taken (see _CLOCK)."""

    def __init__(self, redis_url: str, name: str, limit: int, window: float, *, prefix: str = "sales_agent:window") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(redis_url)
        self._script = self._redis.register_script(_WINDOW_SLOT)
        self._prefix = f"{prefix}:{name}"
        self.limit, self.window = limit, window
        self._owner = secrets.token_hex(6)

    def key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def _call(self, key: str, mode: str) -> float:
        return float(await self._script(keys=[self.key(key)], args=[self.limit, self.window, self._owner, mode]))

    async def wait_for_room(self, key: str) -> None:
        while (wait := await self._call(key, "peek")) > 0:
            await asyncio.sleep(max(0.005, wait))

    async def aclose(self) -> None:
        await self._redis.aclose()


class SharedSpacing:
    """At most ``per_second`` a second across every process using the same Redis, spread evenly
    (one every 1/per_second s) instead of let through as a burst: a burst of N let go at once reaches
    the other side spread over the senders' scheduling delays, and overlaps the next second's burst
    there (bench/scale_webhooks.py saw 39-47 arrivals in one second against a window limit of 30).

    Whether a reserved moment may be used is decided on Redis's clock right before the send
    (``await spacing.take()``; ``take(window, key)`` also takes that key's window entry in the same
    step): a saturated process woke hundreds of waiting senders late and they went out together
    (38-52 in one second against 30), so at most ``per_second`` moments are used in any second
    however late their senders woke. A late sender still goes while the second has room (a lagging
    loop loses no capacity, no send starves); when it is full the moment is given up and counted
    (``late_key``), and the sender reserves another."""

    def __init__(self, redis_url: str, name: str, per_second: int, *, prefix: str = "sales_agent:spacing") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(redis_url)
        self._next = self._redis.register_script(_NEXT_SLOT)
        self._claim = self._redis.register_script(_CLAIM_SLOT)
        self._key = f"{prefix}:{name}"
        self._interval = 1.0 / per_second
        self._cap = per_second
        self._owner = secrets.token_hex(6)
        self.late_key = f"{self._key}:late"  # how many moments were given up, the second full (a day)
        self._used_key = f"{self._key}:used"

    async def reserve(self) -> str:
        """Reserve the next free moment and sleep until it; returns the moment (Redis's clock)."""
        slot, wait = await self._next(keys=[self._key], args=[self._interval])
        if float(wait) > 0:
            await asyncio.sleep(float(wait))
        return slot.decode() if isinstance(slot, bytes) else str(slot)

    async def take(self, window: SharedWindow | None = None, key: str | None = None) -> float:
        """Wait for a moment and use it: 0 when the caller may go now; > 0 when ``key``'s window
        has no room (the seconds until it has; the moment is then left unused)."""
        while True:
            slot = await self.reserve()
            while True:
                keys = [self.late_key, self._used_key]
                args: list[object] = [slot, self._cap, self._owner]
                if window is not None and key is not None:
                    keys.append(window.key(key))
                    args += [window.limit, window.window]
                answer = await self._claim(keys=keys, args=args)
                answer = answer.decode() if isinstance(answer, bytes) else str(answer)
                if answer == "late":
                    break  # the second is full: reserve a new moment
                if answer.startswith("chat:"):
                    return max(0.005, float(answer[5:]))
                if float(answer) > 0:  # woke before the moment (a clock step): wait for it
                    await asyncio.sleep(float(answer))
                    continue
                return 0.0

    async def __aenter__(self) -> None:
        await self.take()

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def aclose(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class AssistantLimits:
    """POST /api/assistant/ask limits (ASSISTANT_RATE_LIMIT_*), shared through Redis when REDIS_URL is set."""

    per_user: RateLimiter
    per_ip: RateLimiter  # authenticated requests
    auth_failures: RateLimiter  # requests per IP that failed authentication, counted apart

    @classmethod
    def from_settings(cls, settings: Settings) -> AssistantLimits:
        storage = storage_for(settings)
        window = settings.assistant_rate_limit_window_seconds
        return cls(
            per_user=RateLimiter(storage, "assistant_user", settings.assistant_rate_limit_user_requests, window),
            per_ip=RateLimiter(storage, "assistant_ip", settings.assistant_rate_limit_ip_requests, window),
            auth_failures=RateLimiter(storage, "assistant_auth_failures", settings.assistant_rate_limit_auth_failures, window),
        )


def crm_api_limiter(settings: Settings) -> RateLimiter:
    """The read-only CRM API's per-IP limit (CRM_RATE_LIMIT_*)."""
    return RateLimiter(
        storage_for(settings),
        "crm_api_ip",
        settings.crm_rate_limit_ip_requests,
        settings.crm_rate_limit_window_seconds,
    )
