"""GitHub workflows and the Render blueprint, checked statically (vendored JSON schemas, no network)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    return subprocess.run([binary, "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True)


def test_workflows_match_the_github_schema() -> None:
    result = _check_jsonschema("vendor.github-workflows", WORKFLOWS / "ci.yml", WORKFLOWS / "release-smoke.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    required_timeout = _check_jsonschema(
        "custom.github-workflows-require-timeout", WORKFLOWS / "ci.yml", WORKFLOWS / "release-smoke.yml"
    )
    assert required_timeout.returncode == 0, required_timeout.stdout


def test_ci_workflow_runs_the_readme_command_with_services() -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    job = ci["jobs"]["test"]
    assert {"postgres", "redis"} <= set(job["services"])
    assert any(step.get("run") == "make test" for step in job["steps"])
    assert "make test" in (REPO / "README.md").read_text()
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_release_smoke_workflow_schedule_and_secrets() -> None:
    text = (WORKFLOWS / "release-smoke.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"] == [{"cron": "*/30 * * * *"}]
    assert "workflow_dispatch" in triggers
    assert "secrets.RELEASE_SMOKE_BASE_URL" in text and "secrets.TELEGRAM_BOT_TOKEN" in text
    assert "scripts/release_smoke.py" in text


def test_compose_file_matches_the_compose_spec() -> None:
    result = _check_jsonschema("vendor.compose-spec", REPO / "docker-compose.prod.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_blueprint_matches_the_runbook() -> None:
    blueprint = yaml.safe_load((REPO / "render.yaml").read_text())
    (service,) = blueprint["services"]
    assert service["type"] == "web" and service["runtime"] == "docker"
    assert service["healthCheckPath"] == "/api/health"
    assert service["disk"]["mountPath"] == "/var/data"
    env = {item["key"]: item for item in service["envVars"]}
    assert env["PERSISTENT_DATA_PATH"]["value"] == "/var/data"
    for secret in ("TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY"):
        assert env[secret].get("sync") is False  # entered in the dashboard, never committed
    assert env["ADMIN_PASS"].get("generateValue") is True
