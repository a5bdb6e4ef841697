"""Consent withdrawal (152-ФЗ, art. 9 part 2 and art. 21 part 5): the one rule every channel follows.

A withdrawal — Telegram's /forget and its button, «удалите мои данные» typed in any channel, the admin
API — does, in one storage transaction:

1. records a consent record of its own (event ``withdrawn``, the time and the channel) for personal
   data and, when it was granted, for marketing: from now on ``has_consent`` is False, so no lead is
   created and nothing is pushed to the CRM until the user gives consent again;
2. deletes the user's conversations (messages, transcripts, the profile with the phone and the name,
   manager messages, relay links), the leads the CRM does not hold yet with their outbox rows, and
   the names on the user row;
3. keeps, anonymised, the leads the CRM already holds: the CRM is the school's system of record and
   the bot cannot delete there. The local row keeps only its id, brand, dates and CRM ids, so a manager
   can find and remove the CRM record within the 30 days the consent text promises (README,
   «Personal data: what is kept and deleted»);
4. scrubs the personal data out of the Telegram update queue (processed rows kept 48 h for
   idempotency and dead letters kept until a manager looks at them): the row stays, its payload is
   reduced to the update id.

What stays: the user row (ids only) and the consent records — the operator must be able to prove what
was agreed, when and how it was withdrawn (152-ФЗ art. 9 part 3).

Afterwards staff-chat copies of the client's messages (the manager relay) are removed through
``StaffCopies`` when the adapter can (best effort: the withdrawal is already committed).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class UserRef:
    """Whose consent is withdrawn: a channel identity (telegram id, API user id) or the database id."""

    identity: str | None = None
    external_id: str | None = None
    user_id: int | None = None


class KeptLead(BaseModel):
    lead_id: int
    crm_ids: dict[str, str] = Field(default_factory=dict)


class Erasure(BaseModel):
    """What a withdrawal did, row by row (the admin API returns it; the user's reply is worded from it)."""

    user_id: int
    channel: str
    withdrawn_at: datetime
    conversations: int = 0
    messages: int = 0
    leads_deleted: list[int] = Field(default_factory=list)
    outbox_rows_deleted: int = 0
    leads_kept: list[KeptLead] = Field(default_factory=list)  # already in the CRM: anonymised here
    queue_rows_scrubbed: int = 0
    dead_letters_scrubbed: int = 0
    staff_copies_removed: int = 0


class Withdrawn(BaseModel):
    """A withdrawal's outcome and the text the user reads (None: the user was unknown, nothing stored)."""

    erasure: Erasure | None
    text: str


class LeadFacts(BaseModel):
    lead_id: int
    crm_status: str
    crm_ids: dict[str, str] = Field(default_factory=dict)  # the lead's crm_id and what the outbox recorded


class WithdrawalStore(Protocol):
    async def find_user(self, ref: UserRef) -> int | None: ...

    async def leads_of(self, user_id: int) -> list[LeadFacts]: ...

    async def withdraw(self, user_id: int, *, channel: str, keep_lead_ids: set[int], now: datetime) -> Erasure:
        """In one transaction: the withdrawal records, the deletions and the anonymised leads (see above)."""
        ...


class StaffCopies(Protocol):
    """Copies of the client's messages outside the database (the staff chat of the manager relay)."""

    async def collect(self, user_id: int) -> object:
        """What to remove, read before the rows that point to it are deleted."""
        ...

    async def remove(self, collected: object) -> int: ...


def held_by_crm(lead: LeadFacts) -> bool:
    """A lead the CRM holds (or may hold: a push that failed after creating the contact left its ids)."""
    return lead.crm_status == "delivered" or bool(lead.crm_ids)


class ConsentWithdrawal:
    def __init__(self, store: WithdrawalStore, *, staff: StaffCopies | None = None) -> None:
        self.store = store
        self.staff = staff

    async def withdraw(self, user: UserRef, *, channel: str, now: datetime) -> Erasure | None:
        """None when the user is unknown (nothing was ever stored about them)."""
        user_id = await self.store.find_user(user)
        if user_id is None:
            return None
        keep = {lead.lead_id for lead in await self.store.leads_of(user_id) if held_by_crm(lead)}
        collected = await self.staff.collect(user_id) if self.staff is not None else None
        erasure = await self.store.withdraw(user_id, channel=channel, keep_lead_ids=keep, now=now)
        if self.staff is not None:
            try:
                erasure.staff_copies_removed = await self.staff.remove(collected)
            except Exception:  # the withdrawal is committed; the staff chat is cleaned by hand then
                log.exception("staff-chat copies of user %s were not removed", user_id)
        log.info(
            "user %s withdrew consent via %s: %d messages, %d leads deleted, %d kept (in the CRM), "
            "%d queue rows and %d dead letters scrubbed",
            user_id, channel, erasure.messages, len(erasure.leads_deleted), len(erasure.leads_kept),
            erasure.queue_rows_scrubbed, erasure.dead_letters_scrubbed,
        )
        return erasure


# ---------------------------------------------------------------- what the user reads

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

DONE = (
    "Готово: согласие на обработку персональных данных отозвано. Я удалил нашу переписку, ваш телефон, "
    "имя и то, что вы рассказали о ребёнке{deleted_leads}. Новую заявку без вашего согласия я не создам."
)
DELETED_LEADS = ", а также заявку {ids}, которую ещё не получил менеджер"
KEPT_LEADS = (
    "Заявку {ids} менеджер уже получил в систему школы. По отзыву согласия школа удаляет такие данные "
    "в течение 30 дней, если закон не требует их хранить{contact}."
)
KEPT_CONTACT = "; вопросы об удалении — {email}"
COME_BACK = "Если захотите вернуться, просто напишите."


def _numbers(ids: list[int]) -> str:
    return ", ".join(f"№{lead_id}" for lead_id in ids)


def withdrawn_text(erasure: Erasure | None, *, manager_contact: str = "") -> str:
    """Says what was deleted and what the school still holds (delivered requests), honestly."""
    deleted = erasure.leads_deleted if erasure else []
    kept = [lead.lead_id for lead in erasure.leads_kept] if erasure else []
    parts = [DONE.format(deleted_leads=DELETED_LEADS.format(ids=_numbers(deleted)) if deleted else "")]
    if kept:
        email = _EMAIL.search(manager_contact)
        parts.append(KEPT_LEADS.format(ids=_numbers(kept), contact=KEPT_CONTACT.format(email=email.group(0)) if email else ""))
    parts.append(COME_BACK)
    return " ".join(parts)
