"""Background check: a handed-off conversation no manager wrote in for HANDOFF_IDLE_HOURS goes back
to the bot, and its topic says so (StaffRelay.sweep_idle; safe in every process at once)."""

from __future__ import annotations

import asyncio
import logging

from adapters.telegram.relay.staff import StaffRelay

log = logging.getLogger(__name__)

MAX_INTERVAL_SECONDS = 60.0
MIN_INTERVAL_SECONDS = 0.2


class IdleReturn:
    name = "relay-idle-return"

    def __init__(self, relay: StaffRelay) -> None:
        self.relay = relay
        # A quarter of the idle time, at most a minute: a conversation returns at most that late.
        self.interval = min(max(relay.idle_hours * 3600 / 4, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                returned = await self.relay.sweep_idle()
                if returned:
                    log.info("relay: %s idle conversation(s) returned to the bot", returned)
            except Exception as error:  # the database or Telegram is down: try again next round
                log.warning("relay idle check failed: %s", type(error).__name__)
