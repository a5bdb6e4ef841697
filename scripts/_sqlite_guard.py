"""Shared refusal for the SQLite scripts when the service runs on PostgreSQL."""

from __future__ import annotations

import _bootstrap  # noqa: F401
import typer

from agent.settings import ConfigError, load_settings

PG_MESSAGE = (
    "DATABASE_URL points to PostgreSQL: back it up with pg_dump / restore with pg_restore "
    "(e.g. `pg_dump --format=custom \"$DATABASE_URL\" > backup.dump`); this script handles SQLite only."
)


def refuse_postgres() -> None:
    try:
        settings = load_settings()
    except ConfigError as error:
        typer.echo(f"Configuration error: {error}", err=True)
        raise typer.Exit(2) from None
    if settings.database_url is not None and not settings.database_url.get_secret_value().startswith("sqlite"):
        typer.echo(f"FAIL: {PG_MESSAGE}", err=True)
        raise typer.Exit(2)
