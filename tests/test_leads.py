"""agent/leads.py: phone rules, consent, 24 h dedupe and the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.storage.models import CrmOutbox, Lead, utcnow
from adapters.wiring import Runtime
from agent.errors import ConsentRequired, InvalidInput
from agent.leads import LeadRequest, LeadService, consent_version, normalize_phone

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+7 (999) 123-45-67", "+79991234567"),
        ("8 999 123 45 67", "+79991234567"),
        ("9991234567", "+79991234567"),
        ("+7 495 150-81-51", "+74951508151"),
    ],
)
def test_phone_normalisation(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "12345", "+1 202 555 0123", "+7 199 123 45 67", "телефон", "8999123456789"])
def test_bad_phones_are_invalid_input(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalize_phone(raw)
    assert error.value.field == "phone"


def test_consent_version_comes_from_front_matter() -> None:
    assert consent_version(REPO / "legal", "kmipt") == "2026-11-01"
    with pytest.raises(InvalidInput):
        consent_version(REPO / "legal", "no-such-brand")


async def test_lead_rules(runtime: Runtime) -> None:
    user = await runtime.users.get_or_create("telegram", "321")
    assert user.id is not None
    service = LeadService(runtime.store, legal_path=REPO / "legal", outbox_provider="amo")
    request = LeadRequest(user_id=user.id, brand="kmipt", channel="miniapp", phone="8 916 111-22-33")
    now = utcnow()
    with pytest.raises(ConsentRequired):
        await service.create(request, now=now)
    await service.record_consent(user_id=user.id, brand="kmipt", granted=True, channel="miniapp", telegram_id=321)
    first = await service.create(request, now=now)
    again = await service.create(request.model_copy(update={"phone": "+79161112233"}), now=now + timedelta(hours=1))
    later = await service.create(request, now=now + timedelta(hours=25))
    assert first.created and not again.created and again.lead_id == first.lead_id
    assert later.created and later.lead_id != first.lead_id
    async with runtime.db.session() as session:
        leads = (await session.exec(select(Lead))).all()
        outbox = (await session.exec(select(CrmOutbox))).all()
    assert [lead.phone for lead in leads] == ["+79161112233", "+79161112233"]
    assert sorted(row.lead_id for row in outbox) == sorted(lead.id for lead in leads)
    assert {row.provider for row in outbox} == {"amo"}
