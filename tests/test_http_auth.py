from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.security import HTTPBasicCredentials
from starlette.testclient import TestClient

from adapters.http.auth import check_admin_credentials, client_ip
from adapters.http.ratelimit import RateLimiter, make_storage
from agent.settings import Settings


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, admin_user="boss", admin_pass="a-long-test-password", **kw)  # type: ignore[arg-type]


def test_admin_credentials() -> None:
    s = _settings()
    assert check_admin_credentials(HTTPBasicCredentials(username="boss", password="a-long-test-password"), s)
    assert not check_admin_credentials(HTTPBasicCredentials(username="boss", password="wrong"), s)
    assert not check_admin_credentials(HTTPBasicCredentials(username="bössa", password="a-long-test-password"), s)
    assert not check_admin_credentials(None, s)


def _ip_app(trusted: list[str]) -> TestClient:
    app = FastAPI()

    @app.get("/ip")
    async def ip(request: Request) -> dict[str, str]:
        return {"ip": client_ip(request, trusted)}

    return TestClient(app)


def test_forwarded_for_ignored_without_trusted_proxy() -> None:
    client = _ip_app([])
    assert client.get("/ip", headers={"X-Forwarded-For": "1.2.3.4"}).json()["ip"] == "testclient"


def test_forwarded_for_from_trusted_proxy() -> None:
    app = FastAPI()

    @app.get("/ip")
    async def ip(request: Request) -> dict[str, str]:
        request.scope["client"] = ("10.0.0.5", 1234)
        return {"ip": client_ip(request, ["10.0.0.0/8"])}

    client = TestClient(app)
    assert client.get("/ip", headers={"X-Forwarded-For": "9.9.9.9, 1.2.3.4, 10.0.0.7"}).json()["ip"] == "1.2.3.4"


def test_invalid_trusted_proxy_setting_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.settings import ConfigError, load_settings

    monkeypatch.setenv("TRUSTED_PROXY_IPS", "10.0.0.0/8, not-an-ip")
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_IPS"):
        load_settings(_env_file=None)


async def test_memory_rate_limiter_counts_and_reports_retry_after() -> None:
    limiter = RateLimiter(make_storage(None), "t", requests=2, window_seconds=30)
    decisions = [await limiter.hit("k") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert 1 <= decisions[-1].retry_after <= 30
    assert (await limiter.hit("other")).allowed


@pytest.mark.redis
async def test_redis_rate_limiter_is_shared_between_instances(redis_url: str) -> None:
    import uuid

    name = f"shared-{uuid.uuid4().hex}"
    first = RateLimiter(make_storage(redis_url), name, requests=3, window_seconds=30)
    second = RateLimiter(make_storage(redis_url), name, requests=3, window_seconds=30)
    results = [await first.hit("u"), await second.hit("u"), await first.hit("u"), await second.hit("u")]
    assert [r.allowed for r in results] == [True, True, True, False]


async def test_memory_storage_cleans_up_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Telegram sender's moving windows (a key per chat): limits' own clean-up handed every key to a
    thread after every hit (~9 % of a webhook burst's CPU); this storage's never does, and the windows'
    expired entries are still dropped."""
    from limits import RateLimitItemPerSecond
    from limits.aio.strategies import MovingWindowRateLimiter

    hops: list[object] = []
    to_thread = asyncio.to_thread

    def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return to_thread(*args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    storage = make_storage(None)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(2, 1)
    for chat in range(500):
        assert await limiter.hit(item, "tg_send", str(chat))
    assert await limiter.hit(item, "tg_send", "7")
    assert not await limiter.hit(item, "tg_send", "7")  # the window is the library's: 2 per second
    assert len(storage.events) == 500  # type: ignore[attr-defined]
    await asyncio.sleep(1.1)
    assert await limiter.hit(item, "tg_send", "after")
    await asyncio.sleep(0.05)  # room for a clean-up task, had the hit scheduled one
    assert len(storage.events) == 1  # type: ignore[attr-defined]
    assert not hops


async def test_memory_limiter_stays_bounded_under_many_distinct_keys() -> None:
    """20 000 one-off keys (e.g. forged user ids) are forgotten once their window has passed."""
    storage = make_storage(None)
    limiter = RateLimiter(storage, "flood", requests=5, window_seconds=1)
    for i in range(20_000):
        await limiter.hit(f"key-{i}")
    assert len(storage.storage) >= 20_000  # type: ignore[attr-defined]
    await asyncio.sleep(2.2)  # counters live for two windows
    await limiter.hit("after-the-flood")  # any hit starts the expiry sweep
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(storage.storage) < 10:  # type: ignore[attr-defined]
            break
    assert len(storage.storage) < 10  # type: ignore[attr-defined]
