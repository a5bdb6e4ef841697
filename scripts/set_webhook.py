#!/usr/bin/env python3
"""Point Telegram at this service's webhook (the runbook's `curl .../setWebhook -d url=... -d secret_token=...`).

Reads TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_PATH and TELEGRAM_WEBHOOK_SECRET like the service. Without a
configured secret it generates one, sets it with the webhook and prints the line to add to the service's
environment (TELEGRAM_WEBHOOK_SECRET=...): Telegram then sends it in X-Telegram-Bot-Api-Secret-Token
and the service refuses every update without it. Until the service is redeployed with it, forged updates
are still accepted, so do that right away. Exit 0 only when Telegram accepted the webhook.
"""

from __future__ import annotations

import secrets

import _bootstrap  # noqa: F401
import httpx
import typer
from rich.console import Console
from rich.table import Table

from agent.settings import ConfigError, load_settings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)
# Telegram's secret_token: 1–256 characters of A-Za-z0-9_- (token_urlsafe uses exactly those).
SECRET_BYTES = 48


@app.command()
def main(
    base_url: str = typer.Option(..., "--base-url", help="The service's public https origin, e.g. https://<your-render-domain>"),
    drop_pending_updates: bool = typer.Option(False, "--drop-pending-updates"),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds for the Bot API call."),
) -> None:
    try:
        settings = load_settings()
    except ConfigError as error:
        typer.echo(f"Configuration error: {error}", err=True)
        raise typer.Exit(2) from None
    if settings.telegram_bot_token is None:
        typer.echo("Configuration error: TELEGRAM_BOT_TOKEN is not set", err=True)
        raise typer.Exit(2)
    if not base_url.startswith("https://"):
        typer.echo("Configuration error: --base-url must be https:// (Telegram delivers webhooks over TLS only)", err=True)
        raise typer.Exit(2)
    configured = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
    secret = configured or secrets.token_urlsafe(SECRET_BYTES)
    url = base_url.rstrip("/") + settings.telegram_webhook_path
    data = {"url": url, "secret_token": secret}
    if drop_pending_updates:
        data["drop_pending_updates"] = "true"
    endpoint = f"{settings.telegram_api_base_url.rstrip('/')}/bot{settings.telegram_bot_token.get_secret_value()}/setWebhook"
    try:
        answer = httpx.post(endpoint, data=data, timeout=timeout).json()
    except (httpx.HTTPError, ValueError) as error:
        answer = {"ok": False, "description": f"request failed: {type(error).__name__}"}  # the URL holds the token
    ok = bool(answer.get("ok"))

    table = Table(title="setWebhook")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    table.add_row("webhook_url", "[green]PASS[/]" if ok else "[bold red]FAIL[/]", url)
    table.add_row("secret", "[green]PASS[/]", "TELEGRAM_WEBHOOK_SECRET (configured)" if configured else "generated: see below")
    table.add_row("telegram", "[green]PASS[/]" if ok else "[bold red]FAIL[/]", str(answer.get("description") or answer.get("result")))
    console = Console()
    console.print(table)
    if ok and not configured:
        console.print("Add to the service's environment and redeploy now (updates are unauthenticated until then):")
        console.print(f"TELEGRAM_WEBHOOK_SECRET={secret}", markup=False, highlight=False, soft_wrap=True)
    console.print("PASS: webhook set" if ok else f"FAIL: Telegram refused setWebhook: {answer.get('description')}")
    raise typer.Exit(0 if ok else 1)


if __name__ == "__main__":
    app()
