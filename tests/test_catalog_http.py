from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from adapters.wiring import build_runtime
from tests.conftest import REPO, app_client, make_settings

ADMIN = ("admin", "a-long-test-password")


async def _client(tmp_path: Path, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, **overrides)
    runtime = build_runtime(settings, today=lambda: date(2026, 10, 1))  # autumn sessions have started
    async for client in app_client(settings, runtime):
        yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(tmp_path):
        yield c


async def test_search_answers_the_documented_shape(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/catalog/search", params={"brand": "kmipt", "grade": 11, "goal": "ege", "subject": "math", "format": "online"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "items", "match_quality", "manager_recommended"}
    assert body["ok"] is True and body["match_quality"] == "strong" and body["manager_recommended"] is False
    first = body["items"][0]
    assert set(first) == {"id", "title", "url", "usp", "price_text", "next_start_text", "why_match"}
    assert first["id"] == "online-ege-math-11"
    # today is injected (01.10.2026): the year is running and can be joined; the price carries its period
    assert first["next_start_text"] == "Учебный год идёт — можно присоединиться в любое время"
    assert first["price_text"] == "41 800 ₽ за семестр · 69 900 ₽ за год"
    assert first["usp"][0].startswith("Где: онлайн на платформе SohoLMS")
    assert len(first["usp"]) <= 5 and len(body["items"]) <= 3


async def test_every_parameter_is_optional(client: httpx.AsyncClient) -> None:
    for query in ("", "?grade=", "?brand=&goal=&subject=&format="):
        response = await client.get(f"/api/catalog/search{query}")
        assert response.status_code == 200, query
        assert response.json()["match_quality"] == "limited"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("grade=abc", "grade"),
        ("grade=15", "grade"),
        ("grade=0", "grade"),
        ("format=space", "format"),
        ("goal=xyz", "goal"),
        ("subject=chemistry", "subject"),
        ("brand=nope", "brand"),
        ("brand=" + "x" * 100, "brand"),
    ],
)
async def test_bad_values_answer_422_naming_the_parameter(client: httpx.AsyncClient, query: str, field: str) -> None:
    response = await client.get(f"/api/catalog/search?{query}")
    assert response.status_code == 422
    assert response.json()["ok"] is False and response.json()["field"] == field


async def test_brand_default_and_a_second_brand(tmp_path: Path) -> None:
    async for client in _client(
        tmp_path,
        brand_default="demo",
        catalog_dir=str(REPO / "tests" / "data" / "catalog"),
        knowledge_dir=str(REPO / "tests" / "data" / "knowledge"),
    ):
        body = (await client.get("/api/catalog/search", params={"grade": 9, "subject": "russian"})).json()
        assert body["items"][0]["id"] == "demo-oge-russian-9-offline"
        assert (await client.get("/api/catalog/search?brand=kmipt")).status_code == 422


async def test_kb_search_needs_admin_and_finds_inflected_forms(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/kb/search", params={"q": "вычет"})).status_code == 401
    assert (await client.get("/api/kb/search", params={"q": "вычет"}, auth=("admin", "wrong"))).status_code == 401
    response = await client.get("/api/kb/search", params={"q": "как получить налоговым вычетом", "brand": "kmipt"}, auth=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] and body["backend"] == "local" and body["relevant"] is True
    top = body["passages"][0]
    assert top["doc_id"] == "tax-deduction" and top["title"] == "Налоговый вычет за обучение"
    assert top["source_url"].startswith("https://kmipt.ru/") and top["score"] > 0


async def test_kb_search_bad_input(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/kb/search", auth=ADMIN)
    assert missing.status_code == 422 and missing.json()["field"] == "q"
    too_long = await client.get("/api/kb/search", params={"q": "а" * 1001}, auth=ADMIN)
    assert too_long.status_code == 422
    unknown = await client.get("/api/kb/search", params={"q": "оплата", "brand": "nope"}, auth=ADMIN)
    assert unknown.status_code == 422 and unknown.json()["field"] == "brand"
    offtopic = await client.get("/api/kb/search", params={"q": "рецепт борща"}, auth=ADMIN)
    assert offtopic.status_code == 200 and offtopic.json()["relevant"] is False


async def test_brand_info_for_the_mini_app_header(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/brand?brand=kmipt")).json()
    unknown = await client.get("/api/brand?brand=nope")
    assert body["name"] == "УНПК МФТИ" and body["bot_url"] is None  # no bot token: no t.me link to offer
    assert {"text": "8 (800) 500-81-51", "tel": "+78005008151"} in body["phones"]
    assert body["school_telegram_url"] == "https://t.me/unpk_mipt"
    assert unknown.status_code == 422
