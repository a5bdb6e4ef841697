"""Lead capture, callable from the bot, the model's create_lead tool and the Mini App alike.

Rules (152-ФЗ and sales ops): no lead without recorded consent to personal-data processing; the
phone is normalised to +7XXXXXXXXXX; the lead (with its outbox row when a CRM is configured) is
committed before any CRM push, which the outbox worker does later.

Dedupe (24 h): a request is the same as an earlier lead when the same user left the same phone within
24 hours for the same thing: the same chosen programs, or, when no program was chosen, the same profile
(grade, goal, subject, format). A parent asking for a second child or another program gets a second
lead; pressing «Отправить» twice (or the bot and the Mini App asking for the same course) gets one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel

from agent.catalog import Catalog
from agent.errors import ConsentRequired, InvalidInput
from agent.phones import normalize_phone
from agent.state import EarlierLead, LeadRequest, LeadStore, Store
from agent.types import Channel, Identity

PERSONAL_DATA = "personal_data"
MARKETING = "marketing"
DEDUPE_WINDOW = timedelta(hours=24)


@lru_cache(maxsize=32)
def consent_version(legal_path: Path, brand: str) -> str:
    """The ``version`` in the front matter of legal/<brand>/consent.md: stored with every consent."""
    path = legal_path / brand / "consent.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput("brand", f"no consent text for brand {brand!r}") from error
    parts = text.split("---", 2)
    meta = yaml.safe_load(parts[1]) if text.startswith("---") and len(parts) == 3 else None
    version = (meta or {}).get("version") if isinstance(meta, dict) else None
    if not version:
        raise InvalidInput("brand", f"{path} has no front matter version")
    return str(version)


PROFILE_KEYS = ("grade", "goal", "subject", "format")


def request_key(profile: dict[str, object], program_ids: list[str]) -> tuple[object, ...]:
    """What a lead asks for: its programs when chosen, else its profile (see the module's dedupe rule)."""
    if program_ids:
        return ("programs", *sorted(set(program_ids)))
    return ("profile", *(profile.get(key) for key in PROFILE_KEYS))


class LeadOutcome(BaseModel):
    lead_id: int
    phone: str  # normalised (+7XXXXXXXXXX)
    created: bool  # False: the same request within 24 h (see the dedupe rule above) or a reused key
    # What the stored lead asks for (the earlier lead's when ``created`` is False).
    profile: dict[str, object] = {}
    program_ids: list[str] = []


class LeadForm(BaseModel):
    """The Mini App's lead form as the client sent it, with the Telegram user initData named."""

    telegram_id: int
    first_name: str | None = None
    username: str | None = None
    brand: str
    name: str
    phone: str
    consent_personal_data: bool
    consent_marketing: bool
    profile: dict[str, object] = {}
    program_ids: list[str] = []


MINIAPP_SOURCE = "miniapp"
TEST_LEAD_NAME = "Тестовая заявка"


class LeadStoreWithConversations(LeadStore, Store, Protocol):
    pass


class LeadService:
    def __init__(
        self, store: LeadStoreWithConversations, *, catalog: Catalog, legal_path: Path, outbox_provider: str | None
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.legal_path = legal_path
        self.outbox_provider = outbox_provider

    async def submit_form(self, form: LeadForm, *, now: datetime) -> LeadOutcome:
        """The Mini App's lead form. Checked before anything is stored (no consent record, user or lead
        for a form that fails): the consent box, the phone, the brand. Then both consent answers are
        recorded (the marketing one as given) and the lead goes the way every lead goes (``create``)."""
        if not form.consent_personal_data:
            raise ConsentRequired("the personal-data consent box was not ticked")
        phone = normalize_phone(form.phone)
        brand = self.catalog.require_brand(form.brand)
        unknown = [pid for pid in form.program_ids if self.catalog.program(brand, pid) is None]
        if unknown:
            raise InvalidInput("program_ids", f"not in the {brand} catalog: {', '.join(unknown)}")
        state = await self.store.load(
            Identity.telegram.value, str(form.telegram_id), brand, first_name=form.first_name, username=form.username
        )
        for kind, granted in ((PERSONAL_DATA, True), (MARKETING, form.consent_marketing)):
            await self.record_consent(
                user_id=state.user_id, brand=brand, granted=granted, channel=Channel.miniapp.value,
                telegram_id=form.telegram_id, kind=kind,
            )
        request = LeadRequest(
            user_id=state.user_id,
            conversation_id=state.conversation_id,
            brand=brand,
            channel=Channel.miniapp.value,
            phone=phone,
            name=form.name,
            source=state.source or MINIAPP_SOURCE,
            profile=form.profile,
            program_ids=form.program_ids,
        )
        return await self.create(request, now=now)

    async def record_consent(
        self,
        *,
        user_id: int,
        brand: str,
        granted: bool,
        channel: str,
        telegram_id: int | None,
        kind: str = PERSONAL_DATA,
    ) -> str:
        """Store proof of a consent answer; ``kind`` is personal_data or marketing (its own, optional consent)."""
        version = consent_version(self.legal_path, brand)
        await self.store.record_consent(
            user_id=user_id,
            kind=kind,
            granted=granted,
            channel=channel,
            text_version=version,
            telegram_id=telegram_id,
        )
        return version

    async def has_consent(self, user_id: int) -> bool:
        return await self.store.consent_granted(user_id, PERSONAL_DATA)

    async def create(self, request: LeadRequest, *, now: datetime) -> LeadOutcome:
        phone = normalize_phone(request.phone)
        if not await self.has_consent(request.user_id):
            raise ConsentRequired("personal-data consent is not recorded")
        earlier = self._same_request(request, await self.store.recent_leads(request.user_id, phone, now - DEDUPE_WINDOW))
        if earlier is not None:
            return LeadOutcome(
                lead_id=earlier.lead_id, phone=phone, created=False, profile=earlier.profile, program_ids=earlier.program_ids
            )
        lead_id = await self.store.create_lead(
            request.model_copy(update={"phone": phone}), outbox_provider=self.outbox_provider
        )
        return LeadOutcome(
            lead_id=lead_id, phone=phone, created=True, profile=request.profile, program_ids=request.program_ids
        )

    async def create_test_lead(self, phone: str, *, brand: str) -> int:
        """/leadtest's lead: the same phone rule as a real lead (InvalidInput for a number a real lead
        would be refused with); marked as a test, no consent needed (an admin sends it, nobody's data)."""
        return await self.store.create_test_lead(brand=brand, phone=normalize_phone(phone), name=TEST_LEAD_NAME)

    @staticmethod
    def _same_request(request: LeadRequest, earlier: list[EarlierLead]) -> EarlierLead | None:
        wanted = request_key(request.profile, request.program_ids)
        return next((lead for lead in earlier if request_key(lead.profile, lead.program_ids) == wanted), None)

    async def annotate(self, lead_id: int, *, note: str | None, name: str | None = None) -> None:
        """What the client adds after the lead exists (another phone, when to call, their name)."""
        await self.store.annotate_lead(lead_id, note=note, name=name)
