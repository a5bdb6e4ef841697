#!/usr/bin/env python3
"""Check every brand's catalog (catalog/<brand>.yaml) and knowledge documents (knowledge/<brand>/*.md).

Errors: schema errors (with file, program id and field; a price without its period is one), duplicate
program ids, a url off the brand's domain, grade_min > grade_max, a session ending before it starts, a
program at a site that does not serve its grades or format, a broken brand rules file, BRAND_DEFAULT
without a catalog, knowledge documents without title or source, a card or document naming a term the
brand rules forbid (sister brand, obsolete address or platform, internal fact, withdrawn price), a ₽
amount in a document that no card and no price list states. Warnings: programs whose sessions have all
started, content whose checked_at is older than --max-age-days, a brand without knowledge documents or
without a rules file. Exit 0 when clean (warnings allowed), 1 on errors (or warnings with --strict), 2 on
a configuration error. The start-up preflight runs the same checks.
"""

from __future__ import annotations

import _bootstrap  # noqa: F401
import typer
from rich.console import Console

from adapters.content_check import DEFAULT_MAX_AGE_DAYS, check_content
from agent.catalog import school_today
from agent.settings import ConfigError, load_settings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    catalog_dir: str | None = typer.Option(None, help="Override CATALOG_DIR."),
    knowledge_dir: str | None = typer.Option(None, help="Override KNOWLEDGE_DIR."),
    max_age_days: int = typer.Option(
        DEFAULT_MAX_AGE_DAYS, "--max-age-days", min=1, help="Warn about content whose checked_at is older than this."
    ),
) -> None:
    console = Console(highlight=False, soft_wrap=True)
    overrides = {k: v for k, v in {"catalog_dir": catalog_dir, "knowledge_dir": knowledge_dir}.items() if v}
    try:
        settings = load_settings(**overrides)
    except ConfigError as error:
        console.print(f"[bold red]Configuration error:[/] {error}")
        raise typer.Exit(2) from None
    report = check_content(settings, school_today(), max_age_days=max_age_days)
    for issue in report.issues:
        style = "bold red" if issue.level == "error" else "yellow"
        console.print(f"[{style}]{issue.level.upper()}[/] {issue.where}: {issue.message}")
    failed = bool(report.errors) or (strict and bool(report.warnings))
    summary = (
        f"{len(report.brands)} brand(s), {report.programs} programs, {report.documents} knowledge documents: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    console.print(f"{'FAIL' if failed else 'OK'}: {summary}" + (" (--strict)" if strict else ""))
    raise typer.Exit(1 if failed else 0)


if __name__ == "__main__":
    app()
