"""The local knowledge index: BM25 over stemmed Russian text, one index per brand, built at start.

Chosen by bench/kb_retrieval.py (see the README's knowledge section for the figures): Snowball stems plus
concept tags, the document title counted twice, Lucene-style BM25, and a prefix fallback for query words
the index has never seen (typos, truncations like «долгоп»).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from adapters.knowledge.documents import KnowledgeDocument, brand_folders, read_brand_documents
from adapters.knowledge.text import analyze_words
from agent.catalog import rub_amounts
from agent.errors import UnknownBrand
from agent.ports import KnowledgeResult, Passage

TITLE_WEIGHT = 2
PREFIX_LENGTH = 5  # an unseen query stem matches indexed stems sharing its first 5 letters
MAX_QUERY_CHARS = 1000  # bounds the work per query whatever a caller passes
MAX_PASSAGE_CHARS = 4000
# "Nothing relevant" (the caller says «уточню у менеджера») unless the best document scores at least
# MIN_SCORE and the index knows at least MIN_KNOWN of the question's words: off-topic questions
# («рецепт борща», «курс доллара») are mostly words no document uses.
MIN_SCORE = 1.0
MIN_KNOWN = 0.5

Analyzer = Callable[[str], list[tuple[str, ...]]]


@dataclass(frozen=True)
class ScoredDocument:
    document: KnowledgeDocument
    score: float


@dataclass(frozen=True)
class Ranking:
    found: list[ScoredDocument]
    known_share: float  # the share of the question's words the index knows

    @property
    def relevant(self) -> bool:
        return bool(self.found) and self.found[0].score >= MIN_SCORE and self.known_share >= MIN_KNOWN


class BrandIndex:
    def __init__(self, documents: list[KnowledgeDocument], *, analyzer: Analyzer = analyze_words) -> None:
        self.documents = documents
        self._analyze = analyzer  # the benchmark swaps in its baseline
        self._bm25: bm25s.BM25 | None = None
        self._vocabulary: set[str] = set()
        corpus = [self._terms(doc.title) * TITLE_WEIGHT + self._terms(doc.body) for doc in documents]
        if any(corpus):
            self._bm25 = bm25s.BM25(method="lucene")
            self._bm25.index(corpus, show_progress=False)
            self._vocabulary = {term for term in self._bm25.vocab_dict if term}
        self._by_prefix: dict[str, list[str]] = {}
        for term in self._vocabulary:
            if len(term) >= PREFIX_LENGTH and not term.startswith("_"):
                self._by_prefix.setdefault(term[:PREFIX_LENGTH], []).append(term)

    def _terms(self, text: str) -> list[str]:
        return [term for group in self._analyze(text) for term in group]

    def _query(self, query: str) -> tuple[list[str], float]:
        """The indexed terms to score and the share of the question's words they cover."""
        groups = self._analyze(query[:MAX_QUERY_CHARS])
        terms: list[str] = []
        known = 0
        for group in groups:
            matched = [term for term in group if term in self._vocabulary]
            if not matched and len(group[0]) >= PREFIX_LENGTH:
                matched = self._by_prefix.get(group[0][:PREFIX_LENGTH], [])
            terms += matched
            known += bool(matched)
        return terms, (known / len(groups) if groups else 0.0)

    def rank(self, query: str, limit: int) -> Ranking:
        terms, known_share = self._query(query)
        if self._bm25 is None or not terms or limit <= 0:
            return Ranking([], known_share)
        scores = self._bm25.get_scores(terms)
        order = np.argsort(-scores, kind="stable")[:limit]
        found = [ScoredDocument(self.documents[i], float(scores[i])) for i in order if scores[i] > 0]
        return Ranking(found, known_share)


def _passage(found: ScoredDocument) -> Passage:
    doc = found.document
    return Passage(
        doc_id=doc.slug,
        title=doc.title,
        text=doc.body[:MAX_PASSAGE_CHARS],
        source_url=doc.source_url,
        score=round(found.score, 4),
    )


class LocalKnowledge:
    """agent.ports.Knowledge over the Markdown files, plus the document texts the guardrails need."""

    name = "local"

    def __init__(self, indexes: dict[str, BrandIndex]) -> None:
        self._indexes = indexes

    @classmethod
    def from_directory(cls, knowledge_root: Path) -> LocalKnowledge:
        """Index every brand folder; unreadable documents are left out (validate_catalog reports them)."""
        indexes = {}
        for brand in brand_folders(knowledge_root):
            documents, _ = read_brand_documents(knowledge_root, brand)
            indexes[brand] = BrandIndex(documents)
        return cls(indexes)

    def brands(self) -> list[str]:
        return sorted(self._indexes)

    def _index(self, brand: str) -> BrandIndex:
        try:
            return self._indexes[brand]
        except KeyError:
            raise UnknownBrand(brand) from None

    def search_now(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult:
        """The synchronous search (microseconds of CPU): the benchmark and the async port call it."""
        ranking = self._index(brand).rank(query, limit)
        return KnowledgeResult(passages=[_passage(item) for item in ranking.found], relevant=ranking.relevant)

    async def search(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult:
        return self.search_now(brand, query, limit=limit)

    def documents(self, brand: str) -> list[KnowledgeDocument]:
        return list(self._index(brand).documents)

    def document(self, brand: str, slug: str) -> KnowledgeDocument | None:
        return next((doc for doc in self._index(brand).documents if doc.slug == slug), None)

    def known_amounts(self, brand: str) -> set[int]:
        """Every rouble amount the brand's documents state (the guardrails allow quoting these)."""
        amounts: set[int] = set()
        for doc in self._index(brand).documents:
            amounts |= rub_amounts(doc.body)
        return amounts
