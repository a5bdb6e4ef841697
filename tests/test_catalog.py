from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pytest
import yaml

from agent.catalog import (
    Catalog,
    CatalogError,
    SearchCriteria,
    load_catalog,
    read_catalog,
    rub_amounts,
)
from agent.errors import UnknownBrand
from tests.conftest import REPO

DEMO_DIR = REPO / "tests" / "data" / "catalog"
TODAY = date(2026, 8, 1)


@pytest.fixture(scope="module")
def kmipt() -> Catalog:
    return load_catalog(REPO / "catalog")


def demo_raw() -> dict:
    return yaml.safe_load((DEMO_DIR / "demo.yaml").read_text(encoding="utf-8"))


def write_catalog(tmp_path: Path, raw: dict, name: str = "demo") -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return folder


def test_shipped_catalog_covers_the_brief(kmipt: Catalog) -> None:
    programs = kmipt.brand("kmipt").programs
    assert len(programs) >= 25
    # 2026/27: no intensive is announced and there is no hybrid format (F34, F61).
    assert {p.goal for p in programs} == {"ege", "oge", "olympiad", "base", "camp"}
    assert {s for p in programs for s in p.subjects} == {"math", "physics", "informatics", "russian"}
    assert {p.format for p in programs} == {"online", "offline"}
    covered = {g for p in programs for g in range(p.grade_min, p.grade_max + 1)}
    assert covered == set(range(1, 12))
    # Grades 1–4 are taught in person only (F24); Russian only in person at the МФТИ building (F50).
    assert all(p.format == "offline" for p in programs if p.grade_max <= 4)
    assert all(p.sites == ["mipt"] for p in programs if "russian" in p.subjects)
    # Every program names its sheet facts and every price its period.
    assert all(p.facts and all(price.period for price in p.prices) for p in programs)
    assert read_catalog(REPO / "catalog", today=TODAY)[1] == []


