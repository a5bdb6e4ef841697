#!/usr/bin/env python3
"""Requests/s of the service's HTTP hot paths as ratios to a bare FastAPI app, measured with wrk.

    python bench/http_hot_paths.py [--rounds 3] [--seconds 5] [--connections 32] [--only catalog,health]

Both run under uvicorn on 127.0.0.1 in their own processes, hit by wrk (Debian package `wrk`,
one thread, ``--connections`` keep-alive connections, ``--seconds`` per measurement):

- bare: a FastAPI app with one GET and one POST route returning {"ok": true}, under
  ``uvicorn.run(..., access_log=False)``: the framework's ceiling on this machine;
- service: ``python -m adapters.main serve`` (production's entry point and uvicorn settings) in webhook
  mode with a fake bot token, a fake Bot API on 127.0.0.1, SQLite in a temporary data root and the
  default LOG_LEVEL (INFO: access log on).
- webhook ingest: the same app, settings and uvicorn settings (``adapters.main.server_config``), with
  the queue's workers answering every update at once (bench/telegram_queue.py's instant agent), so the
  figure is the ingest's and not the assistant's: a real turn costs milliseconds of the same CPU.

Each measurement loads the bare app and the service at the same time (one wrk each), so both see the
same machine load (the machine is shared, and one after the other the two runs saw loads different
enough to swing a ratio 10x); each server gets at most one core of the two. The ratio of each pair is printed, and per endpoint the median and the spread of
the ratios over the rounds. The webhook rounds post unique updates to a fresh service process each
round (its backlog is thrown away with it, so no round pays for an earlier round's processing).
Two webhook figures: ``webhook`` posts a new update every request, so the queue's workers process
updates during the burst (rationed to 80/s) on the same core; ``webhook-dup`` posts one update again
and again: the same ingest path (parse, check, commit through the group commit), nothing to process.
Targets: catalog and health >= 0.8x, diagnostics and landing >= 0.5x, webhook ingest >= 0.9x.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.thread_server import free_port  # noqa: E402
TOKEN = "123456789:AAF_bench-token-for-the-fake-bot-api-000"
SECRET = "bench-secret"
START_TIMEOUT = 60.0

BARE_APP = """
import sys
import uvicorn
from fastapi import FastAPI

app = FastAPI()

@app.get("/ok")
async def ok():
    return {"ok": True}

@app.post("/hook")
async def hook():
    return {"ok": True}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

