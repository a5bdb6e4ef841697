"""The vector store backend on the real openai SDK, faked at the HTTP seam with respx."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from openai import AsyncOpenAI

from adapters.knowledge.backend import build_knowledge
from adapters.knowledge.local import LocalKnowledge
from adapters.knowledge.vector_store import VectorStoreKnowledge
from agent.errors import UnknownBrand
from tests.conftest import REPO, make_settings
from tests.respx_openai import OPENAI_BASE, OPENAI_MOCKER

STORE = "vs_test123"
SEARCH_PATH = f"/vector_stores/{STORE}/search"


def search_page(*hits: dict[str, object]) -> dict[str, object]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": ["q"],
        "data": list(hits),
        "has_more": False,
        "next_page": None,
    }


def hit(slug: str, score: float, text: str) -> dict[str, object]:
    return {
        "file_id": f"file-{slug}",
        "filename": f"kmipt--{slug}.md",
        "score": score,
        "attributes": {"brand": "kmipt", "slug": slug, "key": f"kmipt/{slug}.md", "sha256": "x"},
        "content": [{"type": "text", "text": text}],
    }


@pytest.fixture(scope="module")
def local() -> LocalKnowledge:
    return LocalKnowledge.from_directory(REPO / "knowledge")


def backend(local: LocalKnowledge, recorded: list[str] | None = None) -> VectorStoreKnowledge:
    async def record(purpose: str) -> None:
        if recorded is not None:
            recorded.append(purpose)

    client = AsyncOpenAI(api_key="sk-test", max_retries=0, timeout=5)
    return VectorStoreKnowledge(client, STORE, local, usage_recorder=record)


async def test_search_maps_results_and_filters_by_brand(local: LocalKnowledge) -> None:
    recorded: list[str] = []
    with respx.mock(base_url=OPENAI_BASE, using=OPENAI_MOCKER, assert_all_called=True) as api:
        route = api.post(SEARCH_PATH).mock(
            return_value=httpx.Response(200, json=search_page(hit("tax-deduction", 0.82, "Вычет до 14 300 ₽")))
        )
        result = await backend(local, recorded).search("kmipt", "вычет за учёбу", limit=2)
    request = json.loads(route.calls.last.request.content)
    assert request == {
        "query": "вычет за учёбу",
        "max_num_results": 2,
        "filters": {"type": "eq", "key": "brand", "value": "kmipt"},
    }
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test"
    assert result.relevant
    passage = result.passages[0]
    assert passage.doc_id == "tax-deduction" and passage.score == 0.82
    assert passage.title == "Налоговый вычет за обучение"  # from the local document, by slug
    assert passage.source_url == "https://kmipt.ru/courses/"
    assert passage.text == "Вычет до 14 300 ₽"
    assert recorded == ["vector_search"]


async def test_low_scores_mean_nothing_relevant(local: LocalKnowledge) -> None:
    with respx.mock(base_url=OPENAI_BASE, using=OPENAI_MOCKER) as api:
        api.post(SEARCH_PATH).mock(return_value=httpx.Response(200, json=search_page(hit("about", 0.1, "…"))))
        result = await backend(local).search("kmipt", "рецепт борща")
    assert result.passages and not result.relevant


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}}),
        httpx.Response(401, json={"error": {"message": "bad key", "type": "invalid_request_error"}}),
        httpx.Response(200, text="not json"),
        httpx.ConnectError("refused"),
    ],
)
async def test_any_failure_falls_back_to_the_local_index(local: LocalKnowledge, failure: object) -> None:
    with respx.mock(base_url=OPENAI_BASE, using=OPENAI_MOCKER) as api:
        if isinstance(failure, Exception):
            api.post(SEARCH_PATH).mock(side_effect=failure)
        else:
            api.post(SEARCH_PATH).mock(return_value=failure)
        result = await backend(local).search("kmipt", "налоговый вычет")
    assert result.relevant and result.passages[0].doc_id == "tax-deduction"
    assert result.passages[0].text.startswith("## Как получить справку для вычета")  # the local document's text


async def test_unknown_brand_is_rejected_before_any_call(local: LocalKnowledge) -> None:
    with respx.mock(base_url=OPENAI_BASE, using=OPENAI_MOCKER, assert_all_called=False) as api:
        route = api.post(SEARCH_PATH)
        with pytest.raises(UnknownBrand):
            await backend(local).search("nope", "оплата")
    assert not route.called


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    from openai import AsyncOpenAI

    model_client = AsyncOpenAI(api_key="sk-x")
    assert isinstance(build_knowledge(make_settings(tmp_path), model_client), LocalKnowledge)
    # A store id without a key (so no model client) can't be used: the local index answers (preflight warns).
    assert isinstance(build_knowledge(make_settings(tmp_path, openai_vector_store_id=STORE), None), LocalKnowledge)
    chosen = build_knowledge(make_settings(tmp_path, openai_vector_store_id=STORE, openai_api_key="sk-x"), model_client)
    assert isinstance(chosen, VectorStoreKnowledge)
    assert chosen.known_amounts("kmipt") and chosen.documents("kmipt") and chosen.brands() == ["kmipt"]
