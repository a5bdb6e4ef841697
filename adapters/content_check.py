"""Validation of the brand content (catalogs, brand rules and knowledge documents): scripts/validate_catalog.py
and the start-up preflight run this same code.

Beyond the schemas it checks what let the sample content drift from the school's facts: a card or a
document naming a term the brand rules forbid (the sister brand, an obsolete address or platform, an
internal fact, a withdrawn price), a document quoting a ₽ amount that no card and no price list states,
and content not re-checked for too long.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from adapters.knowledge.documents import KnowledgeDocument, brand_folders, read_brand_documents
from agent.catalog import Catalog, ContentIssue, Program, price_text, read_catalog, rub_amounts
from agent.rules_guard import RulesGuard
from agent.settings import Settings

# Content older than this (by its checked_at) is a warning: facts like prices and dates go stale.
DEFAULT_MAX_AGE_DAYS = 180


@dataclass
class ContentReport:
    catalog_issues: list[ContentIssue] = field(default_factory=list)
    knowledge_issues: list[ContentIssue] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)
    programs: int = 0
    documents: int = 0

    @property
    def issues(self) -> list[ContentIssue]:
        return self.catalog_issues + self.knowledge_issues

    @property
    def errors(self) -> list[ContentIssue]:
        return [issue for issue in self.issues if issue.level == "error"]

    @property
    def warnings(self) -> list[ContentIssue]:
        return [issue for issue in self.issues if issue.level == "warning"]


def check_content(settings: Settings, today: date, *, max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> ContentReport:
    catalog, catalog_issues = read_catalog(settings.catalog_path, today=today)
    report = ContentReport(catalog_issues=catalog_issues, brands=catalog.brand_ids())
    report.programs = sum(len(catalog.brand(brand).programs) for brand in report.brands)
    default = settings.brand_default
    default_file = f"{default}.yaml"
    if default not in report.brands and not any(issue.file == default_file for issue in catalog_issues):
        report.catalog_issues.append(
            ContentIssue("error", default_file, None, None, f"BRAND_DEFAULT={default} has no catalog file")
        )
    for brand in report.brands:
        report.catalog_issues += catalog_rule_issues(catalog, brand, today, max_age_days)
    folder = settings.knowledge_path.name
    for brand in sorted(set(report.brands) | set(brand_folders(settings.knowledge_path))):
        documents, issues = read_brand_documents(settings.knowledge_path, brand)
        report.documents += len(documents)
        report.knowledge_issues += issues
        if brand in report.brands:
            report.knowledge_issues += document_rule_issues(catalog, brand, documents, today, max_age_days, folder)
    return report


def _term_issues(guard: RulesGuard, file: str, item: str | None, where: str, texts: Iterable[str]) -> list[ContentIssue]:
    issues = []
    for text in texts:
        for hit in guard.violations(text):
            issues.append(ContentIssue("error", file, item, where, f"names a term the brand rules forbid: {hit}"))
    return issues


def _age_issue(file: str, item: str | None, checked_at: date | None, today: date, max_age_days: int) -> list[ContentIssue]:
    if checked_at is None:
        return [ContentIssue("warning", file, item, "checked_at", "no checked_at: when were these facts last checked?")]
    age = (today - checked_at).days
    if age > max_age_days:
        return [ContentIssue("warning", file, item, "checked_at", f"checked {age} days ago (more than {max_age_days}); re-check the facts")]
    return []


def _program_texts(program: Program, catalog: Catalog, brand: str, today: date) -> list[str]:
    sites = {site.id: site for site in catalog.brand(brand).brand.sites}
    return [
        program.title,
        program.schedule or "",
        program.lesson or "",
        price_text(program, today),
        *program.includes,
        *program.usp,
        *(sites[site_id].name for site_id in program.sites if site_id in sites),
        *(session.name for session in program.sessions),
    ]


def catalog_rule_issues(catalog: Catalog, brand: str, today: date, max_age_days: int) -> list[ContentIssue]:
    """The brand's cards against its rules file, and the age of each card's facts."""
    guard = catalog.guard(brand)
    info = catalog.brand(brand).brand
    file = f"{brand}.yaml"
    issues = _term_issues(guard, file, None, "brand", [*info.facts, info.manager_contact, *(site.name for site in info.sites)])
    for program in catalog.brand(brand).programs:
        issues += _term_issues(guard, file, program.id, "card", _program_texts(program, catalog, brand, today))
        issues += _age_issue(file, program.id, program.checked_at, today, max_age_days)
    return issues


def document_rule_issues(
    catalog: Catalog, brand: str, documents: list[KnowledgeDocument], today: date, max_age_days: int, folder: str
) -> list[ContentIssue]:
    """Each document against the brand rules, its age, and its ₽ amounts against the catalog: an amount
    that no card and no price list (the brand facts) states is how a withdrawn price survives."""
    guard = catalog.guard(brand)
    priced = catalog.known_amounts(brand)
    issues = []
    for doc in documents:
        file = f"{folder}/{brand}/{doc.path.name}"
        issues += _term_issues(guard, file, doc.slug, "text", [doc.title, doc.body])
        issues += _age_issue(file, doc.slug, doc.checked_at, today, max_age_days)
        for amount in sorted(rub_amounts(doc.body) - priced - doc.non_price_amounts):
            shown = f"{amount:,}".replace(",", " ")
            issues.append(ContentIssue(
                "error", file, doc.slug, "amounts",
                f"{shown} ₽ is in no card and no price list of the catalog (a stale price? if it is not a price, "
                "list it under non_price_amounts with the reason)",
            ))
    return issues