# Every request a new update_id from the offset given after `--` (chats round-robin); with "repeat"
# as the second argument every request posts the same update (a duplicate: committed, not processed).
WEBHOOK_LUA = """
local n = 0
local step = 1
init = function(args)
  n = tonumber(args[1]) or 0
  if args[2] == "repeat" then step = 0 end
end
request = function()
  n = n + step
  local chat = 10000 + n % 500
  local body = string.format(
    '{"update_id":%d,"message":{"message_id":%d,"date":1700000000,"chat":{"id":%d,"type":"private"},' ..
    '"from":{"id":%d,"is_bot":false,"first_name":"Bench"},"text":"Сколько стоит курс?"}}', n, n, chat, chat)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["X-Telegram-Bot-Api-Secret-Token"] = "%(secret)s"}, body)
end
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    target: float
    post: bool = False


ENDPOINTS = (
    Endpoint("health", "/api/health", 0.8),
    Endpoint("catalog", "/api/catalog/search?grade=11&goal=ege&subject=math&format=online", 0.8),
    Endpoint("diagnostics", "/api/runtime/diagnostics", 0.5),
    Endpoint("landing", "/", 0.5),
    Endpoint("webhook", "/telegram/webhook", 0.9, post=True),
    Endpoint("webhook-dup", "/telegram/webhook", 0.9, post=True),
)


def wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def spawn(argv: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def service_env(data: Path, api_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "TELEGRAM_", "DATABASE_", "REDIS_"))}
    env.update(
        PYTHONPATH=str(REPO),
        PERSISTENT_DATA_PATH=str(data),
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=api_url,
        TELEGRAM_MODE="webhook",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    env.pop("LOG_LEVEL", None)  # production's default
    return env


@contextmanager
def service(data: Path, api_url: str, *, instant_agent: bool = False) -> Iterator[str]:
    port = free_port()
    if instant_agent:
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve-instant", str(port)]
    else:
        argv = [sys.executable, "-m", "adapters.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    data.mkdir(parents=True, exist_ok=True)
    with spawn(argv, service_env(data, api_url), cwd=data) as process:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/api/health", process)
        yield base


_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*")


def wrk_pair(
    urls: tuple[str, str], seconds: float, connections: int, script: Path | None = None, script_args: tuple[str, ...] = ()
) -> tuple[float, float]:
    """Both URLs loaded at the same time, so whatever else runs on the machine slows both alike."""
    runs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", *(["-s", str(script)] if script else []), url,
             *(["--", *script_args] if script_args else [])],
            stdout=subprocess.PIPE, text=True,
        )
        for url in urls
    ]
    rates = []
    for url, run in zip(urls, runs, strict=True):
        out, _ = run.communicate(timeout=seconds + 30)
        errors = _ERRORS.search(out)
        if run.returncode or errors:
            raise RuntimeError(f"wrk {url}: {errors.group(0) if errors else run.returncode}\n{out}")
        match = _RATE.search(out)
        if match is None:
            raise RuntimeError(f"wrk printed no rate:\n{out}")
        rates.append(float(match.group(1)))
    return rates[0], rates[1]


def serve_instant(port: int) -> None:
    """The service's app under production's uvicorn settings, its workers answering at once."""
    import asyncio

    import uvicorn

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from adapters.http.app import create_app
    from adapters.main import _settings, server_config
    from adapters.wiring import build_runtime
    from telegram_queue import InstantAgent

    settings = _settings()
    runtime = build_runtime(settings, assistant=InstantAgent())  # type: ignore[arg-type]
    server = uvicorn.Server(server_config(create_app(settings, runtime=runtime), "127.0.0.1", port))
    asyncio.run(server.serve())


def main() -> None:
    if sys.argv[1:2] == ["--serve-instant"]:
        serve_instant(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", default="", help="comma-separated endpoint names (default: all)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    chosen = [e for e in ENDPOINTS if not args.only or e.name in args.only.split(",")]
    ratios: dict[str, list[float]] = {e.name: [] for e in chosen}
    rates: dict[str, list[tuple[float, float]]] = {e.name: [] for e in chosen}
    bare_port, api_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        root = Path(tmp)
        script = root / "webhook.lua"
        script.write_text(WEBHOOK_LUA.replace("%(secret)s", SECRET))
        fake_api = [sys.executable, "-m", "tests.fakes.telegram_api", "--port", str(api_port)]
        bare_argv = [sys.executable, "-c", BARE_APP, str(bare_port)]
        api_url = f"http://127.0.0.1:{api_port}"
        with spawn(fake_api), spawn(bare_argv) as bare, service(root / "service", api_url) as base:
            bare_base = f"http://127.0.0.1:{bare_port}"
            wait_http(bare_base + "/ok", bare)
            for number in range(args.rounds + 1):  # round 0 warms both up, unreported
                for endpoint in chosen:
                    if endpoint.post:
                        with service(root / f"webhook-{number}", api_url, instant_agent=True) as fresh:
                            # Its bot's start-up calls (getMe, commands) and first requests settle first.
                            urls = (bare_base + "/hook", fresh + endpoint.path)
                            repeat = ("repeat",) if endpoint.name == "webhook-dup" else ()
                            wrk_pair(urls, 1, args.connections, script, ("100000000", *repeat))
                            bare_rate, rate = wrk_pair(urls, args.seconds, args.connections, script, ("0", *repeat))
                    else:
                        urls = (bare_base + "/ok", base + endpoint.path)
                        bare_rate, rate = wrk_pair(urls, args.seconds, args.connections)
                    if number:
                        ratios[endpoint.name].append(rate / bare_rate)
                        rates[endpoint.name].append((bare_rate, rate))
                        print(f"  round {number} {endpoint.name:12} bare {bare_rate:7.0f}  service {rate:7.0f}  "
                              f"{rate / bare_rate:.2f}x", flush=True)
    print(f"\nrequests/s against a bare FastAPI app, wrk -t1 -c{args.connections} -d{args.seconds:g}s, "
          f"{args.rounds} rounds (ratio: median, min-max):")
    missed = 0
    for endpoint in chosen:
        values = ratios[endpoint.name]
        median = statistics.median(values)
        bare_median = statistics.median(b for b, _ in rates[endpoint.name])
        service_median = statistics.median(s for _, s in rates[endpoint.name])
        met = median >= endpoint.target
        missed += not met
        print(f"  {endpoint.name:12} {service_median:7.0f} vs {bare_median:7.0f} req/s  {median:.2f}x "
              f"({min(values):.2f}-{max(values):.2f})  target >= {endpoint.target:.1f}x: {'met' if met else 'MISSED'}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
