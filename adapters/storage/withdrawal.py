"""The storage side of a consent withdrawal (the rule is agent/withdrawal.py): one transaction that
records the withdrawal and deletes or anonymises the user's personal data in every table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from adapters.storage.chat_keys import relay_line, topic_key
from adapters.storage.database import Database
from adapters.storage.models import (
    ConsentRecord,
    Conversation,
    CrmOutbox,
    Lead,
    Message,
    ModelUsage,
    RelayLink,
    RelayTopic,
    TelegramUpdate,
    User,
)
from agent.leads import MARKETING, PERSONAL_DATA
from agent.withdrawal import WITHDRAWN, Erasure, KeptLead, LeadFacts, UserRef

# Processed rows (kept 48 h so a redelivered update is not answered twice), the row being processed
# (the withdrawal's own update: a retry of the scrubbed row is a no-op) and dead letters. Queued rows
# are messages the user sent after the withdrawal: they are processed as a fresh start.
SCRUBBED_STATES = ("done", "processing", "dead")
SCRUBBED_ERROR = "consent withdrawn: payload removed"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _crm_ids(outbox_ids: dict[str, Any] | None, crm_id: str | None) -> dict[str, str]:
    """What the CRM knows the lead by: the outbox's recorded ids and the lead's own crm_id."""
    ids = {str(k): str(v) for k, v in (outbox_ids or {}).items() if v}
    if crm_id:
        ids.setdefault("lead_id", crm_id)
    return ids


class SqlWithdrawalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def find_user(self, ref: UserRef) -> int | None:
        async with self.db.session() as session:
            if ref.user_id is not None:
                user = await session.get(User, ref.user_id)
                return user.id if user else None
            query = select(User.id).where(User.identity == ref.identity, User.external_id == ref.external_id)
            return (await session.exec(query)).first()

    async def leads_of(self, user_id: int) -> list[LeadFacts]:
        async with self.db.session() as session:
            query = (
                select(Lead.id, Lead.crm_status, Lead.crm_id, CrmOutbox.crm_ids)
                .join(CrmOutbox, col(CrmOutbox.lead_id) == col(Lead.id), isouter=True)
                .where(Lead.user_id == user_id)
            )
            return [
                LeadFacts(lead_id=lead_id, crm_status=crm_status, crm_ids=_crm_ids(outbox_ids, crm_id))
                for lead_id, crm_status, crm_id, outbox_ids in (await session.exec(query)).all()
            ]

    async def withdraw(self, user_id: int, *, channel: str, keep_lead_ids: set[int], now: datetime) -> Erasure:
        erasure = Erasure(user_id=user_id, channel=channel, withdrawn_at=now)
        async with self.db.session() as session:
            user = await session.get(User, user_id)
            assert user is not None
            for kind in (PERSONAL_DATA, MARKETING):
                latest = (
                    await session.exec(
                        select(ConsentRecord)
                        .where(ConsentRecord.user_id == user_id, ConsentRecord.kind == kind)
                        .order_by(col(ConsentRecord.id).desc())
                    )
                ).first()
                # Personal data: always on record (the user asked, even if they never agreed);
                # marketing: only when it was granted.
                if kind == PERSONAL_DATA or (latest is not None and latest.granted):
                    session.add(ConsentRecord(
                        user_id=user_id, kind=kind, granted=False, event=WITHDRAWN, channel=channel,
                        text_version=latest.text_version if latest else "none",
                        telegram_id=int(user.external_id) if user.identity == "telegram" and user.external_id.isdigit() else None,
                        created_at=now,
                    ))

            conversations = select(Conversation.id).where(Conversation.user_id == user_id)
            topics = (await session.exec(
                select(RelayTopic.chat_id, RelayTopic.thread_id).where(col(RelayTopic.conversation_id).in_(conversations))
            )).all()
            conversation_ids = list((await session.exec(conversations)).all())

            leads = (await session.exec(select(Lead).where(Lead.user_id == user_id))).all()
            deleted = [lead.id for lead in leads if lead.id not in keep_lead_ids]
            kept = [lead for lead in leads if lead.id in keep_lead_ids]
            erasure.outbox_rows_deleted = _rowcount(
                await session.exec(sa.delete(CrmOutbox).where(col(CrmOutbox.lead_id).in_(deleted)))
            )
            await session.exec(sa.delete(Lead).where(col(Lead.id).in_(deleted)))
            erasure.leads_deleted = sorted(lead_id for lead_id in deleted if lead_id is not None)
            for lead in kept:
                outbox = (await session.exec(select(CrmOutbox).where(CrmOutbox.lead_id == lead.id))).first()
                ids = _crm_ids(outbox.crm_ids if outbox else None, lead.crm_id)
                erasure.leads_kept.append(KeptLead(lead_id=lead.id, crm_ids=ids))  # type: ignore[arg-type]
                if outbox is not None and outbox.status != "delivered":
                    # A push that half-succeeded: never pushed again without the personal data.
                    outbox.status, outbox.last_error, outbox.updated_at = "failed", "consent withdrawn", now
                    session.add(outbox)
                lead.name, lead.phone, lead.manager_note, lead.profile = None, "", None, {}
                lead.conversation_id, lead.updated_at = None, now
                lead.crm_error = "согласие отозвано: данные удалены из бота, удалите запись в CRM"  # shown on the lead card
                session.add(lead)

            # Token usage stays (daily budgets and costs), detached from the deleted conversation.
            await session.exec(
                sa.update(ModelUsage).where(col(ModelUsage.conversation_id).in_(conversations)).values(conversation_id=None)
            )
            erasure.messages = _rowcount(
                await session.exec(sa.delete(Message).where(col(Message.conversation_id).in_(conversations)))
            )
            await session.exec(sa.delete(RelayLink).where(col(RelayLink.conversation_id).in_(conversations)))
            await session.exec(sa.delete(RelayTopic).where(col(RelayTopic.conversation_id).in_(conversations)))
            erasure.conversations = _rowcount(
                await session.exec(sa.delete(Conversation).where(Conversation.user_id == user_id))
            )
            user.first_name, user.username, user.source = None, None, None
            session.add(user)

            chats = [topic_key(chat_id, thread_id) for chat_id, thread_id in topics if thread_id is not None]
            chats += [relay_line(conversation_id) for conversation_id in conversation_ids]  # relay jobs (HTTP side)
            if user.identity == "telegram" and user.external_id.isdigit():
                chats.append(int(user.external_id))
            if chats:
                scrubbed = TelegramUpdate.__table__.c
                statement = (
                    sa.update(TelegramUpdate)
                    .where(col(TelegramUpdate.chat_id).in_(chats), col(TelegramUpdate.status).in_(SCRUBBED_STATES))
                    .values(
                        payload=sa.literal('{"update_id": ') + sa.cast(scrubbed.update_id, sa.String) + sa.literal("}"),
                        last_error=sa.case((scrubbed.status == "dead", SCRUBBED_ERROR), else_=None),
                        updated_at=now,
                    )
                    .returning(scrubbed.status)
                )
                states = list((await session.exec(statement)).scalars())  # type: ignore[call-overload]
                erasure.dead_letters_scrubbed = states.count("dead")
                erasure.queue_rows_scrubbed = len(states) - erasure.dead_letters_scrubbed
            await session.commit()
        return erasure
