"""Static checks of the deploy files (no Docker engine runs here) and the real start.sh process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import IN_CI, REPO


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _compose_with_env_example(tmp_path: Path) -> str:
    """docker-compose's path, with the compose file and `.env.example` as `.env` copied into tmp_path."""
    binary = shutil.which("docker-compose")
    if binary is None:
        if IN_CI:
            pytest.fail("docker-compose (Debian package) must be installed by .ci/run")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    shutil.copy(REPO / "docker-compose.prod.yml", tmp_path / "docker-compose.prod.yml")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    return binary


def test_compose_file_parses_with_docker_compose(tmp_path: Path) -> None:
    """The runbook's first step: `docker compose -f docker-compose.prod.yml config` after `cp .env.example .env`."""
    binary = _compose_with_env_example(tmp_path)
    result = subprocess.run(
        [binary, "-f", "docker-compose.prod.yml", "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    # The default services; the others belong to the `scale` profile (started only with --profile scale).
    assert {name for name, service in config["services"].items() if not service.get("profiles")} == {"api", "bot"}
    for service in (config["services"]["api"], config["services"]["bot"]):
        targets = [v["target"] if isinstance(v, dict) else str(v).split(":")[1] for v in service["volumes"]]
        assert "/var/data" in targets
    assert "healthcheck" in config["services"]["api"]
    assert "/api/health" in " ".join(config["services"]["api"]["healthcheck"]["test"])
    assert "data" in config["volumes"]


def test_compose_scale_profile_runs_replicas_on_postgresql_and_redis(tmp_path: Path) -> None:
    """`--profile scale`: API replicas in webhook mode sharing one PostgreSQL and one Redis."""
    binary = _compose_with_env_example(tmp_path)
    result = subprocess.run(
        [binary, "-f", "docker-compose.prod.yml", "--profile", "scale", "config"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "rendered.yml").write_text(result.stdout)
    schema = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(tmp_path / "rendered.yml")],
        capture_output=True, text=True, timeout=120,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    config = yaml.safe_load(result.stdout)
    assert {"api", "bot", "api-scale", "postgres", "redis"} <= set(config["services"])
    scaled = config["services"]["api-scale"]
    assert scaled["deploy"]["replicas"] >= 2
    assert scaled["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert scaled["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert scaled["environment"]["TELEGRAM_MODE"] == "webhook"  # one poller per token: replicas take webhooks
    assert set(scaled["depends_on"]) == {"postgres", "redis"}
    assert "/api/health" in " ".join(scaled["healthcheck"]["test"])


def test_dockerfile_is_multi_stage_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and froms[0].startswith("FROM node:") and "python:3.11" in froms[1]
    assert "npm run build" in text
    assert "COPY --from=webapp" in text
    assert "\nUSER app" in text
    assert "HEALTHCHECK" in text and "/api/health" in text
    assert 'CMD ["./start.sh"]' in text
    for folder in ("agent", "tools", "adapters", "prompts", "catalog", "knowledge", "scripts"):
        assert f"COPY {folder} " in text, folder


def test_start_script_syntax() -> None:
    assert os.access(REPO / "start.sh", os.X_OK)
    subprocess.run(["sh", "-n", str(REPO / "start.sh")], check=True)


def test_start_sh_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The real entry point: migrates, logs the runbook's line, answers /api/health, exits 0 on SIGTERM."""
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHON": sys.executable,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PERSISTENT_DATA_PATH": str(tmp_path / "data"),
        "ADMIN_PASS": "a-long-test-password",
        "WEBAPP_DIST_PATH": str(tmp_path / "none"),
    }
    process = subprocess.Popen(
        [str(REPO / "start.sh")], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"Starting API on 127.0.0.1:{port}..." in output
    assert (tmp_path / "data" / "sales_agent.db").exists()


def _children(pid: int) -> set[int]:
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _start_workers(tmp_path: Path) -> tuple[subprocess.Popen[str], set[int]]:
    """start.sh with WEB_CONCURRENCY=2, once /api/health answers: the supervisor and its worker pids."""
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHON": sys.executable, "HOST": "127.0.0.1",
           "PORT": str(port), "PERSISTENT_DATA_PATH": str(tmp_path / "data"), "WEB_CONCURRENCY": "2",
           "WEBAPP_DIST_PATH": str(tmp_path / "none")}
    process = subprocess.Popen(
        [str(REPO / "start.sh")], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline, status = time.monotonic() + 90, None
    while time.monotonic() < deadline and status != 200:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code
        except httpx.TransportError:
            time.sleep(0.2)
    # The workers: the supervisor's children that run the app (not multiprocessing's resource tracker).
    workers = {pid for pid in _children(process.pid)
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
    if status != 200 or len(workers) != 2:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"health {status}, workers {workers}: {output[-2000:]}")
    return process, workers


def _stop_all(process: subprocess.Popen[str], workers: set[int]) -> str:
    """Whatever a failed test left running is stopped by its pid."""
    if process.poll() is None:
        process.kill()
    for pid in workers:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    output, _ = process.communicate()
    return output


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return {pid for pid in pids if _alive(pid)}


def test_web_concurrency_serves_from_worker_processes_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    """WEB_CONCURRENCY=2: two worker processes behind one port; they migrate once under the lock;
    SIGTERM to the supervisor (PID 1 in the container) stops every worker before it exits."""
    process, workers = _start_workers(tmp_path)
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        left = {pid for pid in workers if _alive(pid)}
    finally:
        output = _stop_all(process, workers)
    assert left == set(), output[-2000:]
    assert process.returncode == 0, output[-2000:]
    assert output.count("\"message\": \"Started server process") == 2, output[-2000:]
    assert output.count("\"message\": \"new database: schema created at revision") == 1


def test_web_concurrency_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """A supervisor killed with SIGKILL (OOM killer, `docker kill`) cannot stop its workers itself;
    they must not stay behind serving the port with nobody to stop them."""
    process, workers = _start_workers(tmp_path)
    try:
        process.kill()
        process.wait(timeout=10)
        left = _wait_gone(workers, 60)
    finally:
        output = _stop_all(process, workers)
    assert left == set(), output[-2000:]


def test_web_concurrency_refuses_the_polling_bot(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PERSISTENT_DATA_PATH": str(tmp_path), "WEB_CONCURRENCY": "2",
           "TELEGRAM_BOT_TOKEN": "123456789:AAAbbbCCCdddEEEfffGGGhhhIIIjjjKKKlll", "TELEGRAM_MODE": "polling"}
    result = subprocess.run(
        [sys.executable, "-m", "adapters.main", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "WEB_CONCURRENCY > 1 cannot run the polling bot" in result.stderr


def test_invalid_env_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "TELEGRAM_MODE": "pooling", "PERSISTENT_DATA_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "adapters.main", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["Configuration error: Invalid environment variable TELEGRAM_MODE: Input should be 'polling' or 'webhook'"]
