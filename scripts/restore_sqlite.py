#!/usr/bin/env python3
"""Restore a backup made by backup_sqlite.py. Verifies the backup first, refuses to overwrite an
existing database without --force, keeps the previous one as <db>.before-restore-<timestamp>,
drops its stale -wal/-shm files and swaps the new file in atomically. Stop the service first.
Exit 0 on PASS, 1 on FAIL, 2 when the service runs on PostgreSQL (use pg_restore)."""

from __future__ import annotations

from pathlib import Path

import _bootstrap  # noqa: F401
import typer
from _sqlite_guard import refuse_postgres

from adapters.storage.sqlite_backup import BackupError, restore

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command()
def main(
    backup_path: Path = typer.Option(..., "--backup-path", help="A .db.gz made by backup_sqlite.py."),
    db_path: Path = typer.Option(..., "--db-path", help="Where the database should be."),
    force: bool = typer.Option(False, "--force", help="Replace an existing database (kept aside)."),
) -> None:
    refuse_postgres()
    try:
        result = restore(backup_path, db_path, force=force)
    except BackupError as error:
        typer.echo(f"FAIL: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"PASS: restored {result.db_path} from {backup_path.name} (integrity_check ok)")
    if result.previous:
        typer.echo(f"previous database kept as {result.previous}")


if __name__ == "__main__":
    app()
