"""Process entry point: `python -m adapters.main serve|migrate` (start.sh and `make run` call it)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

import typer
import uvicorn
from uvicorn.loops.auto import auto_loop_factory

from agent.settings import ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
log = logging.getLogger("sales_agent")


def _settings() -> Settings:
    from agent.logging_setup import configure_logging

    try:
        settings = load_settings()
    except ConfigError as error:
        # One clear line naming the variable, then stop: better than a half-configured service.
        typer.echo(f"Configuration error: {error}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.secret_values())
    return settings


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default: HOST or 0.0.0.0)."),
    port: int | None = typer.Option(None, help="Port (default: PORT or 8000)."),
    bot: bool | None = typer.Option(
        None,
        "--bot/--no-bot",
        help="Also run the Telegram polling bot (default: when TELEGRAM_BOT_TOKEN is set and TELEGRAM_MODE=polling).",
    ),
) -> None:
    """Serve the HTTP API (and, in polling mode, the Telegram bot in the same process)."""
    _pause_collector_until_started()
    from adapters.http.app import create_app

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    run_bot = bot if bot is not None else settings.telegram_bot_token is not None and settings.telegram_mode == "polling"
    log.info("Starting API on %s:%s...", host, port)
    if settings.web_concurrency > 1:
        # The supervisor handles SIGTERM/SIGINT itself (stops and joins every worker); a no-op
        # handler installed here first would swallow a signal that came before it took over.
        gc.enable()  # the supervisor runs no lifespan (each worker pauses and resumes its own)
        _serve_workers(settings, host, port, run_bot)
        return
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a no-op handler turns that
    # re-raise into a normal exit, so Docker and Render see a clean stop (exit 0), not a kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    config = server_config(create_app(settings, run_bot=run_bot, defer_sdks=True), host, port, settings)
    if not run_server(uvicorn.Server(config)):
        sys.exit(1)


def worker_app() -> object:
    """One of WEB_CONCURRENCY worker processes: the API (and the webhook and its queue workers)."""
    _pause_collector_until_started()
    from adapters.http.app import create_app

    _stop_with_supervisor()
    settings = _settings()
    server_limits(settings)  # this worker's protocol class (a spawned process starts from the defaults)
    return create_app(settings, run_bot=False, defer_sdks=True)


def _pause_collector_until_started() -> None:
    """No cyclic garbage collection while the service starts: importing and building it allocates a
    lot and frees little, and the collector's passes over the growing heap were ~10 % of the imports
    (bench/startup.py). The lifespan turns it back on once start-up is built
    (adapters.wiring.settle_startup_heap, which also freezes what start-up built)."""
    gc.disable()


def _stop_with_supervisor() -> None:
    """A worker gets SIGTERM (a graceful stop) when its supervisor dies, however it dies: a
    supervisor killed with SIGKILL (OOM killer, `docker kill`, a crash) would otherwise leave its
    workers serving on the port with nobody to stop them. Linux only (prctl); elsewhere a no-op."""
    import ctypes
    import multiprocessing
    import os

    parent = multiprocessing.parent_process()  # the supervisor's pid, even if it is already gone
    supervisor = parent.pid if parent is not None else os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != supervisor:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _serve_workers(settings: Settings, host: str, port: int, run_bot: bool) -> None:
    """WEB_CONCURRENCY=N: uvicorn's supervisor binds the port and runs N worker processes, each with
    its own event loop, sharing the database (and Redis for the limits); it restarts a worker that dies."""
    from uvicorn.supervisors import Multiprocess

    if run_bot:
        typer.echo(
            "Configuration error: WEB_CONCURRENCY > 1 cannot run the polling bot (one poller per token): "
            "use TELEGRAM_MODE=webhook, or serve --no-bot and run `python -m adapters.main bot` once beside it",
            err=True,
        )
        raise typer.Exit(2)
    config = server_config(
        "adapters.main:worker_app", host, port, settings, factory=True, workers=settings.web_concurrency
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def server_config(app: object, host: str, port: int, settings: Settings | None = None, **extra: object) -> uvicorn.Config:
    """uvicorn's settings for the service (benchmarks serve their variants with the same), with the
    connection limits of SERVER_* (adapters/http/server_limits.py)."""
    settings = settings or Settings(_env_file=None)
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        **extra,  # type: ignore[arg-type]
        http=server_limits(settings),
        h11_max_incomplete_event_size=settings.server_max_header_bytes,  # the same head limit if h11 is chosen
        timeout_keep_alive=int(settings.server_keep_alive_seconds),
        limit_concurrency=settings.server_limit_concurrency,
        log_config=None,  # keep our formatter and redaction
        access_log=False,  # written by adapters/http/access_log.py for a tenth of the cost
        proxy_headers=False,  # X-Forwarded-For is trusted only through TRUSTED_PROXY_IPS
        timeout_graceful_shutdown=20,
    )


def server_limits(settings: Settings) -> type:
    from adapters.http.server_limits import ServerLimits, use_limits

    return use_limits(ServerLimits(
        max_head_bytes=settings.server_max_header_bytes,
        max_headers=settings.server_max_headers,
        head_timeout=settings.server_header_timeout_seconds,
        body_timeout=settings.server_body_timeout_seconds,
    ))


def run_server(server: uvicorn.Server) -> bool:
    """Serve until stopped, on the event loop uvicorn picks for its settings (uvloop when installed),
    as ``uvicorn.run`` and the WEB_CONCURRENCY workers do: a plain ``asyncio.run`` gets the pure-Python
    loop, which cost every endpoint a sixth of its requests/s (bench/http_hot_paths.py). False when
    the application's start-up failed."""
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        return runner.run(_serve(server))


async def _serve(server: uvicorn.Server) -> bool:
    await server.serve()
    # uvicorn reports a failed lifespan start-up (e.g. blocking preflight) only through `started`.
    return server.started


@app.command()
def bot() -> None:
    """Run the Telegram bot without the HTTP API (the compose file's `bot` service)."""
    settings = _settings()
    if settings.telegram_bot_token is None:
        typer.echo("TELEGRAM_BOT_TOKEN is not set: there is no bot to run.", err=True)
        raise typer.Exit(2)
    # The event loop `serve` runs on (uvloop when installed), not asyncio.run's pure-Python one.
    with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        runner.run(_run_bot(settings))


async def _run_bot(settings: Settings) -> None:
    from adapters.http.app import start_runtime
    from adapters.wiring import build_runtime

    runtime = build_runtime(settings, run_bot=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await start_runtime(runtime)
        await stop.wait()
        log.info("stopping the bot")
    finally:
        await runtime.close()


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    from adapters.storage.database import database_url_for
    from adapters.storage.migrate import upgrade
    from agent.paths import resolve_data_paths

    settings = _settings()
    paths = resolve_data_paths(settings)
    url = database_url_for(settings, paths)
    upgrade(url)
    log.info("database migrated (%s)", "sqlite" if url.startswith("sqlite") else "postgresql")


if __name__ == "__main__":
    app()
