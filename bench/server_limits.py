#!/usr/bin/env python3
"""Memory and connection time an unauthenticated client can take from the server (issue 20, finding 2).

    python bench/server_limits.py [--runs 3] [--megabytes 16] [--trickle-cap 30]

Each run starts two servers on 127.0.0.1, interleaved so machine noise hits them alike:

- stock: the same application under uvicorn's own httptools protocol (what main served before);
- limited: `python -m adapters.main serve`, i.e. adapters/http/server_limits.py with the defaults
  (32 KiB head, 100 header lines, 10 s to send the head, 30 s for the body).

and measures, on each: the server's RSS (VmRSS) before, while three connections that each sent a header
value of up to --megabytes MB (round-robin, until the server stops reading) are still open, and 1 s after
they closed; and how long a connection that trickles one header line every 2 s stays open (capped at
--trickle-cap seconds). Traffic stays on
127.0.0.1 and is bounded in size and time.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.thread_server import free_port  # noqa: E402
CHUNK = b"a" * 65536


def _start(mode: str, data: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PERSISTENT_DATA_PATH": str(data), "STARTUP_PREFLIGHT_MODE": "off",
           "ADMIN_PASS": "bench-admin-password", "LOG_LEVEL": "WARNING"}
    if mode == "limited":
        command = [sys.executable, "-m", "adapters.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, __file__, "--serve-stock", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{mode} server did not start")


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def _huge_headers(port: int, megabytes: int, connections: int = 3) -> list[socket.socket]:
    """``connections`` sockets, each sending a header value of up to ``megabytes`` MB, round-robin,
    until the server stops reading it; returned still open (the memory they hold is what counts)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(connections)]
    alive = []
    for sock in socks:
        try:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            alive.append(sock)
        except OSError:
            pass
    for _ in range(megabytes * 16):
        for sock in list(alive):
            try:
                sock.sendall(CHUNK)
            except OSError:
                alive.remove(sock)  # refused (431) and closed by the server
        if not alive:
            break
    return socks


def _trickle_seconds(port: int, cap: float) -> float:
    sock = socket.create_connection(("127.0.0.1", port), timeout=cap)
    started = time.monotonic()
    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    n = 0
    try:
        while time.monotonic() - started < cap:
            sock.settimeout(2)
            try:
                if sock.recv(4096) == b"":
                    break  # closed by the server
                break  # an answer (408): the server is closing
            except TimeoutError:
                pass
            sock.sendall(b"X-Trickle-%d: 1\r\n" % n)
            n += 1
    except OSError:
        pass
    finally:
        sock.close()
    return time.monotonic() - started


def _one(mode: str, megabytes: int, cap: float) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as data:
        process, port = _start(mode, Path(data))
        try:
            before = _rss_mib(process.pid)
            socks = _huge_headers(port, megabytes)
            time.sleep(1)
            during = _rss_mib(process.pid)
            for sock in socks:
                sock.close()
            time.sleep(1)
            after = _rss_mib(process.pid)
            held = _trickle_seconds(port, cap)
        finally:
            process.terminate()
            process.wait(20)
    return before, during, after, held


def _serve_stock(port: int) -> None:
    sys.path.insert(0, str(ROOT))
    import uvicorn

    from adapters.http.app import create_app
    from adapters.main import server_config
    from agent.settings import load_settings

    settings = load_settings()
    config = server_config(create_app(settings), "127.0.0.1", port, settings)
    config.http = "httptools"  # uvicorn's own protocol: no head limit, no head timeout
    uvicorn.Server(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=16)
    parser.add_argument("--trickle-cap", type=float, default=30.0)
    parser.add_argument("--serve-stock", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stock:
        _serve_stock(args.serve_stock)
        return
    results: dict[str, list[tuple[float, float, float, float]]] = {"stock": [], "limited": []}
    for run in range(1, args.runs + 1):
        for mode in ("stock", "limited"):
            before, during, after, held = _one(mode, args.megabytes, args.trickle_cap)
            results[mode].append((before, during, after, held))
            print(f"run {run} {mode:8} RSS {before:6.1f} -> {during:6.1f} MiB with 3 connections open, "
                  f"{after:6.1f} after they closed; trickled head held {held:5.1f} s"
                  f"{' (cap)' if held >= args.trickle_cap - 0.5 else ''}", flush=True)
    for mode, rows in results.items():
        growth = [during - before for before, during, _, _ in rows]
        left = [after - before for before, _, after, _ in rows]
        held = [h for *_, h in rows]
        print(f"{mode:8} RSS growth while open median {statistics.median(growth):6.1f} MiB (min {min(growth):.1f}, "
              f"max {max(growth):.1f}); after close median {statistics.median(left):6.1f} MiB; "
              f"trickle held median {statistics.median(held):4.1f} s (min {min(held):.1f}, max {max(held):.1f})")

if __name__ == "__main__":
    main()
