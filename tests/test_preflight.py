from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.http.app import PreflightFailed, start_runtime
from adapters.preflight import Level, Report, run_preflight
from adapters.wiring import build_runtime
from agent.settings import PreflightMode
from tests.conftest import REPO, make_settings

VALID_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


async def _report(tmp_path: Path, migrate: bool = True, **overrides: object) -> Report:
    runtime = build_runtime(make_settings(tmp_path, **overrides))
    try:
        if migrate:
            await runtime.db.migrate()
        return await run_preflight(runtime.preflight_inputs)
    finally:
        await runtime.close()


def _levels(report: Report) -> dict[str, Level]:
    levels: dict[str, Level] = {}
    for check in report.checks:
        if levels.get(check.name) is not Level.critical:
            levels[check.name] = check.level
    return levels


async def test_clean_configuration_passes_strict(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "admin").mkdir(parents=True)
    (dist / "index.html").write_text("user app")
    (dist / "admin" / "index.html").write_text("admin app")
    report = await _report(
        tmp_path, telegram_bot_token=VALID_TOKEN, openai_api_key="sk-test", startup_preflight_mode="strict",
        webapp_dist_path=str(dist),
    )
    assert report.criticals == [] and report.warnings == []
    assert not report.blocking


async def test_findings_and_levels(tmp_path: Path) -> None:
    report = await _report(
        tmp_path,
        telegram_bot_token="not-a-token",
        telegram_mode="webhook",
        admin_pass="strong_password",
        crm_provider="tallanto",
    )
    levels = _levels(report)
    assert levels["telegram_token"] is Level.critical
    assert levels["telegram_webhook_secret"] is Level.warning
    assert levels["admin_pass"] is Level.warning
    assert levels["openai"] is Level.warning
    assert levels["crm_settings"] is Level.critical
    assert "TALLANTO_API_URL" in next(c.detail for c in report.checks if c.name == "crm_settings")
    assert report.blocking  # mode fail + criticals


async def test_weak_admin_password_is_critical_in_strict(tmp_path: Path) -> None:
    report = await _report(tmp_path, admin_pass="admin", startup_preflight_mode="strict")
    assert _levels(report)["admin_pass"] is Level.critical


@pytest.mark.parametrize(
    ("mode", "blocking"), [(PreflightMode.off, False), (PreflightMode.fail, False), (PreflightMode.strict, True)]
)
async def test_modes_with_warnings_only(tmp_path: Path, mode: PreflightMode, blocking: bool) -> None:
    report = await _report(tmp_path, startup_preflight_mode=mode.value)
    assert report.warnings and not report.criticals
    assert report.blocking is blocking


async def test_unmigrated_database_is_reported(tmp_path: Path) -> None:
    report = await _report(tmp_path, migrate=False)
    check = next(c for c in report.checks if c.name == "database")
    assert check.level is Level.warning and "migrations" in check.detail


async def test_unwritable_data_root_is_critical(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    report = await _report(
        tmp_path, migrate=False, persistent_data_path=str(blocker / "data"), database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db"
    )
    assert _levels(report)["data_root"] is Level.critical


async def test_render_tmp_and_outside_paths_warn(tmp_path: Path) -> None:
    report = await _report(
        tmp_path,
        database_path=str(tmp_path / "elsewhere" / "db.sqlite"),
        vector_store_meta_path=str(tmp_path / "elsewhere" / "meta.json"),
    )
    names = {c.name for c in report.warnings}
    assert {"database_path", "vector_store_meta_path"} <= names


async def test_missing_brand_catalog_is_critical(tmp_path: Path) -> None:
    report = await _report(tmp_path, brand_default="nosuchbrand")
    assert _levels(report)["catalog"] is Level.critical


async def test_blocking_preflight_stops_start_up(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path, crm_provider="amo"))
    try:
        with pytest.raises(PreflightFailed, match="crm_settings"):
            await start_runtime(runtime)
    finally:
        await runtime.close()


def test_preflight_audit_script_exit_codes(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PERSISTENT_DATA_PATH": str(tmp_path / "d"), "ADMIN_PASS": "a-long-test-password"}
    ok = subprocess.run([sys.executable, "scripts/preflight_audit.py"], cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS" in ok.stdout and "data_root" in ok.stdout
    strict = subprocess.run(
        [sys.executable, "scripts/preflight_audit.py", "--mode", "strict"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert strict.returncode == 1 and "FAIL" in strict.stdout
    bad = subprocess.run(
        [sys.executable, "scripts/preflight_audit.py"], cwd=REPO, env={**env, "CRM_PROVIDER": "x"}, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "CRM_PROVIDER" in bad.stdout
