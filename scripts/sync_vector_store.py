#!/usr/bin/env python3
"""Upload changed knowledge documents to the OpenAI vector store and remove deleted ones.

    python3 scripts/sync_vector_store.py --dry-run   # list what would change; calls nothing
    python3 scripts/sync_vector_store.py             # sync, then print OPENAI_VECTOR_STORE_ID=vs_...

Uses OPENAI_VECTOR_STORE_ID, else the id in VECTOR_STORE_META_PATH, else creates a store. Writes the
metadata file (store id, file hashes) and prints the line to copy into the environment: on Render the
metadata file must not be the only place the id lives. Exit 0 on success, 1 when the API fails, 2
without OPENAI_API_KEY (except --dry-run) or on a configuration error.
"""

from __future__ import annotations

import asyncio

import _bootstrap  # noqa: F401
import typer
from openai import OpenAIError
from rich.console import Console

from adapters.knowledge.backend import openai_client
from adapters.knowledge.sync import SyncPlan, dry_run_plan, sync_vector_store
from agent.paths import resolve_data_paths
from agent.settings import ConfigError, load_settings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _print_plan(console: Console, plan: SyncPlan) -> None:
    for file in plan.upload:
        console.print(f"  upload  {file.key}")
    for file in plan.remove:
        console.print(f"  remove  {file.key} ({file.file_id})")
    console.print(f"{len(plan.upload)} to upload, {len(plan.remove)} to remove, {len(plan.unchanged)} unchanged")


@app.command()
def main(dry_run: bool = typer.Option(False, "--dry-run", help="List the changes without calling the API.")) -> None:
    console = Console(highlight=False, soft_wrap=True)
    try:
        settings = load_settings()
    except ConfigError as error:
        console.print(f"[bold red]Configuration error:[/] {error}")
        raise typer.Exit(2) from None
    meta_path = resolve_data_paths(settings).vector_store_meta_path
    if dry_run:
        plan, store_id = dry_run_plan(settings.knowledge_path, meta_path, settings.openai_vector_store_id)
        console.print(f"Dry run against {store_id or 'a new vector store'} (metadata: {meta_path}); nothing is called.")
        _print_plan(console, plan)
        raise typer.Exit(0)
    if not settings.llm_configured:
        console.print("[bold red]OPENAI_API_KEY is not set:[/] the sync needs it (try --dry-run to see the changes).")
        raise typer.Exit(2)
    try:
        result = asyncio.run(
            sync_vector_store(
                openai_client(settings),
                settings.knowledge_path,
                meta_path,
                settings.openai_vector_store_id,
                progress=console.print,
            )
        )
    except (OpenAIError, RuntimeError, TimeoutError) as error:
        console.print(f"[bold red]Sync failed:[/] {type(error).__name__}: {error}")
        raise typer.Exit(1) from None
    _print_plan(console, result.plan)
    console.print(f"Metadata written to {meta_path}. Copy this line into the environment:")
    print(f"OPENAI_VECTOR_STORE_ID={result.vector_store_id}")


if __name__ == "__main__":
    app()
