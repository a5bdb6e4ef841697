"""Tallanto adapter against a fake Tallanto on 127.0.0.1 speaking the documented protocol."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from adapters.crm.factory import build_crm
from adapters.crm.tallanto import TallantoCRM, rest_endpoint
from agent.errors import CrmError
from tests.conftest import make_settings
from tests.crm_helpers import TOKEN, push_after_a_timed_out_push
from tests.crm_helpers import http, tallanto_fake  # noqa: F401 (fixtures)
from tests.crm_helpers import sample_payload as payload
from tests.fake_crm import FakeTallanto

PHONE = "+79991234567"


def tallanto(fake: FakeTallanto, http: httpx.AsyncClient, *, token: str = TOKEN, read_only: bool = False) -> TallantoCRM:
    return TallantoCRM(http, fake.url, token, contact_module="contacts", read_only=read_only)


async def test_new_lead_creates_a_prospect_contact_with_a_form_body(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    result = await tallanto(fake, http).push_lead(payload())

    assert result.created is True
    contact = fake.contacts[result.crm_ids["contact_id"]]
    assert contact["phone_mobile"] == PHONE
    assert contact["first_name"] == "Анна"
    assert contact["type_client_c"] == "Потенциальный клиент"
    for expected in ("Класс: 9", "Цель: ОГЭ", "Предмет: математика", "Формат: онлайн", "oge-math-9, oge-phys-9", "Источник: vk_ads", "хочу на ОГЭ"):
        assert expected in contact["description"]
    (write,) = fake.writes
    assert write.content_type.startswith("application/x-www-form-urlencoded")
    assert ("module", "Contact") in write.query
    # Every phone format was searched in both phone fields before creating.
    searched = {v for e in fake.log for k, v in e.query if k.startswith("fields_values[")}
    assert searched == {PHONE, "89991234567", "79991234567"}


async def test_existing_contact_in_another_format_is_updated_not_duplicated(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    fake.wrap_entry_list = True  # some tenants answer {"entry_list": [...]}
    existing = fake.add_contact(first_name="Ольга", phone_work="89991234567", type_client_c="Клиент", description="давний клиент")

    result = await tallanto(fake, http).push_lead(payload())

    assert result.created is False and result.crm_ids == {"contact_id": existing}
    assert len(fake.contacts) == 1
    contact = fake.contacts[existing]
    assert contact["type_client_c"] == "Клиент" and contact["first_name"] == "Ольга"
    assert contact["description"].startswith("Заявка #7 из чат-бота (kmipt)")
    assert contact["description"].endswith("давний клиент")


async def test_retry_after_a_timed_out_create_does_not_create_a_second_contact(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    result = await push_after_a_timed_out_push(tallanto(fake, http), fake)
    assert result.created is False
    assert len(fake.contacts) == 1
    (contact,) = fake.contacts.values()
    assert contact["description"].count("Заявка #7 из чат-бота") == 1
    assert len(fake.writes) == 1  # the retry found its own comment and wrote nothing


async def test_wrong_token_is_an_auth_error_that_is_never_retried(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    with pytest.raises(CrmError) as error:
        await tallanto(fake, http, token="wrong").push_lead(payload())
    assert (error.value.kind, error.value.status, error.value.retryable) == ("auth", 401, False)
    assert "wrong" not in str(error.value)
    assert len(fake.log) == 1 and not fake.contacts


async def test_garbage_answer_is_an_invalid_json_error(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    fake.faults.garbage = True
    with pytest.raises(CrmError) as error:
        await tallanto(fake, http).lookup(PHONE)
    assert error.value.kind == "invalid_json" and error.value.retryable


async def test_server_down_is_retryable_with_retry_after(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    fake.faults.down, fake.faults.retry_after = True, 12
    with pytest.raises(CrmError) as error:
        await tallanto(fake, http).check()
    assert (error.value.kind, error.value.status, error.value.retryable, error.value.retry_after) == ("server", 503, True, 12.0)


async def test_unreachable_server_is_a_network_error(http: httpx.AsyncClient) -> None:
    crm = TallantoCRM(http, "http://127.0.0.1:9", TOKEN, contact_module="contacts", read_only=False)
    with pytest.raises(CrmError) as error:
        await crm.check()
    assert error.value.kind == "network" and error.value.retryable


async def test_read_only_mode_refuses_writes_before_any_request(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    crm = tallanto(fake, http, read_only=True)
    for method in ("set_entry", "delete_entry", "some_future_write"):
        with pytest.raises(CrmError) as error:
            await crm.call(method, form={"fields_values[first_name]": "x"})
        assert error.value.kind == "read_only" and not error.value.retryable
    assert fake.log == []

    with pytest.raises(CrmError):
        await crm.push_lead(payload())
    assert fake.writes == [] and not fake.contacts
    assert (await crm.lookup(PHONE)).found is False  # reads still work


async def test_fake_rejects_a_json_body_where_a_form_is_expected(fake: FakeTallanto) -> None:
    """The protocol check has teeth: the same write as JSON is refused by the fake."""
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            rest_endpoint(fake.url),
            params={"method": "set_entry", "module": "Contact"},
            json={"fields_values": {"phone_mobile": PHONE}},
            headers={"X-Auth-Token": TOKEN},
        )
    assert answer.status_code == 400 and not fake.contacts


async def test_lookup_is_anonymised(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    personal = {
        "first_name": "Мария",
        "last_name": "Иванова",
        "phone_mobile": "89991234567",
        "email1": "maria@example.ru",
        "description": "звонила, просила перезвонить вечером",
        "address_street": "ул. Ленина, 1",
    }
    fake.add_contact(
        **personal,
        type_client_c="Потенциальный клиент",
        filial="Долгопрудный",
        abonements="ЕГЭ математика; Олимпиадная физика, тел. 89990001122",
        date_modified="2020-01-01 10:00:00",
    )

    result = await tallanto(fake, http).lookup(PHONE)

    assert result.found is True
    assert result.tags == ["Потенциальный клиент", "Долгопрудный"]
    assert result.interests == ["ЕГЭ математика", "Олимпиадная физика"]  # the item with a phone is dropped
    assert result.last_touch_days is not None and result.last_touch_days > 365
    dumped = json.dumps(result.model_dump(), ensure_ascii=False)
    assert set(result.model_dump()) == {"found", "tags", "interests", "last_touch_days"}
    for value in [*personal.values(), "9991234567", "89990001122"]:
        assert value not in dumped


async def test_not_found_1502_is_an_empty_result(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    result = await tallanto(fake, http).lookup(PHONE)
    assert result.found is False and result.tags == []
    assert {e.status for e in fake.log} == {400}


async def test_meta_calls_and_url_forms(fake: FakeTallanto, http: httpx.AsyncClient) -> None:
    crm = TallantoCRM(http, rest_endpoint(fake.url) + "/", TOKEN, contact_module="contacts", read_only=True)
    assert {"label": "Ученики", "module": "Contact"} in await crm.modules()
    assert {"name": "phone_mobile", "label": "Мобильный"} in await crm.fields("contacts")
    assert all(e.path == "/service/api/rest.php" for e in fake.log)
    assert rest_endpoint("https://school.tallanto.com/") == "https://school.tallanto.com/service/api/rest.php"


async def test_api_key_is_used_when_no_token_is_set(fake: FakeTallanto, http: httpx.AsyncClient, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, crm_provider="tallanto", tallanto_api_url=fake.url, tallanto_api_key=TOKEN)
    crm = build_crm(settings, http)
    assert isinstance(crm, TallantoCRM) and crm.contact_module == "Contact"
    await crm.check()
    assert [e.status for e in fake.log] == [200]
