from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import yaml

from adapters.preflight import Level, run_preflight
from adapters.wiring import build_runtime
from tests.conftest import REPO, make_settings, run_script

DATA = REPO / "tests" / "data"



def broken_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The demo brand with a duplicate id, an off-domain url and a knowledge document without sources."""
    catalog = tmp_path / "catalog"
    knowledge = tmp_path / "knowledge"
    shutil.copytree(DATA / "catalog", catalog)
    shutil.copytree(DATA / "knowledge", knowledge)
    raw = yaml.safe_load((catalog / "demo.yaml").read_text(encoding="utf-8"))
    raw["programs"][1]["id"] = raw["programs"][0]["id"]
    raw["programs"][2]["url"] = "https://elsewhere.example.org/course"
    (catalog / "demo.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    (knowledge / "demo" / "payment.md").write_text("---\ntitle: Оплата\n---\nТекст без источника.\n", encoding="utf-8")
    return catalog, knowledge


def test_shipped_content_is_clean() -> None:
    result = run_script("validate_catalog.py", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 1 brand(s), 26 programs, 29 knowledge documents: 0 error(s), 0 warning(s)" in result.stdout


def test_demo_brand_is_clean() -> None:
    result = run_script(
        "validate_catalog.py",
        "--strict", BRAND_DEFAULT="demo", CATALOG_DIR=str(DATA / "catalog"), KNOWLEDGE_DIR=str(DATA / "knowledge")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_broken_content_fails_with_precise_errors(tmp_path: Path) -> None:
    catalog, knowledge = broken_copy(tmp_path)
    args = ("--catalog-dir", str(catalog), "--knowledge-dir", str(knowledge))
    result = run_script("validate_catalog.py", *args, BRAND_DEFAULT="demo")
    assert result.returncode == 1
    out = result.stdout
    assert "demo.yaml: demo-ege-math-11-online: id: duplicate program id" in out
    assert "demo.yaml: demo-math-3-5-hybrid: url:" in out and "demo-school.ru" in out
    assert "knowledge/demo/payment.md: payment: sources:" in out
    assert "FAIL" in out


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"  # a brand without knowledge documents: a warning
    knowledge.mkdir()
    env = {"BRAND_DEFAULT": "demo", "CATALOG_DIR": str(DATA / "catalog"), "KNOWLEDGE_DIR": str(knowledge)}
    relaxed = run_script("validate_catalog.py", **env)
    assert relaxed.returncode == 0 and "WARNING" in relaxed.stdout
    assert run_script("validate_catalog.py", "--strict", **env).returncode == 1


def test_configuration_error_exits_2() -> None:
    result = run_script("validate_catalog.py", CRM_PROVIDER="bogus")
    assert result.returncode == 2 and "CRM_PROVIDER" in result.stdout


async def test_preflight_uses_the_same_checks(tmp_path: Path) -> None:
    catalog, knowledge = broken_copy(tmp_path)
    settings = make_settings(tmp_path, brand_default="demo", catalog_dir=str(catalog), knowledge_dir=str(knowledge))
    runtime = build_runtime(settings)
    try:
        await runtime.db.migrate()
        report = await run_preflight(runtime.preflight_inputs)
    finally:
        await runtime.close()
    critical = [c for c in report.criticals if c.name in {"catalog", "knowledge"}]
    assert any("duplicate program id" in c.detail for c in critical)
    assert any(c.name == "knowledge" and "payment" in c.detail for c in critical)
    assert report.blocking
    # The broken brand file is left out of the runtime's catalog rather than half-loaded.
    assert runtime.catalog.brand_ids() == []


async def test_preflight_warns_about_past_sessions(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        brand_default="demo",
        catalog_dir=str(DATA / "catalog"),
        knowledge_dir=str(DATA / "knowledge"),
    )
    runtime = build_runtime(settings, today=lambda: date(2028, 1, 1))
    try:
        await runtime.db.migrate()
        report = await run_preflight(runtime.preflight_inputs)
    finally:
        await runtime.close()
    catalog_checks = [c for c in report.checks if c.name == "catalog"]
    assert catalog_checks and all(c.level is Level.warning for c in catalog_checks)


def drifted_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The demo brand drifted the way the kmipt sample did: an obsolete address on a card, the sister
    brand and a withdrawn price in a document, a price no card states, content not checked for years."""
    catalog = tmp_path / "catalog"
    knowledge = tmp_path / "knowledge"
    shutil.copytree(DATA / "catalog", catalog)
    shutil.copytree(DATA / "knowledge", knowledge)
    raw = yaml.safe_load((catalog / "demo.yaml").read_text(encoding="utf-8"))
    raw["programs"][1]["usp"][0] = "Занятия на Старой улице"
    raw["programs"][2]["checked_at"] = "2020-01-01"
    (catalog / "demo.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    (knowledge / "demo" / "payment.md").write_text(
        "---\ntitle: Оплата\nsources: [https://demo-school.ru/payment/]\nchecked_at: 2026-11-01\n---\n"
        "Курс ЕГЭ стоит 21 000 ₽, а интенсив — 77 000 ₽. Можно оплатить и в УНПК МФТИ.\n",
        encoding="utf-8",
    )
    return catalog, knowledge


def test_drift_is_reported_as_errors_and_warnings(tmp_path: Path) -> None:
    catalog, knowledge = drifted_copy(tmp_path)
    result = run_script("validate_catalog.py", "--catalog-dir", str(catalog), "--knowledge-dir", str(knowledge), BRAND_DEFAULT="demo")
    out = result.stdout
    assert result.returncode == 1, out
    assert "demo.yaml: demo-oge-russian-9-offline: card: names a term the brand rules forbid: obsolete:old_address «Старой улице»" in out
    assert "knowledge/demo/payment.md: payment: text: names a term the brand rules forbid: sister_brand:sister_brand «УНПК МФТИ»" in out
    assert "payment: text: names a term the brand rules forbid: withdrawn_amount:21000 «21 000»" in out
    assert "payment: amounts: 77 000 ₽ is in no card and no price list" in out
    assert "WARNING demo.yaml: demo-math-3-5-hybrid: checked_at: checked" in out
    assert "21 000 ₽ is in no card" in out  # the withdrawn price is also no catalog price


def test_content_age_is_configurable(tmp_path: Path) -> None:
    env = {"BRAND_DEFAULT": "demo", "CATALOG_DIR": str(DATA / "catalog"), "KNOWLEDGE_DIR": str(DATA / "knowledge")}
    assert run_script("validate_catalog.py", "--strict", **env).returncode == 0
    tight = run_script("validate_catalog.py", "--strict", "--max-age-days", "1", **env)
    assert tight.returncode == 1 and "checked_at: checked" in tight.stdout and "(more than 1)" in tight.stdout


def test_a_broken_rules_file_fails_validation(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(DATA / "catalog", catalog)
    rules = catalog / "demo.rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8") + "\nsister_brnad: {}\n", encoding="utf-8")
    result = run_script("validate_catalog.py", "--catalog-dir", str(catalog), "--knowledge-dir", str(DATA / "knowledge"), BRAND_DEFAULT="demo")
    assert result.returncode == 1
    assert "demo.rules.yaml: sister_brnad: Extra inputs are not permitted" in result.stdout
