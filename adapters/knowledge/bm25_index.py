"""The local knowledge index: BM25 over stemmed Russian text, one index per brand.

Chosen by bench/kb_retrieval.py (see the README's knowledge section for the figures): Snowball stems plus
concept tags, Lucene-style BM25 over each document's sections, the whole document and its title, and a
prefix fallback for query words the index has never seen (typos, truncations like «долгоп»). A ranking
returns documents, each with the sections that answer the question (best first).

Its imports (bm25s, numpy, the stemmer: ~0.15 s) and building it (~0.05 s) are kept out of start-up:
adapters/knowledge/local.py builds it after start-up or at the first search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import bm25s
import numpy as np

from adapters.knowledge.documents import KnowledgeDocument, Section, split_sections
from adapters.knowledge.text import analyze_words
from agent.logging_setup import quiet_library_loggers

# Importing bm25s set its logger to DEBUG; this module is imported after logging was configured (the
# index is built after start-up), so quiet it again («Building index from tokens» on every build).
quiet_library_loggers(("bm25s",))

TITLE_WEIGHT = 2
PREFIX_LENGTH = 5  # an unseen query stem matches indexed stems sharing its first 5 letters
# A document's score mixes three BM25 scores: its best section (heading and text), the whole document
# (title twice and body: what the document is about overall), and its title alone (a word that names the
# document, like «Менделеево», is strong evidence even when many documents mention it in passing).
DOCUMENT_WEIGHT = 0.5
HEADING_WEIGHT = 0.5  # measured on the quality set: 0 → 289, 0.5 → 291, 1 → 289 good replies
TITLE_FIELD_WEIGHT = 1.5
# A passage is the document's best section, then each next-best section that covers a question word the
# passage does not cover yet («когда смены и сколько стоит» brings «Смены» and «Стоимость»), skipping
# sections scoring under this share of the best (a passing mention).
SECTION_SHARE = 0.3
# A passage shorter than this (a one-line opening) goes on with the sections that follow its best one,
# as in the document, so «налоговый вычет» gets the opening and the amounts after it.
MIN_PASSAGE_CHARS = 400
# "Nothing relevant" (the caller says «уточню у менеджера») unless some document's whole-document score
# is at least MIN_SCORE and the index knows at least MIN_KNOWN of the question's words: off-topic
# questions («рецепт борща», «курс доллара») are mostly words no document uses. The whole-document score
# keeps the threshold's calibration (bench/kb_retrieval.py measures the signal).
MIN_SCORE = 1.0
MIN_KNOWN = 0.5

Analyzer = Callable[[str], list[tuple[str, ...]]]


@dataclass(frozen=True)
class ScoredDocument:
    document: KnowledgeDocument
    score: float  # the ranking score (sections, document and title)
    sections: tuple[Section, ...]  # the matching sections, best first (the intro when none matches)


@dataclass(frozen=True)
class Ranking:
    found: list[ScoredDocument]
    known_share: float  # the share of the question's words the index knows
    best_document_score: float = 0.0  # the best whole-document score (the relevance signal)

    @property
    def relevant(self) -> bool:
        return bool(self.found) and self.best_document_score >= MIN_SCORE and self.known_share >= MIN_KNOWN


class _Field:
    """One BM25 index over a list of term lists (documents, titles or sections)."""

    def __init__(self, corpus: list[list[str]]) -> None:
        self.size = len(corpus)
        self._bm25 = bm25s.BM25(method="lucene")
        # bm25s needs a token in every entry; an empty title or section gets one no query has.
        self._bm25.index([terms or [" "] for terms in corpus], show_progress=False)
        self.vocabulary = {term for term in self._bm25.vocab_dict if term.strip()}

    def scores(self, terms: list[str]) -> np.ndarray:
        known = [term for term in terms if term in self.vocabulary]
        return self._bm25.get_scores(known) if known else np.zeros(self.size)


class BrandIndex:
    def __init__(self, documents: list[KnowledgeDocument], *, analyzer: Analyzer = analyze_words) -> None:
        self.documents = documents
        self._analyze = analyzer  # the benchmark swaps in its baseline
        self._sections = [split_sections(doc.body) for doc in documents]
        self._owner = np.array([i for i, sections in enumerate(self._sections) for _ in sections], dtype=np.int64)
        self._first = np.searchsorted(self._owner, np.arange(len(documents)))  # each document's first section
        self._fields: tuple[_Field, _Field, _Field] | None = None
        self._vocabulary: set[str] = set()
        titles = [self._terms(doc.title) for doc in documents]
        whole = [title * TITLE_WEIGHT + self._terms(doc.body) for title, doc in zip(titles, documents, strict=True)]
        parts = [self._terms(f"{part.heading}\n{part.text}") for sections in self._sections for part in sections]
        # A heading's own words, not the document's title words it repeats («…для вычета» in «Налоговый
        # вычет»): those say nothing about which section answers.
        headings = [
            [term for term in self._terms(part.heading) if term not in set(title)]
            for title, sections in zip(titles, self._sections, strict=True) for part in sections
        ]
        self._section_terms = [frozenset(terms) for terms in parts]
        if any(whole) and len(parts):
            self._fields = (_Field(whole), _Field(titles), _Field(parts), _Field(headings))
            self._vocabulary = set().union(*(field.vocabulary for field in self._fields))
        self._by_prefix: dict[str, list[str]] = {}
        for term in self._vocabulary:
            if len(term) >= PREFIX_LENGTH and not term.startswith("_"):
                self._by_prefix.setdefault(term[:PREFIX_LENGTH], []).append(term)

    def _terms(self, text: str) -> list[str]:
        return [term for group in self._analyze(text) for term in group]

    def _query(self, query: str) -> tuple[list[str], float]:
        """The indexed terms to score and the share of the question's words they cover. A concept tag
        counts once: «смены в лагере» is one mention of camps, not two."""
        groups = self._analyze(query)  # the caller bounds its length (LocalKnowledge.search_now)
        terms: list[str] = []
        known = 0
        for group in groups:
            matched = [term for term in group if term in self._vocabulary]
            if not matched and len(group[0]) >= PREFIX_LENGTH:
                matched = self._by_prefix.get(group[0][:PREFIX_LENGTH], [])
            terms += [term for term in matched if not (term.startswith("_") and term in terms)]
            known += bool(matched)
        return terms, (known / len(groups) if groups else 0.0)

    def rank(self, query: str, limit: int) -> Ranking:
        terms, known_share = self._query(query)
        if self._fields is None or not terms or limit <= 0:
            return Ranking([], known_share)
        whole, titles, parts, headings = self._fields
        section_scores = parts.scores(terms)
        best_section = np.zeros(len(self.documents))
        np.maximum.at(best_section, self._owner, section_scores)
        document_scores = whole.scores(terms)
        scores = best_section + DOCUMENT_WEIGHT * document_scores + TITLE_FIELD_WEIGHT * titles.scores(terms)
        order = np.argsort(-scores, kind="stable")[:limit]
        # Inside a document a section is first of all about what its heading says: a long «Расписание:
        # дни и время занятий» answers «в какие дни занятия» before a short section that mentions the
        # schedule once. (The document ranking stays as measured by bench/kb_retrieval.py.)
        choice_scores = section_scores + HEADING_WEIGHT * headings.scores(terms)
        wanted = frozenset(terms)
        return Ranking(
            [
                ScoredDocument(self.documents[i], float(scores[i]), self._passage_sections(int(i), choice_scores, wanted))
                for i in order
                if scores[i] > 0
            ],
            known_share,
            float(document_scores.max()),
        )

    def _passage_sections(self, doc: int, section_scores: np.ndarray, wanted: frozenset[str]) -> tuple[Section, ...]:
        """The best section, then the next-best ones that cover question words not covered yet."""
        first = int(self._first[doc])
        own = section_scores[first : first + len(self._sections[doc])]
        if not len(own) or own.max() <= 0:
            return tuple(self._sections[doc][:1])  # only the title matched: the document's opening
        sections = self._sections[doc]
        chosen: list[int] = []
        covered: frozenset[str] = frozenset()
        for j in np.argsort(-own, kind="stable"):
            new = (self._section_terms[first + j] & wanted) - covered
            if own[j] < SECTION_SHARE * own.max() or not new:
                continue
            chosen.append(int(j))
            covered |= new
        length = sum(len(sections[j].markdown) for j in chosen)
        for j in range(chosen[0] + 1, len(sections)):
            if length >= MIN_PASSAGE_CHARS:
                break
            if j not in chosen:
                chosen.append(j)
                length += len(sections[j].markdown)
        return tuple(sections[j] for j in chosen)
