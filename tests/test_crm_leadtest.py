"""/leadtest's round trip and the start-up CRM check, against the fake CRMs."""

from __future__ import annotations

from pathlib import Path

from adapters.preflight import Level, run_preflight
from adapters.wiring import build_runtime
from tests.conftest import make_settings
from tests.crm_helpers import TOKEN, crm_runtime, serving
from tests.fake_crm import FakeAmo, FakeTallanto


async def test_leadtest_creates_a_test_lead_in_amo(tmp_path: Path) -> None:
    fake = FakeAmo(token=TOKEN)
    with serving(fake):
        runtime = await crm_runtime(tmp_path, "amo", fake.url)
        try:
            result = await runtime.lead_test("8 999 123-45-67")
            assert result.ok and result.provider == "amo"
            assert "создана в amoCRM" in result.message and result.crm_ids["lead_id"] in result.message
            (deal,) = fake.leads.values()
            assert deal["name"].startswith("ТЕСТ: ") and "test" in deal["tags"]
            stored = await runtime.leads.get(result.lead_id)  # type: ignore[arg-type]
            assert stored.is_test and stored.phone == "+79991234567"  # type: ignore[union-attr]
            assert stored.crm_status == "delivered" and stored.crm_id == result.crm_ids["lead_id"]  # type: ignore[union-attr]
            assert await runtime.outbox.for_lead(stored.id) is None  # type: ignore[arg-type, union-attr]
        finally:
            await runtime.close()


async def test_leadtest_explains_failures_in_plain_words(tmp_path: Path) -> None:
    fake = FakeTallanto(token=TOKEN)
    with serving(fake):
        runtime = await crm_runtime(tmp_path, "tallanto", fake.url, tallanto_api_token="wrong-token-value")
        try:
            result = await runtime.lead_test("+79991234567")
            assert not result.ok
            assert "не принял токен (HTTP 401)" in result.message and "TALLANTO_API_TOKEN" in result.message
            assert "wrong-token-value" not in result.message
            stored = await runtime.leads.get(result.lead_id)  # type: ignore[arg-type]
            assert stored.crm_status == "failed" and stored.crm_error.startswith("auth:")  # type: ignore[union-attr]

            bad = await runtime.lead_test("12345")
            assert not bad.ok and "/leadtest +79991234567" in bad.message and bad.lead_id is None
            # One phone rule: a number a real lead is refused with (no Russian code starts with 1) too.
            unreal = await runtime.lead_test("+7 111 111-11-11")
            assert not unreal.ok and unreal.lead_id is None and "/leadtest +79991234567" in unreal.message
        finally:
            await runtime.close()

    # The fake has stopped: its port is closed now.
    runtime = await crm_runtime(tmp_path, "tallanto", fake.url)
    try:
        result = await runtime.lead_test("+79991234567")
        assert not result.ok and "недоступен по сети" in result.message and "TALLANTO_API_URL" in result.message
    finally:
        await runtime.close()


async def test_leadtest_without_a_crm(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    await runtime.db.migrate()
    try:
        result = await runtime.lead_test("+79991234567")
        assert not result.ok and "CRM_PROVIDER=none" in result.message
        assert await runtime.leads.count() == 0
    finally:
        await runtime.close()


async def test_preflight_makes_an_authenticated_read(tmp_path: Path) -> None:
    fake = FakeTallanto(token=TOKEN)
    with serving(fake):
        runtime = await crm_runtime(tmp_path, "tallanto", fake.url)
        try:
            checks = {c.name: c for c in (await run_preflight(runtime.preflight_inputs)).checks}
            assert checks["crm_connection"].level is Level.ok
            assert [(e.method, dict(e.query)["method"]) for e in fake.log] == [("GET", "list_possible_modules")]
        finally:
            await runtime.close()

        runtime = await crm_runtime(tmp_path, "tallanto", fake.url, tallanto_api_token="secret-wrong-token", tallanto_read_only="1")
        try:
            report = await run_preflight(runtime.preflight_inputs)
            checks = {c.name: c for c in report.checks}
            assert checks["crm_connection"].level is Level.critical and report.blocking
            assert "auth" in checks["crm_connection"].detail and "401" in checks["crm_connection"].detail
            assert all("secret-wrong-token" not in c.detail for c in report.checks)
            assert checks["crm_read_only"].level is Level.warning
        finally:
            await runtime.close()


async def test_preflight_skips_the_round_trip_without_a_crm_or_settings(tmp_path: Path) -> None:
    for settings in (make_settings(tmp_path), make_settings(tmp_path, crm_provider="amo")):
        runtime = build_runtime(settings)
        await runtime.db.migrate()
        try:
            names = [c.name for c in (await run_preflight(runtime.preflight_inputs)).checks]
            assert "crm_connection" not in names
        finally:
            await runtime.close()
