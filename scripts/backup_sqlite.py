#!/usr/bin/env python3
"""Consistent online backup of the SQLite database: backup API copy, integrity_check, gzip,
`<prefix>-<UTC timestamp>.db.gz`, then prune to the newest --keep-last. Exit 0 on PASS, 1 on FAIL,
2 when the service runs on PostgreSQL (use pg_dump)."""

from __future__ import annotations

from pathlib import Path

import _bootstrap  # noqa: F401
import typer
from _sqlite_guard import refuse_postgres

from adapters.storage.sqlite_backup import BackupError, backup

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command()
def main(
    db_path: Path = typer.Option(..., "--db-path", help="The live SQLite file, e.g. /var/data/sales_agent.db."),
    output_dir: Path = typer.Option(..., "--output-dir", help="Folder for the .db.gz files."),
    prefix: str = typer.Option("sales-agent", "--prefix", help="File name prefix."),
    keep_last: int = typer.Option(30, "--keep-last", min=1, help="How many newest backups to keep."),
) -> None:
    refuse_postgres()
    try:
        result = backup(db_path, output_dir, prefix, keep_last)
    except BackupError as error:
        typer.echo(f"FAIL: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"PASS: {result.path} ({result.size_bytes} bytes, integrity_check ok)")
    for path in result.pruned:
        typer.echo(f"pruned {path.name}")


if __name__ == "__main__":
    app()
