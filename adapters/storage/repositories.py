"""ORM repositories for what is not a turn: users, leads, consents, usage, reads for admins and the
CRM. A turn's own reads and writes are SQLAlchemy Core in turn_sql.py (fewer statements per turn)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from adapters.storage.database import Database
from adapters.storage.outbox import OutboxRepository
from adapters.storage.models import (
    ConsentRecord,
    Conversation,
    CrmOutbox,
    Lead,
    Message,
    ModelUsage,
    User,
    utcnow,
)
from agent.text_safety import plain_name


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_or_create(
        self,
        identity: str,
        external_id: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
        source: str | None = None,
    ) -> User:
        """Find the user or create them; the first-touch source is set once and never overwritten."""
        first_name, username = plain_name(first_name), plain_name(username)
        for _ in range(2):  # a concurrent insert of the same user loses the race once, then finds it
            async with self.db.session() as session:
                user = (
                    await session.exec(
                        select(User).where(User.identity == identity, User.external_id == external_id)
                    )
                ).first()
                if user is None:
                    user = User(
                        identity=identity,
                        external_id=external_id,
                        first_name=first_name,
                        username=username,
                        source=source,
                    )
                    session.add(user)
                    try:
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        continue
                    await session.refresh(user)
                    return user
                changed = False
                if source and not user.source:
                    user.source, changed = source, True
                if first_name and user.first_name != first_name:
                    user.first_name, changed = first_name, True
                if username and user.username != username:
                    user.username, changed = username, True
                if changed:
                    session.add(user)
                    await session.commit()
                    await session.refresh(user)
                return user
        raise RuntimeError("user could not be created")

    async def get(self, user_id: int) -> User | None:
        async with self.db.session() as session:
            return await session.get(User, user_id)

    async def mark_blocked(self, user_id: int) -> None:
        async with self.db.session() as session:
            await session.exec(update(User).where(User.id == user_id).values(blocked_at=utcnow()))
            await session.commit()

    async def unblock(self, user_id: int) -> None:
        async with self.db.session() as session:
            await session.exec(update(User).where(User.id == user_id).values(blocked_at=None))
            await session.commit()

    async def blocked_external_ids(self, identity: str) -> list[str]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(User.external_id).where(User.identity == identity, col(User.blocked_at).is_not(None))
            )
            return list(rows.all())


class ConversationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, conversation_id: int) -> Conversation | None:
        async with self.db.session() as session:
            return await session.get(Conversation, conversation_id)


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(self, conversation_id: int, *, limit: int = 40) -> list[Message]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(col(Message.id).desc())
                .limit(limit)
            )
            return list(reversed(rows.all()))


class LeadRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, lead: Lead, *, outbox_provider: str | None) -> Lead:
        """Commit the lead (and its outbox row, when a CRM is configured) in one transaction.

        With an idempotency key that was used before, the earlier lead is returned instead.
        """
        async with self.db.session() as session:
            session.add(lead)
            try:
                await session.flush()
                if outbox_provider:
                    session.add(CrmOutbox(lead_id=lead.id, provider=outbox_provider))
                else:
                    lead.crm_status = "skipped"
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if lead.idempotency_key is None:
                    raise
                existing = await self.by_idempotency_key(lead.idempotency_key)
                if existing is None:
                    raise
                return existing
            await session.refresh(lead)
            return lead

    async def by_idempotency_key(self, key: str) -> Lead | None:
        async with self.db.session() as session:
            return (await session.exec(select(Lead).where(Lead.idempotency_key == key))).first()

    async def recent_for(self, user_id: int, phone: str, since: datetime) -> list[Lead]:
        async with self.db.session() as session:
            query = (
                select(Lead)
                .where(Lead.user_id == user_id, Lead.phone == phone, Lead.created_at >= since)
                .order_by(col(Lead.id).desc())
            )
            return list((await session.exec(query)).all())

    async def get(self, lead_id: int) -> Lead | None:
        async with self.db.session() as session:
            return await session.get(Lead, lead_id)

    async def annotate(self, lead_id: int, *, note: str | None, name: str | None) -> None:
        """Append a client's note (new line) and set the name, in one short transaction."""
        async with self.db.session() as session:
            lead = await session.get(Lead, lead_id)
            if lead is None:
                return  # withdrawn meanwhile
            if note:
                lead.manager_note = f"{lead.manager_note}\n{note}" if lead.manager_note else note
            if name:
                lead.name = name[:256]
            lead.updated_at = utcnow()
            session.add(lead)
            await session.commit()

    async def count(self) -> int:
        async with self.db.session() as session:
            return (await session.exec(select(func.count()).select_from(Lead))).one()

    async def set_crm_status(
        self, lead_id: int, status: str, *, crm_id: str | None = None, error: str | None = None
    ) -> None:
        """Record a direct push's outcome (the outbox records its own; /leadtest uses this)."""
        async with self.db.session() as session:
            await session.exec(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(crm_status=status, crm_id=crm_id, crm_error=error, updated_at=utcnow())
            )
            await session.commit()


class ConsentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, record: ConsentRecord) -> ConsentRecord:
        async with self.db.session() as session:
            session.add(record)
            await session.commit()
            await session.refresh(record)
            return record

class UsageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, usage: ModelUsage) -> None:
        async with self.db.session() as session:
            session.add(usage)
            await session.commit()

    async def tokens_since(self, since: datetime, *, user_id: int | None = None) -> int:
        async with self.db.session() as session:
            query = select(func.coalesce(func.sum(ModelUsage.total_tokens), 0)).where(
                ModelUsage.created_at >= since
            )
            if user_id is not None:
                query = query.where(ModelUsage.user_id == user_id)
            return int((await session.exec(query)).one())


@dataclass
class Repositories:
    """The repositories over one database: built once by the composition root (adapters/wiring.py),
    carried by the Runtime (which extends this class, so ``runtime.users`` and the rest are these)."""

    users: UserRepository
    conversations: ConversationRepository
    messages: MessageRepository
    leads: LeadRepository
    consents: ConsentRepository
    usage: UsageRepository
    outbox: OutboxRepository

    @classmethod
    def on(cls, db: Database) -> Repositories:
        return cls(
            users=UserRepository(db), conversations=ConversationRepository(db), messages=MessageRepository(db),
            leads=LeadRepository(db), consents=ConsentRepository(db), usage=UsageRepository(db),
            outbox=OutboxRepository(db),
        )

    def as_kwargs(self) -> dict[str, object]:
        """Each repository by its field name: ``Runtime(**repos.as_kwargs(), ...)``."""
        return {name: getattr(self, name) for name in Repositories.__dataclass_fields__}
