"""Brand catalogs: loading catalog/<brand>.yaml with precise errors, the content rules, and the lookups.

Pure core code: it reads YAML and nothing else. The schema lives in agent/catalog_schema.py, ranking and
the Russian card texts in agent/catalog_search.py; this module re-exports them so callers import one thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from agent.brand_rules import RULES_SUFFIX, BrandRules, RulesFileError, empty_rules, read_rules_file, rules_path
from agent.catalog_schema import BrandCatalog, BrandInfo, Format, Goal, Grade, Price, Program, Session, Site, Subject
from agent.catalog_search import CatalogSearchResult, SearchCriteria, next_start_text, price_text, rank_programs
from agent.errors import UnknownBrand
from agent.yaml_load import safe_load
from agent.rules_guard import RulesGuard

# The school works in Moscow time: "today" decides which sessions are still ahead.
SCHOOL_TZ = ZoneInfo("Europe/Moscow")


def school_today() -> date:
    return datetime.now(SCHOOL_TZ).date()


@dataclass(frozen=True)
class ContentIssue:
    """One finding about brand content; ``item`` is a program id or a knowledge document slug."""

    level: Literal["error", "warning"]
    file: str
    item: str | None
    field: str | None
    message: str

    @property
    def where(self) -> str:
        return ": ".join(part for part in (self.file, self.item, self.field) if part)

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


class CatalogError(Exception):
    def __init__(self, issues: list[ContentIssue]) -> None:
        self.issues = issues
        shown = "; ".join(str(issue) for issue in issues[:5])
        more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"invalid catalog: {shown}{more}")


# "36 900 ₽", "36900 ₽", "36 900–49 000 ₽" (both ends count), with any of the spaces Russian text uses.
_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+"
_RUB_RE = re.compile(rf"({_NUMBER})(?:\s*[–—-]\s*({_NUMBER}))?\s*(?:₽|руб)")


def rub_amounts(text: str) -> set[int]:
    """Every rouble amount written in ``text`` (used to know which prices the assistant may quote)."""
    amounts: set[int] = set()
    for match in _RUB_RE.finditer(text):
        for group in match.groups():
            if group:
                amounts.add(int(re.sub(r"\D", "", group)))
    return amounts


class Catalog:
    def __init__(self, brands: dict[str, BrandCatalog], rules: dict[str, BrandRules] | None = None) -> None:
        self._brands = brands
        rules = rules or {}
        # The school's rules for what may be said (catalog/<brand>.rules.yaml), compiled once per brand.
        self._guards = {brand_id: RulesGuard(rules.get(brand_id) or empty_rules(brand_id)) for brand_id in brands}
        self._programs = {
            brand_id: {program.id: program for program in catalog.programs} for brand_id, catalog in brands.items()
        }

    def brand_ids(self) -> list[str]:
        return sorted(self._brands)

    def require_brand(self, brand_id: str) -> str:
        """``brand_id`` when the catalog has it; UnknownBrand otherwise (every channel's brand check)."""
        if brand_id not in self._brands:
            raise UnknownBrand(brand_id)
        return brand_id

    def brand(self, brand_id: str) -> BrandCatalog:
        try:
            return self._brands[brand_id]
        except KeyError:
            raise UnknownBrand(brand_id) from None

    def rules(self, brand_id: str) -> BrandRules:
        return self.guard(brand_id).rules

    def guard(self, brand_id: str) -> RulesGuard:
        self.brand(brand_id)
        return self._guards[brand_id]

    def program(self, brand_id: str, program_id: str) -> Program | None:
        self.brand(brand_id)
        return self._programs[brand_id].get(program_id)

    def search(
        self, brand_id: str, criteria: SearchCriteria, *, today: date, limit: int = 3
    ) -> CatalogSearchResult:
        catalog = self.brand(brand_id)
        sites = {site.id: site for site in catalog.brand.sites}
        return rank_programs(catalog.programs, criteria, today=today, limit=limit, sites=sites)

    @staticmethod
    def price_text(program: Program, today: date) -> str:
        return price_text(program, today)

    @staticmethod
    def next_start_text(program: Program, today: date) -> str:
        return next_start_text(program, today)

    def known_amounts(self, brand_id: str) -> set[int]:
        """Every price in the brand's catalog: program prices and amounts written in usp, includes or facts."""
        catalog = self.brand(brand_id)
        amounts = rub_amounts(" ".join([*catalog.brand.facts, catalog.brand.manager_contact]))
        for program in catalog.programs:
            amounts |= {price.amount_rub for price in program.prices}
            amounts |= rub_amounts(" ".join([*program.usp, *program.includes]))
        return amounts


def _field_path(loc: Iterable[object]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _schema_issues(file: str, raw: object, error: ValidationError) -> list[ContentIssue]:
    issues = []
    programs = raw.get("programs") if isinstance(raw, dict) else None
    for item in error.errors():
        loc = list(item["loc"])
        program_id = None
        if len(loc) >= 2 and loc[0] == "programs" and isinstance(loc[1], int) and isinstance(programs, list):
            entry = programs[loc[1]] if loc[1] < len(programs) else None
            program_id = str(entry.get("id")) if isinstance(entry, dict) and entry.get("id") else f"programs[{loc[1]}]"
            loc = loc[2:]
        issues.append(ContentIssue("error", file, program_id, _field_path(loc) or None, item["msg"]))
    return issues


def _on_domain(url: object, domain: str) -> bool:
    host = (urlsplit(str(url)).hostname or "").lower()
    domain = domain.lower()
    return host == domain or host.endswith("." + domain)


def _rule_issues(file: str, stem: str, catalog: BrandCatalog) -> list[ContentIssue]:
    """Rules the schema can't express: they need the brand, the file name or the other programs."""
    brand = catalog.brand
    issues = []
    if brand.id != stem:
        issues.append(ContentIssue("error", file, None, "brand.id", f"{brand.id!r} must match the file name {stem!r}"))
    seen: set[str] = set()
    sites = {site.id: site for site in brand.sites}
    if len(sites) != len(brand.sites):
        issues.append(ContentIssue("error", file, None, "brand.sites", "duplicate site id"))
    for program in catalog.programs:
        def error(field: str, message: str, program_id: str = program.id) -> None:
            issues.append(ContentIssue("error", file, program_id, field, message))

        if program.id in seen:
            error("id", "duplicate program id")
        seen.add(program.id)
        if program.brand != brand.id:
            error("brand", f"{program.brand!r} differs from the file's brand {brand.id!r}")
        if not _on_domain(program.url, brand.domain):
            error("url", f"{program.url} is not on the brand domain {brand.domain}")
        if program.grade_min > program.grade_max:
            error("grade_min", f"grade_min {program.grade_min} > grade_max {program.grade_max}")
        for index, session in enumerate(program.sessions):
            if session.end_date is not None and session.end_date < session.start_date:
                error(f"sessions[{index}].end_date", "ends before it starts")
        issues += _site_issues(file, program, sites)
    return issues


def _site_issues(file: str, program: Program, sites: dict[str, Site]) -> list[ContentIssue]:
    """Each of a program's sites must exist, teach in the program's format and serve some of its grades;
    together they must serve all of them (a 5–11 course can run at a 5–8 and a 9–11 site)."""
    issues = []
    grades = set(range(program.grade_min, program.grade_max + 1))
    formats = {"online", "offline"} if program.format == "hybrid" else {program.format}
    served: set[int] = set()
    for site_id in program.sites:
        site = sites.get(site_id)
        if site is None:
            issues.append(ContentIssue("error", file, program.id, "sites", f"unknown site {site_id!r}"))
            continue
        if site.format not in formats:
            issues.append(ContentIssue("error", file, program.id, "sites", f"{site_id} is {site.format}, the program is {program.format}"))
        if not grades & set(site.grades):
            issues.append(ContentIssue("error", file, program.id, "sites", f"{site_id} serves none of grades {program.grade_min}–{program.grade_max}"))
        served |= set(site.grades)
    missing = sorted(grades - served)
    if program.sites and missing:
        issues.append(ContentIssue("error", file, program.id, "sites", f"no site of the program serves grade(s) {missing}"))
    return issues


def _past_session_warnings(file: str, catalog: BrandCatalog, today: date) -> list[ContentIssue]:
    """A program whose sessions have all started needs new dates, unless a running year can be joined."""
    def stale(program: Program) -> bool:
        if any(session.start_date >= today for session in program.sessions):
            return False
        running = any(session.end_date is None or session.end_date >= today for session in program.sessions)
        return not (program.join_anytime and running)

    return [
        ContentIssue("warning", file, program.id, "sessions", "every session has already started; add new dates")
        for program in catalog.programs
        if stale(program)
    ]


def read_catalog(directory: Path, *, today: date | None = None) -> tuple[Catalog, list[ContentIssue]]:
    """Load every valid brand file and report the problems of all files (errors and, with ``today``,
    warnings). A file with an error is left out of the catalog; the others still load."""
    brands: dict[str, BrandCatalog] = {}
    rules: dict[str, BrandRules] = {}
    issues: list[ContentIssue] = []
    files = sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(RULES_SUFFIX)) if directory.is_dir() else []
    if not files:
        issues.append(ContentIssue("error", str(directory), None, None, "no brand catalog (*.yaml) found"))
    for path in files:
        file = path.name
        try:
            raw = safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            issues.append(ContentIssue("error", file, None, None, f"cannot read YAML: {error}"))
            continue
        try:
            catalog = BrandCatalog.model_validate(raw)
        except ValidationError as error:
            issues += _schema_issues(file, raw, error)
            continue
        file_issues = _rule_issues(file, path.stem, catalog)
        issues += file_issues
        if today is not None:
            issues += _past_session_warnings(file, catalog, today)
        brand_rules, rules_issues = _read_rules(directory, catalog.brand.id)
        file_issues += [issue for issue in rules_issues if issue.level == "error"]
        issues += rules_issues
        if not file_issues and catalog.brand.id not in brands:
            brands[catalog.brand.id] = catalog
            rules[catalog.brand.id] = brand_rules
    return Catalog(brands, rules), issues


def _read_rules(directory: Path, brand: str) -> tuple[BrandRules, list[ContentIssue]]:
    """The brand's rules file; a broken one is an error (the brand is left out rather than run without
    its rules), a missing one a warning (the brand runs with no extra rules)."""
    path = rules_path(directory, brand)
    if not path.is_file():
        return empty_rules(brand), [ContentIssue("warning", path.name, None, None, "no brand rules file")]
    try:
        return read_rules_file(path, brand), []
    except RulesFileError as error:
        return empty_rules(brand), [ContentIssue("error", error.file, None, where, message) for where, message in error.problems]


def load_catalog(directory: Path) -> Catalog:
    """The whole catalog or ``CatalogError`` listing every error with file, program id and field."""
    catalog, issues = read_catalog(directory)
    errors = [issue for issue in issues if issue.level == "error"]
    if errors:
        raise CatalogError(errors)
    return catalog


__all__ = [
    "BrandCatalog",
    "BrandInfo",
    "BrandRules",
    "Catalog",
    "CatalogError",
    "CatalogSearchResult",
    "ContentIssue",
    "Format",
    "Goal",
    "Grade",
    "Price",
    "Program",
    "SearchCriteria",
    "Session",
    "Site",
    "Subject",
    "load_catalog",
    "price_text",
    "read_catalog",
    "rub_amounts",
    "school_today",
]
