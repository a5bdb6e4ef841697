"""The queue claim an update is processed under, checked before its reply goes out.

A worker's claim is a lease it renews while the update runs; on a starved event loop the renewal can
come too late, and another process claims the update again. Both then reach the reply: the first has
just stored it, the second finds it stored (the same idempotency key) and sends it too, so the user
got the answer twice (bench/scale_webhooks.py counted 27–285 of 5 000 under load). The turn's reply is
sent only after the worker confirms, renewing the lease in the same statement, that the claim is still
its own (``UpdateQueue.confirm``); a worker that lost it drops the update to the one that took it.

What stays at least once: a process killed after a send and before it marks the update done; the
update is then processed again and its stored reply sent again (Telegram has no idempotent send).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_confirm: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar("queue_claim", default=None)


class ClaimLost(Exception):
    """Another worker holds this update's claim now: it sends the reply."""


@contextmanager
def processing_under(confirm: Callable[[], Awaitable[bool]]) -> Iterator[None]:
    """Mark the update being processed in this context as held by a claim ``confirm`` checks."""
    token = _confirm.set(confirm)
    try:
        yield
    finally:
        _confirm.reset(token)


async def ensure_claim() -> None:
    """Raise ClaimLost when the update is no longer ours; nothing outside a queue worker (no claim)."""
    confirm = _confirm.get()
    if confirm is not None and not await confirm():
        raise ClaimLost
