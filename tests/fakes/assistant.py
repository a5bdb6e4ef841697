"""A stand-in for the Assistant protocol (agent.ports.Assistant) in adapter tests of queueing and
sending, where the conversation itself does not matter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agent.types import Inbound, Reply


@dataclass
class InstantAssistant:
    """Answers at once (or after ``delay``) without touching storage: for queue and sender tests."""

    delay: float = 0.0
    text: str = "Ответ"
    seen: list[Inbound] = field(default_factory=list)

    async def handle(self, inbound: Inbound) -> Reply:
        self.seen.append(inbound)
        if self.delay:
            await asyncio.sleep(self.delay)
        return Reply(text=self.text)

    async def handoff(self, inbound: Inbound, reason: str) -> Reply:
        return Reply(text="Передал менеджеру.")

    async def release(self, conversation_id: int) -> None:
        return None
