"""The local knowledge base: the Markdown documents of each brand and their BM25 index
(adapters/knowledge/bm25_index.py).

The documents are read at start-up (the guardrails and the admin tools use their texts); the index,
whose imports and build cost ~0.2 s of start-up, is built when first needed: by the warm-up that
`serve` starts right after /api/health answers (``prepare``, in a thread, so the event loop keeps
answering), or by the first search if that comes sooner (it waits for the build, so it is answered from
the index as always, a little later).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.knowledge.documents import KnowledgeDocument, brand_folders, read_brand_documents
from agent.catalog import rub_amounts
from agent.errors import UnknownBrand
from agent.ports import KnowledgeResult, Passage

if TYPE_CHECKING:
    from adapters.knowledge.bm25_index import BrandIndex, ScoredDocument

MAX_QUERY_CHARS = 1000  # bounds the work per query whatever a caller passes
MAX_PASSAGE_CHARS = 4000

IndexBuilder = Callable[[list[KnowledgeDocument]], "BrandIndex"]


def _bm25_index(documents: list[KnowledgeDocument]) -> BrandIndex:
    from adapters.knowledge.bm25_index import BrandIndex

    return BrandIndex(documents)


def _passage(found: ScoredDocument) -> Passage:
    doc = found.document
    return Passage(
        doc_id=doc.slug,
        title=doc.title,
        text="\n\n".join(section.markdown for section in found.sections)[:MAX_PASSAGE_CHARS],
        source_url=doc.source_url,
        score=round(found.score, 4),
    )


class LocalKnowledge:
    """agent.ports.Knowledge over the Markdown files, plus the document texts the guardrails need."""

    name = "local"

    def __init__(self, documents: dict[str, list[KnowledgeDocument]], *, build_index: IndexBuilder = _bm25_index) -> None:
        self._documents = documents
        self._build_index = build_index  # the benchmark passes its own analyzer through it
        self._indexes: dict[str, BrandIndex] = {}
        self._lock = threading.Lock()  # the warm-up thread and a first search build each index once

    @classmethod
    def from_directory(cls, knowledge_root: Path, *, build_index: IndexBuilder = _bm25_index) -> LocalKnowledge:
        """Every brand folder's documents; unreadable ones are left out (validate_catalog reports them)."""
        documents = {brand: read_brand_documents(knowledge_root, brand)[0] for brand in brand_folders(knowledge_root)}
        return cls(documents, build_index=build_index)

    def brands(self) -> list[str]:
        return sorted(self._documents)

    def _brand_documents(self, brand: str) -> list[KnowledgeDocument]:
        try:
            return self._documents[brand]
        except KeyError:
            raise UnknownBrand(brand) from None

    def _index(self, brand: str) -> BrandIndex:
        index = self._indexes.get(brand)
        if index is None:
            documents = self._brand_documents(brand)
            with self._lock:
                index = self._indexes.get(brand)
                if index is None:
                    index = self._indexes[brand] = self._build_index(documents)
        return index

    def _build_all(self) -> None:
        for brand in self._documents:
            self._index(brand)

    @property
    def ready(self) -> bool:
        """Every brand's index is built."""
        return len(self._indexes) == len(self._documents)

    async def prepare(self) -> None:
        """Build every index in a worker thread (the event loop keeps answering meanwhile)."""
        if not self.ready:
            await asyncio.to_thread(self._build_all)

    def search_now(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult:
        """The synchronous search (microseconds of CPU once the index is built; building it, the first
        time, takes ~0.1 s): the benchmark and the async port call it."""
        ranking = self._index(brand).rank(query[:MAX_QUERY_CHARS], limit)
        return KnowledgeResult(passages=[_passage(item) for item in ranking.found], relevant=ranking.relevant)

    async def search(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult:
        if brand not in self._indexes:  # not built yet: build it off the event loop, then search
            self._brand_documents(brand)  # an unknown brand fails at once
            await asyncio.to_thread(self._index, brand)
        return self.search_now(brand, query, limit=limit)

    def documents(self, brand: str) -> list[KnowledgeDocument]:
        return list(self._brand_documents(brand))

    def document(self, brand: str, slug: str) -> KnowledgeDocument | None:
        return next((doc for doc in self._brand_documents(brand) if doc.slug == slug), None)

    def known_amounts(self, brand: str) -> set[int]:
        """Every rouble amount the brand's documents state (the guardrails allow quoting these)."""
        amounts: set[int] = set()
        for doc in self._brand_documents(brand):
            amounts |= rub_amounts(doc.body)
        return amounts
