"""The read-only Tallanto API (/api/crm/*): gating, admin auth, the per-IP limit and anonymised answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from tests.crm_helpers import crm_settings
from tests.crm_helpers import tallanto_fake  # noqa: F401 (fixture)
from tests.fake_crm import FakeTallanto

ADMIN = ("admin", "a-long-test-password")
OPEN = {"tallanto_read_only": "1", "crm_api_exposed": True}


async def api(tmp_path: Path, provider: str, url: str, **extra: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(crm_settings(tmp_path, provider, url, **extra))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def client(fake: FakeTallanto, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in api(tmp_path, "tallanto", fake.url, **OPEN):
        yield c


@pytest.mark.parametrize(
    ("provider", "extra"),
    [
        ("none", OPEN),
        ("amo", OPEN),
        ("tallanto", {"tallanto_read_only": "true", "crm_api_exposed": True}),
        ("tallanto", {"tallanto_read_only": "", "crm_api_exposed": True}),
        ("tallanto", {"tallanto_read_only": "1", "crm_api_exposed": False}),
    ],
)
async def test_disabled_unless_tallanto_read_only_1_and_exposed(
    fake: FakeTallanto, tmp_path: Path, provider: str, extra: dict[str, object]
) -> None:
    extra = {**extra, "startup_preflight_mode": "off"}  # amo here points at the Tallanto fake
    async for client in api(tmp_path, provider, fake.url, **extra):
        for path in ("/api/crm/meta/modules", "/api/crm/meta/fields?module=contacts", "/api/crm/lookup?field=phone&value=1"):
            response = await client.get(path, auth=ADMIN)
            assert response.status_code == 404
            assert response.json() == {"ok": False, "reason": "crm_api_disabled"}


async def test_requires_admin_basic_auth(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/crm/meta/modules")).status_code == 401
    wrong = await client.get("/api/crm/meta/modules", auth=("admin", "nope"))
    assert wrong.status_code == 401 and wrong.json()["reason"] == "admin_auth_required"
    assert wrong.headers["www-authenticate"].startswith("Basic")


async def test_meta_endpoints(client: httpx.AsyncClient) -> None:
    modules = (await client.get("/api/crm/meta/modules", auth=ADMIN)).json()
    assert modules["ok"] is True and {"label": "Ученики", "module": "Contact"} in modules["modules"]
    fields = (await client.get("/api/crm/meta/fields", params={"module": "contacts"}, auth=ADMIN)).json()
    assert fields["module"] == "Contact" and {"name": "phone_mobile", "label": "Мобильный"} in fields["fields"]


async def test_lookup_answers_anonymised_context_only(fake: FakeTallanto, client: httpx.AsyncClient) -> None:
    fake.add_contact(
        first_name="Мария",
        last_name="Иванова",
        phone_mobile="+79990000000",
        email1="maria@example.ru",
        description="внутренняя заметка",
        type_client_c="Потенциальный клиент",
        abonements="ЕГЭ физика",
        date_modified="2026-01-01 00:00:00",
    )
    response = await client.get(
        "/api/crm/lookup", params={"module": "contacts", "field": "phone", "value": "+79990000000"}, auth=ADMIN
    )
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"ok", "found", "tags", "interests", "last_touch_days"}
    assert body["found"] is True and body["tags"] == ["Потенциальный клиент"] and body["interests"] == ["ЕГЭ физика"]
    assert isinstance(body["last_touch_days"], int)
    text = json.dumps(body, ensure_ascii=False)
    for personal in ("Мария", "Иванова", "9990000000", "maria@", "заметка"):
        assert personal not in text

    missing = await client.get("/api/crm/lookup", params={"field": "phone", "value": "+79995550000"}, auth=ADMIN)
    assert missing.json() == {"ok": True, "found": False, "tags": [], "interests": [], "last_touch_days": None}


async def test_bad_parameters_are_422_not_500(client: httpx.AsyncClient) -> None:
    bad_phone = await client.get("/api/crm/lookup", params={"field": "phone", "value": "hello"}, auth=ADMIN)
    assert bad_phone.status_code == 422 and bad_phone.json()["field"] == "phone"
    bad_field = await client.get("/api/crm/lookup", params={"field": "DROP TABLE", "value": "x"}, auth=ADMIN)
    assert bad_field.status_code == 422 and bad_field.json()["field"] == "field"


async def test_crm_outage_is_502_with_a_reason(fake: FakeTallanto, client: httpx.AsyncClient) -> None:
    fake.faults.down = True
    response = await client.get("/api/crm/meta/modules", auth=ADMIN)
    assert response.status_code == 502
    assert response.json() == {"ok": False, "reason": "crm_unavailable", "kind": "server"}


async def test_rate_limit_per_ip_counts_failed_logins_too(fake: FakeTallanto, tmp_path: Path) -> None:
    limits = {**OPEN, "crm_rate_limit_ip_requests": 3, "crm_rate_limit_window_seconds": 60}
    async for client in api(tmp_path, "tallanto", fake.url, **limits):
        for _ in range(3):
            assert (await client.get("/api/crm/meta/modules", auth=("admin", "guess"))).status_code == 401
        limited = await client.get("/api/crm/meta/modules", auth=ADMIN)
        assert limited.status_code == 429
        assert limited.json()["reason"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
