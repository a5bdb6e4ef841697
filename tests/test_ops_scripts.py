"""release_smoke.py and load_smoke.py against a locally started service."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.live_server import LiveServer, live_server
from tests.thread_server import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live"), ASSISTANT_API_TOKEN="load-token-123") as srv:
        yield srv


def _run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "COLUMNS": "200", **env},
    )


def test_load_smoke_health_passes(server: LiveServer) -> None:
    result = _run("load_smoke.py", "--base-url", server.base_url, "--target", "health", "--requests", "200",
                  "--concurrency", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requests/s" in result.stdout and "200=200" in result.stdout and "PASS" in result.stdout


def test_load_smoke_fails_on_errors_and_latency(server: LiveServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = _run("load_smoke.py", "--base-url", dead, "--requests", "5", "--concurrency", "2")
    assert result.returncode == 1 and "FAIL" in result.stdout and "ConnectError=5" in result.stdout
    slow = _run("load_smoke.py", "--base-url", server.base_url, "--requests", "20", "--max-p95-ms", "0.001")
    assert slow.returncode == 1 and "p95" in slow.stdout


def test_load_smoke_refuses_unbounded_runs() -> None:
    result = _run("load_smoke.py", "--base-url", "http://127.0.0.1:9", "--requests", "10001")
    assert result.returncode == 2
    bad_target = _run("load_smoke.py", "--base-url", "http://127.0.0.1:9", "--target", "everything")
    assert bad_target.returncode == 2


def test_release_smoke_flags_fail_on_a_local_polling_service(server: LiveServer) -> None:
    render = _run("release_smoke.py", "--base-url", server.base_url, "--require-render-persistent")
    assert render.returncode == 1 and "running_on_render is not true" in render.stdout
    webhook = _run("release_smoke.py", "--base-url", server.base_url, "--require-webhook-mode")
    assert webhook.returncode == 1 and "telegram_mode=polling" in webhook.stdout
    strict = _run("release_smoke.py", "--base-url", server.base_url, "--strict-runtime")
    assert strict.returncode == 1 and "OPENAI_API_KEY" in strict.stdout
    for name in ("health", "landing", "miniapp", "diagnostics"):
        assert any(line.split()[1:3] == [name, "PASS"] or (name in line and "PASS" in line)
                   for line in render.stdout.splitlines()), name


def test_release_smoke_unreachable_service_fails(tmp_path: Path) -> None:
    result = _run("release_smoke.py", "--base-url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 1 and "ConnectError" in result.stdout
    assert "--require-render-persistent" in _run("release_smoke.py", "--help").stdout


def test_release_smoke_passes_on_a_healthy_service(server: LiveServer) -> None:
    result = _run("release_smoke.py", "--base-url", server.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "catalog_search" in result.stdout and "PASS: 5 checks" in result.stdout


def test_load_smoke_catalog_target(server: LiveServer) -> None:
    result = _run("load_smoke.py", "--base-url", server.base_url, "--target", "catalog", "--requests", "60",
                  "--concurrency", "6")
    assert result.returncode == 0, result.stdout
    assert "200=60" in result.stdout
