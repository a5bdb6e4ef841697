"""The service in a child process, for the crash and scale-out tests.

``python -m tests.telegram.service_proc serve --port N`` (API + webhook + workers) or ``... bot``
(polling + workers), configured from the environment like production, with the scripted assistant.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvicorn

from adapters.http.app import create_app, start_runtime
from adapters.wiring import Runtime, build_runtime
from agent.logging_setup import configure_logging
from agent.settings import load_settings
from tests.fakes.assistant import ScriptedAssistant


def _runtime(run_bot: bool) -> Runtime:
    settings = load_settings()
    configure_logging(settings.log_level, settings.secret_values())
    runtime = build_runtime(settings, run_bot=run_bot)
    runtime.assistant = ScriptedAssistant(runtime)  # type: ignore[attr-defined]
    return runtime


async def _bot() -> None:
    runtime = _runtime(run_bot=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await start_runtime(runtime)
        await stop.wait()
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["serve", "bot"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role == "bot":
        asyncio.run(_bot())
        return
    runtime = _runtime(run_bot=False)
    app = create_app(runtime.settings, runtime=runtime)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None)


if __name__ == "__main__":
    main()
