"""Failed admin logins are counted: per client IP and per username, shared through Redis when REDIS_URL
is set. Past ADMIN_LOGIN_MAX_FAILURES_PER_IP (10) or ADMIN_LOGIN_MAX_FAILURES_PER_USER (30) failures
within ADMIN_LOGIN_WINDOW_SECONDS (900) every attempt, the right password too, gets 429 with Retry-After
until the window moves on: guessing ADMIN_PASS costs a window per ten tries, not a millisecond.

The per-username count stops a guesser who spreads over many addresses; it can lock the real admin out
for one window, which is the price of that (the log names the address the failures came from).
"""

from __future__ import annotations

import hashlib
import logging

from fastapi import HTTPException, Request

from adapters.http.ratelimit import RateLimiter, storage_for
from agent.settings import Settings

log = logging.getLogger(__name__)


class AdminLoginGuard:
    def __init__(self, settings: Settings) -> None:
        storage = storage_for(settings)
        window = settings.admin_login_window_seconds
        self.per_ip = RateLimiter(storage, "admin_login_ip", settings.admin_login_max_failures_per_ip, window)
        self.per_user = RateLimiter(storage, "admin_login_user", settings.admin_login_max_failures_per_user, window)

    async def refuse_if_locked(self, ip: str, username: str) -> None:
        """429 while this address or this username has used up its failures."""
        for limiter, key in ((self.per_ip, ip), (self.per_user, _user_key(username))):
            decision = await limiter.check(key)
            if not decision.allowed:
                log.warning("admin login refused: too many failures (%s) from %s", limiter.name, ip)
                raise HTTPException(
                    429,
                    {"reason": "too_many_failed_logins", "retry_after": decision.retry_after},
                    headers={"Retry-After": str(decision.retry_after)},
                )

    async def failed(self, ip: str, username: str) -> None:
        log.warning("admin login failed from %s", ip)
        await self.per_ip.hit(ip)
        await self.per_user.hit(_user_key(username))


def _user_key(username: str) -> str:
    # Any text a client sends as the username becomes a bounded key (memory, Redis) and is never stored.
    return hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:32]


def admin_login_guard(request: Request, settings: Settings) -> AdminLoginGuard:
    """The app's guard (create_app makes it; an app built without one gets one on first use)."""
    guard = getattr(request.app.state, "admin_login_guard", None)
    if guard is None:
        guard = request.app.state.admin_login_guard = AdminLoginGuard(settings)
    return guard
