"""agent/leads.py: phone rules, consent, 24 h dedupe and the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.storage.models import CrmOutbox, Lead, utcnow
from adapters.runtime import Runtime
from agent.errors import ConsentRequired, InvalidInput
from agent.leads import LeadRequest, LeadService, consent_version
from agent.phones import normalize_phone

REPO = Path(__file__).resolve().parent.parent


# The same table drives webapp/src/phone.test.ts: the Mini App and the server accept the same phones.
PHONE_RULE = json.loads((REPO / "tests" / "data" / "phone_rule.json").read_text("utf-8"))


@pytest.mark.parametrize("raw, expected", PHONE_RULE["valid"])
def test_phone_normalisation(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", PHONE_RULE["invalid"])
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
    service = LeadService(runtime.store, catalog=runtime.catalog, legal_path=REPO / "legal", outbox_provider="amo")
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


async def test_dedupe_keys_on_the_request_not_the_phone_alone(runtime: Runtime) -> None:
    """A second child or another program is a second lead; the same request within 24 h is one."""
    user = await runtime.users.get_or_create("telegram", "654")
    assert user.id is not None
    service = LeadService(runtime.store, catalog=runtime.catalog, legal_path=REPO / "legal", outbox_provider=None)
    await service.record_consent(user_id=user.id, brand="kmipt", granted=True, channel="miniapp", telegram_id=654)
    now = utcnow()
    base = LeadRequest(user_id=user.id, brand="kmipt", channel="miniapp", phone="+79161112233",
                       profile={"grade": 10, "goal": "ege", "subject": "math"})
    first = await service.create(base, now=now)
    younger = await service.create(base.model_copy(update={"profile": {"grade": 5, "goal": "olympiad"}}), now=now)
    same_again = await service.create(base.model_copy(update={"phone": "8 916 111 22 33"}), now=now)
    program = await service.create(base.model_copy(update={"program_ids": ["ege-math-10-11-online"]}), now=now)
    program_again = await service.create(
        base.model_copy(update={"program_ids": ["ege-math-10-11-online"], "profile": {"grade": 11}}), now=now
    )
    assert first.created and younger.created and program.created
    assert len({first.lead_id, younger.lead_id, program.lead_id}) == 3
    assert not same_again.created and same_again.lead_id == first.lead_id
    assert same_again.profile == {"grade": 10, "goal": "ege", "subject": "math"}  # what the stored lead asks for
    assert not program_again.created and program_again.program_ids == ["ege-math-10-11-online"]
