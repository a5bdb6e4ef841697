"""Property-based fuzzing of our own OpenAPI schema on a live service: no 5xx, every 4xx has a JSON reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.live_server import LiveServer, live_server

TOKEN = "fuzz-assistant-token-123"
ADMIN = ("admin", "a-long-test-password")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "ASSISTANT_API_TOKEN": TOKEN,
        # High limits so the fuzzer reaches the handlers instead of the limiter.
        "ASSISTANT_RATE_LIMIT_USER_REQUESTS": "100000",
        "ASSISTANT_RATE_LIMIT_IP_REQUESTS": "100000",
        "METRICS_ENABLED": "true",
        "STARTUP_PREFLIGHT_MODE": "off",
    }
    with live_server(tmp_path_factory.mktemp("fuzz"), **env) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzz_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")


def _auth_for(path: str) -> dict[str, object]:
    if path.startswith("/api/assistant"):
        return {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    return {"auth": ADMIN}


def test_no_server_errors_and_json_reasons(api_schema: schemathesis.BaseSchema, fuzz_server: LiveServer) -> None:
    """Every operation, valid and invalid inputs, 25 examples each (bounded, 127.0.0.1 only).

    Driven by hand rather than schemathesis' pytest plugin, which does not load under pytest 9."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 3
    calls: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=fuzz_server.base_url, timeout=30, **_auth_for(case.path))
                calls.append(case.path)
                label = f"{case.method} {case.formatted_path} ({mode.value})"
                assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
                if 400 <= response.status_code < 500:
                    body = response.json()
                    assert body.get("ok") is False and body.get("reason"), f"{label}: {response.text[:300]}"

            try:
                check()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # An operation without inputs has no invalid variant to generate.

    # Every operation was really exercised, not skipped by the generator.
    assert {op.path for op in operations} <= set(calls)
    assert len(calls) >= 10 * len(operations)
