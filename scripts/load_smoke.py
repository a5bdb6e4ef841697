#!/usr/bin/env python3
"""Bounded load smoke against a running service (at most 10 000 requests).

Prints requests/s, p50/p95/p99, status counts and the error rate (429s are counted separately);
exits 1 when the error rate exceeds --max-error-rate or p95 exceeds --max-p95-ms, 2 on bad arguments.
"""

from __future__ import annotations

import asyncio

import _bootstrap  # noqa: F401
import typer
from rich.console import Console
from rich.table import Table

from adapters.ops.load import MAX_REQUESTS, TARGETS, run_load

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command()
def main(
    base_url: str = typer.Option(..., "--base-url", help="e.g. http://127.0.0.1:8000"),
    target: str = typer.Option("health", "--target", help="health | catalog | assistant"),
    requests: int = typer.Option(60, "--requests", min=1, max=MAX_REQUESTS),
    concurrency: int = typer.Option(10, "--concurrency", min=1, max=200),
    assistant_token: str | None = typer.Option(None, "--assistant-token", help="ASSISTANT_API_TOKEN for --target assistant"),
    brand: str = typer.Option("kmipt", "--brand"),
    max_error_rate: float = typer.Option(0.01, "--max-error-rate", min=0.0, max=1.0),
    max_p95_ms: float | None = typer.Option(None, "--max-p95-ms", min=0.001),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1),
) -> None:
    if target not in TARGETS:
        typer.echo(f"--target must be one of: {', '.join(TARGETS)}", err=True)
        raise typer.Exit(2)
    result = asyncio.run(
        run_load(base_url.rstrip("/"), target, requests, concurrency, token=assistant_token, brand=brand, timeout=timeout)
    )
    table = Table(title=f"load_smoke {target}: {requests} requests, concurrency {concurrency}")
    for column in ("requests/s", "p50 ms", "p95 ms", "p99 ms", "errors", "error rate", "429"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{result.requests_per_second:.1f}", f"{result.percentile(50):.1f}", f"{result.percentile(95):.1f}",
        f"{result.percentile(99):.1f}", str(result.errors), f"{result.error_rate:.2%}", str(result.rate_limited),
    )
    console = Console()
    console.print(table)
    console.print("statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(result.statuses.items())))
    failures = []
    if result.error_rate > max_error_rate:
        failures.append(f"error rate {result.error_rate:.2%} > {max_error_rate:.2%}")
    if max_p95_ms is not None and result.percentile(95) > max_p95_ms:
        failures.append(f"p95 {result.percentile(95):.1f} ms > {max_p95_ms} ms")
    console.print("FAIL: " + "; ".join(failures) if failures else "PASS")
    raise typer.Exit(1 if failures else 0)


if __name__ == "__main__":
    app()
