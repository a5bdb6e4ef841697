"""The Basic-auth admin against another site's pages (issue 20, findings 11 and 12): cross-site changes
refused, the Mini App pages framed only by Telegram, admin query strings kept out of the access log."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.http.access_log import AccessLog
from tests.conftest import make_settings
from tests.security.conftest import serve_app

BASIC = ("admin", "a-long-test-password")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    dist = tmp_path / "dist"  # what `npm run build` writes: the two HTML entries
    (dist / "admin").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>", encoding="utf-8")
    (dist / "admin" / "index.html").write_text("<!doctype html><title>admin</title>", encoding="utf-8")
    settings = make_settings(tmp_path, webapp_dist_path=str(dist), startup_preflight_mode="off")
    async with serve_app(settings) as c:
        yield c


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Referer": "https://evil.example/form.html"}, {"Origin": "null"}],
)
async def test_cross_site_admin_changes_are_refused(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """A page on another site posting a form to the admin (the browser adds the cached Basic credentials)."""
    response = await client.post("/admin/conversations/999/release", auth=BASIC, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == "cross_site_request"
    patch = await client.patch("/admin/leads/1", auth=BASIC, headers=headers, json={"status": "done"})
    assert patch.status_code == 403


async def test_same_site_and_non_browser_admin_changes_pass(client: httpx.AsyncClient) -> None:
    same_site = await client.post("/admin/conversations/999/release", auth=BASIC, headers={"Origin": "http://test"})
    scripted = await client.post("/admin/conversations/999/release", auth=BASIC)  # curl: no Origin, no Referer
    reading = await client.get("/admin/leads", auth=BASIC, headers={"Origin": "https://evil.example"})
    assert same_site.status_code == scripted.status_code == 404  # reached the handler: no such conversation
    assert reading.status_code == 200  # reads change nothing (and CORS keeps the answer from the other site)


@pytest.mark.parametrize("path", ["/app", "/app/catalog", "/admin/miniapp"])
async def test_mini_app_pages_may_be_framed_only_by_telegram(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org" in policy


async def test_admin_query_strings_are_redacted_in_the_access_log() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.enabled = True
    for path, query in (("/admin/leads", b"q=%2B79161234567"), ("/admin/leads.csv", b"q=%D0%98%D0%B2%D0%B0%D0%BD"),
                        ("/api/catalog/search", b"grade=9")):
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query,
                 "http_version": "1.1", "client": ("127.0.0.1", 1)}
        log.record(scope, 200, time.perf_counter(), "req-1")
    log.flush()
    written = stream.getvalue()
    assert "79161234567" not in written and "%D0%98" not in written
    assert "/admin/leads?<redacted>" in written
    assert "/api/catalog/search?grade=9" in written
