"""A scripted Assistant (agent.ports.Assistant) for adapter tests, on the real repositories.

The funnel: /start -> grade buttons -> goal buttons -> 3 program cards + contact request ->
contact -> a lead. It keys stored messages and leads on Inbound.idempotency_key the way the real
core does, so reprocessed updates can be checked for duplicates. ``delay`` simulates model time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from adapters.storage.models import Lead
from adapters.wiring import Runtime
from agent.types import Action, Inbound, ProgramCard, QuickReply, Reply

CARDS = [
    ProgramCard(
        id=f"p{i}",
        title=f"Программа {i} <ЕГЭ & олимпиады>",
        url=f"https://kmipt.ru/courses/p{i}",
        price_text=f"{i * 1000} ₽ в месяц",
        next_start_text="старт 1 сентября",
        why_match="подходит по классу и цели",
        usp=["малые группы"],
    )
    for i in (1, 2, 3)
]


@dataclass
class ScriptedAssistant:
    runtime: Runtime
    delay: float = 0.0
    seen: list[Inbound] = field(default_factory=list)
    handoffs: list[tuple[Inbound, str]] = field(default_factory=list)

    async def _conversation(self, inbound: Inbound) -> tuple[int, int, dict]:
        user = await self.runtime.users.get_or_create(
            "telegram", inbound.user_id, first_name=inbound.first_name, username=inbound.username, source=inbound.source
        )
        conversation = await self.runtime.conversations.get_or_create(user.id, inbound.brand or "kmipt")  # type: ignore[arg-type]
        return user.id, conversation.id, dict(conversation.state)  # type: ignore[return-value]

    async def handle(self, inbound: Inbound) -> Reply:
        self.seen.append(inbound)
        if self.delay:
            await asyncio.sleep(self.delay)
        user_id, conversation_id, state = await self._conversation(inbound)
        content = inbound.text or inbound.choice or (inbound.contact.phone if inbound.contact else "/start")
        await self.runtime.messages.add(
            conversation_id, "user", content, channel="telegram", idempotency_key=inbound.idempotency_key
        )
        if state.get("human"):
            return Reply(text="", silent=True, conversation_id=conversation_id)
        if inbound.contact is not None:
            lead = await self.runtime.leads.create(
                Lead(
                    user_id=user_id,
                    conversation_id=conversation_id,
                    brand="kmipt",
                    channel="telegram",
                    phone=inbound.contact.phone,
                    name=inbound.contact.first_name,
                    program_ids=[c.id for c in CARDS],
                    idempotency_key=f"lead:{inbound.idempotency_key}",
                ),
                outbox_provider=None,
            )
            return Reply(text="Спасибо! Заявка принята, менеджер позвонит.", lead_id=lead.id, conversation_id=conversation_id)
        if inbound.start:
            return Reply(
                text="Здравствуйте! В каком классе учится ребёнок?",
                quick_replies=[QuickReply(label=f"{g} класс", payload=f"grade:{g}") for g in (9, 10, 11)],
            )
        if inbound.choice and inbound.choice.startswith("grade:"):
            return Reply(
                text="Какая цель?",
                quick_replies=[QuickReply(label="ЕГЭ", payload="goal:ege"), QuickReply(label="Олимпиады", payload="goal:olymp")],
            )
        if inbound.choice and inbound.choice.startswith("goal:"):
            return Reply(text="Вот что подойдёт:", cards=CARDS, actions=[Action.ask_contact])
        return Reply(text=f"Вы написали: {inbound.text}")

    async def handoff(self, inbound: Inbound, reason: str) -> Reply:
        self.handoffs.append((inbound, reason))
        _, conversation_id, _ = await self._conversation(inbound)
        conversation = await self.runtime.conversations.get(conversation_id)
        assert conversation is not None
        conversation.state = {**conversation.state, "human": True}
        await self.runtime.conversations.save(conversation)
        return Reply(text="Передал вопрос менеджеру, он ответит здесь.", actions=[Action.handoff])

    async def release(self, conversation_id: int) -> None:
        conversation = await self.runtime.conversations.get(conversation_id)
        if conversation is not None:
            conversation.state = {k: v for k, v in conversation.state.items() if k != "human"}
            await self.runtime.conversations.save(conversation)


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
