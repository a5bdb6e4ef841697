#!/usr/bin/env python3
"""Retrieval quality and speed of the local knowledge index on the labelled questions.

    python bench/kb_retrieval.py [--brand kmipt] [--questions bench/data/kb_questions.yaml] [--repeat 20]

Prints hit@1 and hit@3 (the labelled document among the first 1 / 3), the "nothing relevant" signal on
the questions no document answers (`doc: null`), and p50/p99 query time, for the shipped analyser and
for a baseline measured in the same run (the same BM25 on plain lower-cased words: no stemming, no
concept tags). Targets: hit@3 >= 0.9, p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.knowledge.documents import read_brand_documents  # noqa: E402
from adapters.knowledge.bm25_index import Analyzer, BrandIndex  # noqa: E402
from adapters.knowledge.local import LocalKnowledge  # noqa: E402
from adapters.knowledge.text import STOPWORDS, analyze_words, words  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "kb_questions.yaml"
KNOWLEDGE = ROOT / "knowledge"


@dataclass
class Figures:
    answerable: int
    unanswerable: int
    hit_at_1: float
    hit_at_3: float
    no_answer_precision: float  # of the questions flagged "nothing relevant", the share truly unanswerable
    no_answer_recall: float  # of the unanswerable questions, the share flagged
    false_no_answer: float  # of the answerable questions, the share wrongly flagged
    p50_ms: float
    p99_ms: float
    misses: list[tuple[str, str, list[str]]]


def plain_words(text: str) -> list[tuple[str, ...]]:
    return [(word,) for word in words(text) if word not in STOPWORDS]


def load_questions(path: Path = QUESTIONS) -> list[dict[str, str | None]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def evaluate(
    questions: list[dict[str, str | None]],
    *,
    brand: str = "kmipt",
    knowledge_root: Path = KNOWLEDGE,
    analyzer: Analyzer = analyze_words,
    repeat: int = 1,
) -> Figures:
    documents, _ = read_brand_documents(knowledge_root, brand)
    knowledge = LocalKnowledge({brand: documents}, build_index=lambda docs: BrandIndex(docs, analyzer=analyzer))
    hits1 = hits3 = flagged = flagged_right = null_count = wrongly_flagged = 0
    misses = []
    for item in questions:
        result = knowledge.search_now(brand, str(item["q"]), limit=3)
        ranked = [p.doc_id for p in result.passages]
        expected = item["doc"]
        flagged += not result.relevant
        if expected is None:
            null_count += 1
            flagged_right += not result.relevant
            continue
        wrongly_flagged += not result.relevant
        hits1 += ranked[:1] == [expected]
        hits3 += expected in ranked
        if expected not in ranked:
            misses.append((str(item["q"]), str(expected), ranked))
    timings = []
    for _ in range(repeat):
        for item in questions:
            started = time.perf_counter()
            knowledge.search_now(brand, str(item["q"]), limit=3)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    answerable = len(questions) - null_count
    return Figures(
        answerable=answerable,
        unanswerable=null_count,
        hit_at_1=_share(hits1, answerable),
        hit_at_3=_share(hits3, answerable),
        no_answer_precision=_share(flagged_right, flagged),
        no_answer_recall=_share(flagged_right, null_count),
        false_no_answer=_share(wrongly_flagged, answerable),
        p50_ms=statistics.median(timings) if timings else 0.0,
        p99_ms=timings[min(len(timings) - 1, int(len(timings) * 0.99))] if timings else 0.0,
        misses=misses,
    )


def _row(name: str, f: Figures) -> str:
    return (
        f"{name:<10} hit@1 {f.hit_at_1:.3f}  hit@3 {f.hit_at_3:.3f}  "
        f"no-answer precision {f.no_answer_precision:.3f} recall {f.no_answer_recall:.3f} "
        f"(answerable wrongly flagged {f.false_no_answer:.3f})  p50 {f.p50_ms:.3f} ms  p99 {f.p99_ms:.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brand", default="kmipt")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--knowledge", type=Path, default=KNOWLEDGE)
    parser.add_argument("--repeat", type=int, default=20, help="timing passes over the question set")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    questions = load_questions(args.questions)
    common = {"brand": args.brand, "knowledge_root": args.knowledge, "repeat": args.repeat}
    baseline = evaluate(questions, analyzer=plain_words, **common)
    shipped = evaluate(questions, **common)
    print(f"{len(questions)} questions ({shipped.answerable} answerable, {shipped.unanswerable} with no answer)")
    print(_row("baseline", baseline))
    print(_row("shipped", shipped))
    print(
        f"ratio shipped/baseline: hit@1 x{shipped.hit_at_1 / max(baseline.hit_at_1, 1e-9):.2f}, "
        f"hit@3 x{shipped.hit_at_3 / max(baseline.hit_at_3, 1e-9):.2f}, "
        f"p99 x{shipped.p99_ms / max(baseline.p99_ms, 1e-9):.2f}"
    )
    targets_met = shipped.hit_at_3 >= 0.9 and shipped.p99_ms <= 5.0
    print(f"targets (hit@3 >= 0.9, p99 <= 5 ms): {'met' if targets_met else 'NOT met'}")
    if args.show_misses:
        for question, expected, ranked in shipped.misses:
            print(f"  miss: {question!r} -> expected {expected}, got {ranked}")
    return 0 if targets_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
