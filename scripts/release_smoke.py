#!/usr/bin/env python3
"""Post-deploy smoke: /api/health, /, /app, /api/runtime/diagnostics and a catalog search.

--strict-runtime fails on any diagnostics warning; --require-render-persistent fails unless the
service runs on Render with its data on the persistent disk; --require-webhook-mode fails unless
telegram_mode is webhook and, when TELEGRAM_BOT_TOKEN is set in this environment, getWebhookInfo
shows our URL with no pending error. Exit 0 only when every check passes.
"""

from __future__ import annotations

import asyncio

import _bootstrap  # noqa: F401
import typer
from rich.console import Console
from rich.table import Table

from adapters.ops.release_checks import Options, run_checks
from agent.settings import ConfigError, load_settings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command()
def main(
    base_url: str = typer.Option(..., "--base-url", help="e.g. https://<your-render-domain>"),
    strict_runtime: bool = typer.Option(False, "--strict-runtime"),
    require_render_persistent: bool = typer.Option(False, "--require-render-persistent"),
    require_webhook_mode: bool = typer.Option(False, "--require-webhook-mode"),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds per request."),
) -> None:
    token, api_base, webhook_path = None, "https://api.telegram.org", "/telegram/webhook"
    if require_webhook_mode:
        try:
            settings = load_settings()
        except ConfigError as error:
            typer.echo(f"Configuration error: {error}", err=True)
            raise typer.Exit(2) from None
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else None
        api_base = settings.telegram_api_base_url
        webhook_path = settings.telegram_webhook_path
    options = Options(strict_runtime, require_render_persistent, require_webhook_mode, token, api_base, webhook_path)
    results = asyncio.run(run_checks(base_url.rstrip("/"), options, timeout=timeout))
    table = Table(title=f"release smoke: {base_url}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for result in results:
        table.add_row(result.name, "[green]PASS[/]" if result.passed else "[bold red]FAIL[/]", result.detail)
    console = Console()
    console.print(table)
    failed = [r.name for r in results if not r.passed]
    console.print(f"FAIL: {', '.join(failed)}" if failed else f"PASS: {len(results)} checks")
    raise typer.Exit(1 if failed else 0)


if __name__ == "__main__":
    app()
