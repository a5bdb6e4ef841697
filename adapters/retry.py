"""The one retry policy type: exponential backoff with a cap (and optional jitter).

The update queue, the polling loop, Telegram start-up, the queue workers' claims, the sender (through
tenacity) and the CRM outbox each hold a Backoff with their own numbers from Settings (README,
"Settings": the *_RETRY_BASE_SECONDS / *_RETRY_MAX_SECONDS variables).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tenacity import wait_exponential


@dataclass(frozen=True)
class Backoff:
    base_seconds: float  # the wait after the first failure; doubles per failure in a row
    max_seconds: float  # never longer than this (before jitter)
    jitter: float = 0.0  # up to this share added at random: spreads many retries after an outage

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 = the first)."""
        seconds = min(self.base_seconds * 2 ** max(failures - 1, 0), self.max_seconds)
        return seconds * (1 + random.uniform(0, self.jitter)) if self.jitter else seconds

    def tenacity_wait(self) -> wait_exponential:
        """The same policy for tenacity (its attempt number counts failures the same way)."""
        return wait_exponential(multiplier=self.base_seconds, max=self.max_seconds)