def test_two_brands_load_side_by_side(tmp_path: Path, kmipt: Catalog) -> None:
    folder = write_catalog(tmp_path, demo_raw())
    (folder / "kmipt.yaml").write_text((REPO / "catalog" / "kmipt.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    both = load_catalog(folder)
    assert both.brand_ids() == ["demo", "kmipt"]
    assert both.program("demo", "demo-ege-math-11-online") is not None
    assert both.program("kmipt", "demo-ege-math-11-online") is None
    with pytest.raises(UnknownBrand):
        both.brand("nope")


@pytest.mark.parametrize(
    ("mutate", "program_id", "field", "text"),
    [
        (lambda p: p.update(grade_max=12), "demo-ege-math-11-online", "grade_max", "less than or equal to 11"),
        (lambda p: p.update(colour="red"), "demo-ege-math-11-online", "colour", "Extra inputs"),
        (lambda p: p.update(format="space"), "demo-ege-math-11-online", "format", "online"),
        (lambda p: p.update(id="Bad Id"), "Bad Id", "id", "pattern"),
        (lambda p: p.update(usp=["one"]), "demo-ege-math-11-online", "usp", "at least 3"),
        (lambda p: p["sessions"][0].update(start_date="soon"), "demo-ege-math-11-online", "sessions[0].start_date", "date"),
        (lambda p: p.update(url="https://evil.example.com/x"), "demo-ege-math-11-online", "url", "brand domain"),
        (lambda p: p.update(grade_min=11, grade_max=9), "demo-ege-math-11-online", "grade_min", "grade_max"),
        (lambda p: p.update(brand="other"), "demo-ege-math-11-online", "brand", "differs"),
        (
            lambda p: p["sessions"][0].update(end_date=date(2027, 1, 1)),
            "demo-ege-math-11-online",
            "sessions[0].end_date",
            "ends before",
        ),
    ],
)
def test_errors_name_file_program_and_field(tmp_path: Path, mutate, program_id: str, field: str, text: str) -> None:
    raw = demo_raw()
    mutate(raw["programs"][0])
    folder = write_catalog(tmp_path, raw)
    with pytest.raises(CatalogError) as caught:
        load_catalog(folder)
    issue = caught.value.issues[0]
    assert (issue.file, issue.item, issue.field) == ("demo.yaml", program_id, field)
    assert text in issue.message
    assert f"demo.yaml: {program_id}: {field}" in str(caught.value)


def test_duplicate_ids_and_file_name_mismatch(tmp_path: Path) -> None:
    raw = demo_raw()
    raw["programs"].append(copy.deepcopy(raw["programs"][1]))
    folder = write_catalog(tmp_path, raw, name="other")
    _, issues = read_catalog(folder)
    found = {(i.item, i.field) for i in issues}
    assert (raw["programs"][1]["id"], "id") in found
    assert (None, "brand.id") in found


def test_a_broken_file_does_not_hide_the_good_ones(tmp_path: Path) -> None:
    folder = write_catalog(tmp_path, demo_raw())
    (folder / "zzz.yaml").write_text("brand: [unclosed", encoding="utf-8")
    catalog, issues = read_catalog(folder)
    assert catalog.brand_ids() == ["demo"]
    broken = [issue for issue in issues if issue.file == "zzz.yaml"]
    assert broken and "YAML" in broken[0].message


def test_sessions_all_started_is_a_warning(tmp_path: Path) -> None:
    catalog, issues = read_catalog(DEMO_DIR, today=date(2027, 12, 1))
    assert catalog.brand_ids() == ["demo"]
    assert issues and all(i.level == "warning" and i.field == "sessions" for i in issues)
    assert read_catalog(DEMO_DIR, today=date(2026, 12, 1))[1] == []


def test_price_and_start_texts(kmipt: Catalog) -> None:
    ege = kmipt.program("kmipt", "ege-math-10-11-offline")
    primary = kmipt.program("kmipt", "math-1-4-offline")
    weekday = kmipt.program("kmipt", "online-ege-math-11")
    winter = kmipt.program("kmipt", "camp-winter")
    assert ege and primary and weekday and winter
    # F63–F66: semester prices from 36 900 (the second semester; the first is 49 000), year, month, new pupils.
    assert kmipt.price_text(ege, TODAY) == (
        "от 36 900 ₽ за семестр · 82 000 ₽ за год · 10 900 ₽ в месяц · первый месяц 9 900 ₽ для новых учеников"
    )
    assert kmipt.price_text(primary, TODAY) == "59 900 ₽ за год · первый семестр 35 500 ₽"  # F67
    assert kmipt.price_text(weekday, TODAY) == "41 800 ₽ за семестр · 69 900 ₽ за год"  # F69
    assert kmipt.price_text(winter, TODAY) == "93 600 ₽ за смену · полная стоимость 117 000 ₽"  # F144
    # The Moscow sites start first (F134); once the year runs, a family can join at any time (F73).
    assert kmipt.next_start_text(ege, TODAY) == "13.09.2026"
    assert kmipt.next_start_text(ege, date(2026, 10, 1)) == "Учебный год идёт — можно присоединиться в любое время"
    assert kmipt.next_start_text(ege, date(2027, 6, 1)) == "Старт по мере набора группы"
    # Preliminary dates are marked; camp places are confirmed by a manager (F144, F147).
    assert kmipt.next_start_text(winter, TODAY) == "03.01.2027 (предварительно) · наличие мест подтверждает менеджер"


def test_waitlist_and_provisional_prices_are_shown(tmp_path: Path) -> None:
    raw = demo_raw()
    camp = raw["programs"][4]
    camp.update(availability="waitlist")
    camp["prices"] = [{"amount_rub": 32000, "period": "shift", "provisional": True}]
    catalog = load_catalog(write_catalog(tmp_path, raw))
    program = catalog.program("demo", camp["id"])
    assert program is not None
    assert catalog.price_text(program, TODAY) == "32 000 ₽ за смену (предварительно)"
    assert catalog.next_start_text(program, TODAY) == "Мест нет — лист ожидания"


def test_a_price_without_its_period_is_an_error(tmp_path: Path) -> None:
    raw = demo_raw()
    raw["programs"][0]["prices"] = [{"amount_rub": 24000}]
    _, issues = read_catalog(write_catalog(tmp_path, raw))
    assert any(i.item == "demo-ege-math-11-online" and i.field == "prices[0].period" for i in issues)


def test_a_site_must_serve_the_program_grades_and_format(tmp_path: Path) -> None:
    raw = demo_raw()
    raw["brand"]["sites"][0]["grades"] = [3, 4]  # Тверь no longer serves grade 9
    raw["programs"][0]["sites"] = ["tver", "moon"]  # an online program at an in-person site
    _, issues = read_catalog(write_catalog(tmp_path, raw))
    messages = {(i.item, i.message) for i in issues if i.field == "sites"}
    assert ("demo-oge-russian-9-offline", "tver serves none of grades 9–9") in messages
    assert ("demo-ege-math-11-online", "unknown site 'moon'") in messages
    assert ("demo-ege-math-11-online", "tver is offline, the program is online") in messages


def test_known_amounts_include_prices_and_usp_lines(kmipt: Catalog) -> None:
    amounts = kmipt.known_amounts("kmipt")
    assert {49000, 36900, 82000, 10900, 9900, 59900, 35500, 37000, 59000, 41800, 69900, 93600, 99750} <= amounts
    assert 15000 in amounts  # the ЛВШ contribution, written in a usp line only
    assert not {18800, 34400, 22500, 27540, 31350, 89900, 120000} & amounts  # withdrawn figures
    assert rub_amounts("от 36 900–49 000 ₽, взнос 15\u00a0000 руб., 250 ₽/час") == {36900, 49000, 15000, 250}


def test_search_all_criteria_strong(kmipt: Catalog) -> None:
    criteria = SearchCriteria(grade=11, goal="ege", subject="math", format="online")
    result = kmipt.search("kmipt", criteria, today=TODAY)
    assert result.match_quality == "strong" and not result.manager_recommended
    first = result.items[0]
    assert first.id == "online-ege-math-11"
    assert first.price_text == "41 800 ₽ за семестр · 69 900 ₽ за год" and first.next_start_text == "21.09.2026"
    assert "11 класс" in first.why_match and "ЕГЭ" in first.why_match and "онлайн" in first.why_match
    # The card's first lines are its facts: where, when and how long, what the price includes.
    assert first.usp[0] == "Где: онлайн на платформе SohoLMS, будничные группы (9 и 11 классы)"
    assert first.usp[1].startswith("Когда: вторник и четверг, 18:00–19:30")
    assert first.usp[2].startswith("В стоимость входит: 35 занятий")
    assert len(first.usp) <= 5 and len(result.items) <= 3
    # The runner-up meets three of four criteria, the goal and subject among them.
    assert result.items[1].id == "ege-math-10-11-offline"
    assert "Отличается: формат" in result.items[1].why_match


def test_hybrid_matches_online_and_offline() -> None:
    demo = load_catalog(DEMO_DIR)
    for wanted in ("online", "offline"):
        result = demo.search("demo", SearchCriteria(grade=4, subject="math", format=wanted), today=TODAY)
        assert result.items[0].id == "demo-math-3-5-hybrid"
        assert result.match_quality == "strong"


def test_primary_school_online_is_offered_in_person_only(kmipt: Catalog) -> None:
    result = kmipt.search("kmipt", SearchCriteria(grade=2, subject="physics", format="online"), today=TODAY)
    assert result.items[0].id == "physics-1-4-offline"
    assert result.match_quality == "limited" and "Отличается: формат — здесь очно" in result.items[0].why_match


def test_narrower_grade_range_ranks_first(kmipt: Catalog) -> None:
    result = kmipt.search("kmipt", SearchCriteria(grade=9, goal="oge", subject="math"), today=TODAY)
    assert [i.id for i in result.items[:2]] == ["oge-math-9-offline", "online-oge-math-9"]
    wide = kmipt.search("kmipt", SearchCriteria(grade=7, subject="math"), today=TODAY)
    assert wide.items[0].id == "math-5-8-offline"  # 5–8 before the 5–11 courses


def test_limited_none_and_no_criteria(kmipt: Catalog) -> None:
    limited = kmipt.search("kmipt", SearchCriteria(grade=11, goal="oge"), today=TODAY)
    assert limited.match_quality == "limited" and limited.manager_recommended
    assert limited.items and all("11 класс" in i.why_match and "Отличается" in i.why_match for i in limited.items)
    # Programs for another grade are never offered.
    assert all(kmipt.program("kmipt", i.id).grade_min <= 11 for i in limited.items)  # type: ignore[union-attr]
    none = load_catalog(DEMO_DIR).search("demo", SearchCriteria(grade=1), today=TODAY)
    assert none.match_quality == "none" and none.items == [] and none.manager_recommended
    browse = kmipt.search("kmipt", SearchCriteria(), today=TODAY, limit=5)
    assert browse.match_quality == "limited" and len(browse.items) == 5 and not browse.manager_recommended


def test_demo_brand_search_uses_its_own_data() -> None:
    demo = load_catalog(DEMO_DIR)
    result = demo.search("demo", SearchCriteria(grade=4, goal="base"), today=TODAY)
    assert result.items[0].id == "demo-math-3-5-hybrid"
    assert result.items[0].url.startswith("https://demo-school.ru/")
    camp = demo.program("demo", "demo-summer-camp-6-9")
    assert camp and demo.price_text(camp, TODAY) == "32 000 ₽ за курс"
