"""Validation of the brand content (catalogs and knowledge documents): scripts/validate_catalog.py and
the start-up preflight run this same code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from adapters.knowledge.documents import brand_folders, read_brand_documents
from agent.catalog import ContentIssue, read_catalog
from agent.settings import Settings


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


def check_content(settings: Settings, today: date) -> ContentReport:
    catalog, catalog_issues = read_catalog(settings.catalog_path, today=today)
    report = ContentReport(catalog_issues=catalog_issues, brands=catalog.brand_ids())
    report.programs = sum(len(catalog.brand(brand).programs) for brand in report.brands)
    default = settings.brand_default
    default_file = f"{default}.yaml"
    if default not in report.brands and not any(issue.file == default_file for issue in catalog_issues):
        report.catalog_issues.append(
            ContentIssue("error", default_file, None, None, f"BRAND_DEFAULT={default} has no catalog file")
        )
    for brand in sorted(set(report.brands) | set(brand_folders(settings.knowledge_path))):
        documents, issues = read_brand_documents(settings.knowledge_path, brand)
        report.documents += len(documents)
        report.knowledge_issues += issues
    return report
