"""amoCRM adapter against a fake amoCRM on 127.0.0.1 speaking the documented API v4."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from adapters.crm.amo import REQUESTS_PER_SECOND, AmoCRM
from agent.errors import CrmError
from tests.crm_helpers import TOKEN, push_after_a_timed_out_push
from tests.crm_helpers import amo_fake, http  # noqa: F401 (fixtures)
from tests.crm_helpers import sample_payload as payload
from tests.fake_crm import AMO_LIMIT_PER_SECOND, FakeAmo

PHONE = "+79991234567"
TITLE = "Заявка #7 из чат-бота (kmipt)"


def amo(fake: FakeAmo, http: httpx.AsyncClient, *, token: str = TOKEN, rps: float = REQUESTS_PER_SECOND) -> AmoCRM:
    return AmoCRM(http, fake.url, token, requests_per_second=rps)


async def test_lead_with_contact_and_tags_in_one_call_then_a_note(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    result = await amo(fake, http).push_lead(payload())

    assert result.created is True
    lead = fake.leads[int(result.crm_ids["lead_id"])]
    assert lead["name"] == TITLE
    assert lead["tags"] == ["brand:kmipt", "source:vk_ads", "sales-agent"]
    contact = fake.contacts[int(result.crm_ids["contact_id"])]
    assert contact["phones"] == [PHONE] and contact["first_name"] == "Анна"
    (note,) = fake.notes[lead["id"]]
    assert "Класс: 9" in note and "хочу на ОГЭ" in note
    creates = [e for e in fake.log if e.path == "/api/v4/leads/complex"]
    assert len(creates) == 1 and creates[0].content_type == "application/json"


async def test_retry_after_a_timed_out_create_reuses_the_lead(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    result = await push_after_a_timed_out_push(amo(fake, http), fake)

    assert result.created is False
    assert len(fake.leads_named(TITLE)) == 1
    assert sum(len(n) for n in fake.notes.values()) == 1


async def test_half_finished_push_reports_its_ids_and_resumes_with_the_note(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    fake.notes_down = True
    crm = amo(fake, http)
    with pytest.raises(CrmError) as error:
        await crm.push_lead(payload())
    assert error.value.retryable and set(error.value.crm_ids) == {"lead_id", "contact_id"}

    fake.notes_down = False
    before = len(fake.log)
    result = await crm.push_lead(payload(known_ids=error.value.crm_ids))

    assert result.crm_ids["lead_id"] == error.value.crm_ids["lead_id"] and "note_id" in result.crm_ids
    assert len(fake.leads) == 1 and [e.path for e in fake.log[before:]] == [f"/api/v4/leads/{result.crm_ids['lead_id']}/notes"]


async def test_wrong_token_is_an_auth_error(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    with pytest.raises(CrmError) as error:
        await amo(fake, http, token="wrong").push_lead(payload())
    assert (error.value.kind, error.value.status, error.value.retryable) == ("auth", 401, False)
    assert "Unauthorized" in str(error.value) and not fake.leads


async def test_missing_phone_is_rejected_by_payload_as_a_permanent_error(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    body = [{"name": "no phone", "_embedded": {"contacts": [{"first_name": "Анна"}]}}]
    with pytest.raises(CrmError) as error:
        await amo(fake, http).request("POST", "/api/v4/leads/complex", json=body)
    assert (error.value.kind, error.value.status, error.value.retryable) == ("invalid_lead", 400, False)
    assert not fake.leads


async def test_garbage_and_outage(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    crm = amo(fake, http)
    fake.faults.garbage = True
    with pytest.raises(CrmError) as garbage:
        await crm.check()
    assert garbage.value.kind == "invalid_json"
    fake.faults.garbage, fake.faults.down = False, True
    with pytest.raises(CrmError) as down:
        await crm.lookup(PHONE)
    assert down.value.kind == "server" and down.value.retryable


async def test_requests_stay_under_seven_per_second(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    crm = amo(fake, http)
    results = await asyncio.gather(*(crm.lookup(f"+7999000{i:04d}") for i in range(15)))

    assert all(r.found is False for r in results)
    times = sorted(e.at for e in fake.log)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert len(times) == 15 and busiest <= AMO_LIMIT_PER_SECOND
    assert all(e.status != 429 for e in fake.log)


async def test_a_429_is_retryable_with_the_servers_retry_after(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    fake.limit_per_second = 2  # low, so the burst trips it even when a loaded machine slows it down
    crm = amo(fake, http, rps=1000)  # no client-side spacing: the fake's own limit answers
    answers = await asyncio.gather(*(crm.lookup(PHONE) for _ in range(12)), return_exceptions=True)
    limited = [a for a in answers if isinstance(a, CrmError)]
    assert limited and all((e.kind, e.status, e.retryable, e.retry_after) == ("rate_limited", 429, True, 1.0) for e in limited)


async def test_lookup_is_anonymised(fake: FakeAmo, http: httpx.AsyncClient) -> None:
    crm = amo(fake, http)
    await crm.push_lead(payload(name="Мария Иванова"))
    fake.contacts[next(iter(fake.contacts))]["tags"] = ["ЕГЭ", "позвонить маме 89990001122"]

    result = await crm.lookup("8 999 123-45-67")

    assert result.found is True and result.tags == ["ЕГЭ"] and result.last_touch_days == 0
    dumped = json.dumps(result.model_dump(), ensure_ascii=False)
    for personal in ("Мария", "Иванова", "9991234567", "89990001122"):
        assert personal not in dumped
