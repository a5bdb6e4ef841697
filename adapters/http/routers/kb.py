"""GET /api/kb/search: what the knowledge base answers to a question (team checks, the bot's /kbtest)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from adapters.http.auth import AdminDep
from adapters.http.dependencies import KnowledgeDep, SettingsDep

router = APIRouter()


@router.get("/api/kb/search")
async def kb_search(
    knowledge: KnowledgeDep,
    settings: SettingsDep,
    _: AdminDep,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    brand: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10)] = 3,
) -> dict[str, object]:
    brand_id = brand or settings.brand_default
    result = await knowledge.search(brand_id, q, limit=limit)
    return {"ok": True, "brand": brand_id, "backend": knowledge.name, **result.model_dump()}
