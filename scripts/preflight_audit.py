#!/usr/bin/env python3
"""Run the start-up preflight checks and print them as a table.

Exit 0 when STARTUP_PREFLIGHT_MODE lets the service start (off: always; fail: no critical finding;
strict: no warning either), 1 otherwise, 2 on a configuration error. `--mode` overrides the setting.
"""

from __future__ import annotations

import asyncio

import _bootstrap  # noqa: F401
import typer
from rich.console import Console
from rich.table import Table

from adapters.preflight import Level, Report, run_preflight
from adapters.wiring import build_runtime
from agent.settings import ConfigError, PreflightMode, load_settings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
STYLE = {Level.ok: "green", Level.warning: "yellow", Level.critical: "bold red"}


async def _audit(mode: PreflightMode | None) -> Report:
    overrides = {"startup_preflight_mode": mode} if mode else {}
    settings = load_settings(**overrides)
    runtime = build_runtime(settings)
    try:
        return await run_preflight(runtime.preflight_inputs)
    finally:
        await runtime.close()


@app.command()
def main(
    mode: PreflightMode | None = typer.Option(None, help="Override STARTUP_PREFLIGHT_MODE for this run."),
) -> None:
    console = Console()
    try:
        report = asyncio.run(_audit(mode))
    except ConfigError as error:
        console.print(f"[bold red]Configuration error:[/] {error}")
        raise typer.Exit(2) from None
    table = Table(title=f"Preflight (mode: {report.mode.value})")
    table.add_column("check")
    table.add_column("level")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(check.name, f"[{STYLE[check.level]}]{check.level.value}[/]", check.detail)
    console.print(table)
    verdict = "FAIL: start-up would be blocked" if report.blocking else "PASS: start-up allowed"
    console.print(f"{verdict} ({len(report.criticals)} critical, {len(report.warnings)} warning)")
    raise typer.Exit(1 if report.blocking else 0)


if __name__ == "__main__":
    app()
