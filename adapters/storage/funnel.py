"""The sales funnel for GET /admin/funnel, by day and by first-touch source.

Cohorts are conversations started in the period (UTC days): started → qualified (grade and goal
known) → programs shown (an assistant message carried program cards, read through agent/turn_meta.py,
the shape the service writes) → contact left (a lead of the same user and brand) → delivered to the
CRM; plus model tokens spent on the cohort per lead.

Each stage counts the conversations that reached it or any later stage, so the funnel never widens: a
Mini App lead comes from a conversation with no messages (the parent answered grade and goal and saw the
programs in the app, not in the chat), and it is counted as qualified and shown programs all the same.
Counted in Python over the period's rows so SQLite and PostgreSQL give the same answer without
dialect-specific JSON queries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from adapters.storage.database import Database
from adapters.storage.models import Conversation, Lead, Message, ModelUsage, User
from agent.turn_meta import read_turn_meta

NO_SOURCE = "(direct)"


@dataclass
class FunnelRow:
    key: str
    conversations: int = 0
    qualified: int = 0
    programs_shown: int = 0
    contact_left: int = 0
    crm_delivered: int = 0
    tokens: int = 0

    def as_dict(self, key_name: str) -> dict[str, object]:
        data = asdict(self)
        data[key_name] = data.pop("key")
        data["tokens_per_lead"] = round(self.tokens / self.contact_left) if self.contact_left else None
        return data


def _is_qualified(profile: dict[str, object]) -> bool:
    return profile.get("grade") not in (None, "") and profile.get("goal") not in (None, "")


async def compute_funnel(db: Database, *, since: datetime, until: datetime, brand: str | None) -> dict[str, object]:
    async with db.session() as session:
        cohort = select(Conversation).where(Conversation.created_at >= since, Conversation.created_at < until)
        if brand:
            cohort = cohort.where(Conversation.brand == brand)
        conversations = (await session.exec(cohort)).all()
        cohort_ids = select(Conversation.id).where(
            Conversation.created_at >= since, Conversation.created_at < until
        )
        if brand:
            cohort_ids = cohort_ids.where(Conversation.brand == brand)
        user_ids = {c.user_id for c in conversations}
        sources = {
            u.id: u.source for u in (await session.exec(select(User).where(col(User.id).in_(user_ids)))).all()
        }
        shown = {
            conversation_id
            for conversation_id, meta in (
                await session.exec(
                    select(Message.conversation_id, Message.meta).where(
                        Message.role == "assistant", col(Message.conversation_id).in_(cohort_ids)
                    )
                )
            ).all()
            if read_turn_meta(meta).cards
        }
        lead_query = select(Lead.user_id, Lead.brand, Lead.crm_status).where(col(Lead.user_id).in_(user_ids))
        leads = (await session.exec(lead_query)).all()
        tokens = dict(
            (
                await session.exec(
                    select(ModelUsage.conversation_id, func.sum(ModelUsage.total_tokens))
                    .where(col(ModelUsage.conversation_id).in_(cohort_ids))
                    .group_by(ModelUsage.conversation_id)
                )
            ).all()
        )

    contact: set[tuple[int | None, str]] = set()
    delivered: set[tuple[int | None, str]] = set()
    for user_id, lead_brand, crm_status in leads:
        contact.add((user_id, lead_brand))
        if crm_status == "delivered":
            delivered.add((user_id, lead_brand))

    by_day: dict[str, FunnelRow] = {}
    by_source: dict[str, FunnelRow] = {}
    total = FunnelRow(key="total")
    for conversation in conversations:
        day = conversation.created_at.date().isoformat()
        source = sources.get(conversation.user_id) or NO_SOURCE
        owner = (conversation.user_id, conversation.brand)
        for row in (
            by_day.setdefault(day, FunnelRow(key=day)),
            by_source.setdefault(source, FunnelRow(key=source)),
            total,
        ):
            delivered_ = owner in delivered
            contact_ = delivered_ or owner in contact
            shown_ = contact_ or conversation.id in shown
            row.conversations += 1
            row.qualified += shown_ or _is_qualified(conversation.profile or {})
            row.programs_shown += shown_
            row.contact_left += contact_
            row.crm_delivered += delivered_
            row.tokens += int(tokens.get(conversation.id) or 0)

    return {
        "by_day": [by_day[k].as_dict("day") for k in sorted(by_day)],
        "by_source": [r.as_dict("source") for r in sorted(by_source.values(), key=lambda r: -r.conversations)],
        "totals": {k: v for k, v in total.as_dict("scope").items() if k != "scope"},
    }
