"""Knowledge search through an OpenAI vector store (OPENAI_VECTOR_STORE_ID), the local index as fallback.

scripts/sync_vector_store.py uploads every document with the attributes {brand, slug, sha256}; the
search filters on the brand, and titles and source URLs come from the local documents by slug.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import TYPE_CHECKING

from adapters.knowledge.documents import KnowledgeDocument
from adapters.knowledge.local import MAX_PASSAGE_CHARS, MAX_QUERY_CHARS, LocalKnowledge
from agent.ports import KnowledgeResult, Passage

if TYPE_CHECKING:
    from openai import AsyncOpenAI  # the client is handed in; only a configured service builds one

log = logging.getLogger(__name__)

# Vector store scores are cosine-like in [0, 1]; below this the best chunk does not answer the question.
VECTOR_MIN_SCORE = 0.35
UsageRecorder = Callable[[str], Awaitable[None]]  # called with the purpose ("vector_search") per API call


class VectorStoreKnowledge:
    name = "vector_store"

    def __init__(
        self,
        client: AsyncOpenAI,
        vector_store_id: str,
        local: LocalKnowledge,
        *,
        usage_recorder: UsageRecorder | None = None,
    ) -> None:
        self._client = client
        self._vector_store_id = vector_store_id
        self._local = local
        self._usage_recorder = usage_recorder

    async def search(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult:
        self._local.documents(brand)  # an unknown brand is the caller's error, not a reason to fall back
        try:
            page = await self._client.vector_stores.search(
                self._vector_store_id,
                query=query[:MAX_QUERY_CHARS],
                max_num_results=max(1, min(limit, 50)),
                filters={"type": "eq", "key": "brand", "value": brand},
            )
        except Exception as error:  # any failure of the remote store: answer from the local index
            log.warning("vector store search failed (%s); using the local index", type(error).__name__)
            return await self._local.search(brand, query, limit=limit)
        await self._record_usage()
        passages = [self._passage(brand, item) for item in page.data[:limit]]
        relevant = bool(passages) and passages[0].score >= VECTOR_MIN_SCORE
        return KnowledgeResult(passages=passages, relevant=relevant)

    def _passage(self, brand: str, item: object) -> Passage:
        attributes = getattr(item, "attributes", None) or {}
        filename = str(getattr(item, "filename", "") or "")
        slug = str(attributes.get("slug") or PurePath(filename).stem or getattr(item, "file_id", ""))
        document = self._local.document(brand, slug)
        text = "\n\n".join(part.text for part in getattr(item, "content", []) if getattr(part, "type", "") == "text")
        return Passage(
            doc_id=slug,
            title=document.title if document else filename or slug,
            text=text[:MAX_PASSAGE_CHARS],
            source_url=document.source_url if document else None,
            score=round(float(getattr(item, "score", 0.0)), 4),
        )

    async def _record_usage(self) -> None:
        if self._usage_recorder is None:
            return
        try:
            await self._usage_recorder("vector_search")
        except Exception:  # accounting must never cost the user an answer
            log.exception("could not record vector store usage")

    async def prepare(self) -> None:
        """Build the fallback's local index (see LocalKnowledge.prepare)."""
        await self._local.prepare()

    def documents(self, brand: str) -> list[KnowledgeDocument]:
        return self._local.documents(brand)

    def document(self, brand: str, slug: str) -> KnowledgeDocument | None:
        return self._local.document(brand, slug)

    def known_amounts(self, brand: str) -> set[int]:
        return self._local.known_amounts(brand)

    def brands(self) -> list[str]:
        return self._local.brands()
