"""`python -m evals run` replays the recorded dialogs; `python -m evals capture <id>` turns a stored
conversation into a new eval file. See README "Evals"."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import typer
from rich.console import Console

from agent.settings import ConfigError, Settings, load_settings
from evals.cases import DIALOGS_DIR, TAGS, load_cases
from evals.report import REPORTS_DIR, print_report, write_report
from evals.runner import CaseResult, Mode, Runner
from evals.suite import run_suite

app = typer.Typer(add_completion=False, help="Evals: recorded dialogs replayed through the assistant.")
# Piped output gets a wide table instead of Rich's default 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


def _mode(offline: bool, live: bool, record: bool, repeat: int) -> Mode:
    if offline and (live or record):
        raise typer.BadParameter("--offline cannot be combined with --live or --record")
    if repeat < 1:
        raise typer.BadParameter("--repeat must be at least 1")
    if repeat > 1 and not live:
        raise typer.BadParameter("--repeat needs --live: a replay gives the same answer every time")
    if record:
        return Mode.record
    if live:
        return Mode.live
    return Mode.offline if offline else Mode.replay


@app.command()
def run(
    case: list[str] = typer.Option(None, "--case", help="run only this case id or file stem (repeatable)"),
    tag: list[str] = typer.Option(None, "--tag", help=f"run only cases with this tag ({', '.join(TAGS)})"),
    offline: bool = typer.Option(False, "--offline", help="run every case on the offline policy (no model)"),
    live: bool = typer.Option(False, "--live", help="score runs against the live model (OPENAI_API_KEY)"),
    record: bool = typer.Option(False, "--record", help="run live and rewrite each model case's cassette"),
    repeat: int = typer.Option(1, "--repeat", help="live runs per case: reports pass rate and flip rate"),
    dialogs: Path = typer.Option(DIALOGS_DIR, help="folder of dialog files"),
    report_dir: Path = typer.Option(REPORTS_DIR, help="where the JSON and Markdown reports go"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show the service's warnings"),
) -> None:
    """Replay (default), score live (--live) or re-record (--record) the dialogs. Exit 1 unless all pass."""
    mode = _mode(offline, live, record, repeat)
    level = logging.WARNING if verbose else logging.CRITICAL
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:  # some libraries set their own loggers to DEBUG
        handler.setLevel(level)
    settings = _settings()
    if mode in (Mode.live, Mode.record) and not settings.llm_configured:
        console.print("[red]--live and --record need OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server).[/red]")
        raise typer.Exit(2)
    files = load_cases(dialogs, only=case or None, tags=tag or None)
    if not files:
        console.print("[red]no dialogs match[/red]")
        raise typer.Exit(2)

    def progress(result: CaseResult) -> None:
        console.print(f"[dim]{result.id}: {result.status.value}[/dim]")

    report = asyncio.run(run_suite(files, Runner(base=settings, mode=mode), repeat=repeat, on_result=progress))
    print_report(report, console)
    json_path, md_path = write_report(report, report_dir)
    console.print(f"reports: {json_path} · {md_path}")
    if mode is Mode.record:
        console.print("cassettes rewritten: review them with `git diff evals/dialogs`")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def quality(
    offline: bool = typer.Option(False, "--offline", help="the offline policy answers (the default)"),
    live: bool = typer.Option(False, "--live", help="the live model answers (OPENAI_API_KEY)"),
    show: int = typer.Option(60, help="how many failures to print"),
    min_good: float = typer.Option(0.85, help="exit 1 below this share of good replies"),
) -> None:
    """Run the labelled answer-quality set (evals/quality/) through the real assistant: the share of good
    replies by category, the failures with the reply, the hard-gate violations. Exit 1 when a hard gate
    is broken or the share is under --min-good."""
    from evals.quality import print_quality, run_quality

    if offline and live:
        raise typer.BadParameter("--offline and --live exclude each other")
    logging.basicConfig(level=logging.CRITICAL)
    settings = _settings()
    if live and not settings.llm_configured:
        console.print("[red]--live needs OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server).[/red]")
        raise typer.Exit(2)
    report = asyncio.run(run_quality(settings, settings.project_path("."), live=live))
    print_quality(report, console, show=show)
    raise typer.Exit(0 if report.gate_count == 0 and report.good_share >= min_good else 1)


@app.command()
def reseal(
    case: list[str] = typer.Option(None, "--case", help="reseal only this case id or file stem (repeatable)"),
    dialogs: Path = typer.Option(DIALOGS_DIR, help="folder of dialog files"),
) -> None:
    """Re-record hand-authored cassettes: their bodies (or `author:` stubs) are served in order by a
    scripted upstream and the cassette is rewritten with the current requests' fingerprints."""
    from pydantic import SecretStr

    from evals.authoring import ScriptedUpstream
    from evals.cases import write_cassette

    logging.basicConfig(level=logging.CRITICAL)
    settings = _settings().model_copy(update={"openai_api_key": SecretStr("sk-authored-cassette"), "openai_base_url": None})
    files = [f for f in load_cases(dialogs, only=case or None) if f.case.mode == "model"]
    failed = 0

    async def one(case_file) -> None:  # type: ignore[no-untyped-def]
        nonlocal failed
        upstream = ScriptedUpstream(case_file.case.id, case_file.case.cassette)
        result = await Runner(base=settings, mode=Mode.record, upstream=upstream).run(case_file)
        unused = f", {upstream.unused} authored responses unused" if upstream.unused else ""
        ok = result.status.value == "PASS" and not upstream.unused
        failed += not ok
        if result.error is None:
            write_cassette(case_file.path, result.recorded)
        console.print(f"{case_file.case.id}: {result.status.value}{unused} {result.error or ''}")
        for check in result.checks:
            if not check.passed:
                console.print(f"  [red]turn {check.turn}: {check.name} — {check.detail}[/red]")

    async def all_cases() -> None:
        for case_file in files:
            await one(case_file)

    asyncio.run(all_cases())
    raise typer.Exit(1 if failed else 0)


@app.command()
def capture(
    conversation_id: int = typer.Argument(..., help="id of a stored conversation (database from the settings)"),
    output: Path | None = typer.Option(None, help="file to write (default evals/dialogs/captured-<id>.yaml)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
) -> None:
    """Turn a stored conversation into a new eval file, with phones, e-mails and names masked."""
    from evals.capture import CaptureError, capture_conversation

    target = output or DIALOGS_DIR / f"captured-{conversation_id}.yaml"
    if target.exists() and not force:
        console.print(f"[red]{target} exists; use --force to overwrite[/red]")
        raise typer.Exit(2)
    try:
        text = asyncio.run(capture_conversation(_settings(), conversation_id))
    except CaptureError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(f"written {target}: tighten its expectations, then record its cassette with --record")


if __name__ == "__main__":
    app()
