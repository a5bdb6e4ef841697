from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.knowledge.documents import DocumentError, Section, read_brand_documents, read_document, split_sections
from adapters.knowledge.local import LocalKnowledge
from adapters.knowledge.text import analyze
from agent.errors import UnknownBrand
from bench.kb_retrieval import evaluate, load_questions
from tests.conftest import REPO


@pytest.fixture(scope="module")
def knowledge() -> LocalKnowledge:
    return LocalKnowledge.from_directory(REPO / "knowledge")


def test_inflected_forms_share_a_term() -> None:
    assert analyze("вычет") == analyze("вычета") == analyze("вычетом")
    assert analyze("Ёлка") == analyze("елка")


@pytest.mark.parametrize("question", ["налоговый вычет", "как оформить вычета", "справка для вычетом"])
async def test_every_form_finds_the_tax_document(knowledge: LocalKnowledge, question: str) -> None:
    result = await knowledge.search("kmipt", question)
    assert result.relevant
    top = result.passages[0]
    assert top.doc_id == "tax-deduction"
    assert top.title == "Налоговый вычет за обучение"
    assert top.source_url == "https://kmipt.ru/courses/"  # the first page among the sources, not a fact number


async def test_the_passage_is_the_sections_that_answer(knowledge: LocalKnowledge) -> None:
    """A passage is the document's matching sections, best first, not the document's opening."""
    general = (await knowledge.search("kmipt", "как оформить вычета")).passages[0]
    assert general.text.startswith("За обучение ребёнка")
    certificate = (await knowledge.search("kmipt", "справка для вычета")).passages[0]
    assert certificate.text.startswith("## Как получить справку для вычета") and "до 10 рабочих дней" in certificate.text
    # two questions in one message: the section with both answers first, the price not cut off
    camp = (await knowledge.search("kmipt", "Когда смены в лагере Менделеево и сколько стоит путёвка?")).passages[0]
    assert camp.doc_id == "summer-camp"
    assert "17–27 июля 2027" in camp.text and "99 750 ₽" in camp.text
    assert camp.text.count("## Смена 2027") == 1
    # a question about one aspect does not drag in every section that shares a word
    second = (await knowledge.search("kmipt", "Если ребёнок пойдёт сразу на математику и физику, будет скидка?")).passages[0]
    assert second.doc_id == "discounts" and second.text.startswith("## Какие скидки есть")
    assert "Промокодов" not in second.text


def test_sections_split_at_headings() -> None:
    body = "Вступление.\n\n## Цена\n\n- 100 ₽ # не заголовок\n\n## Пусто\n\n### Даты\nИюль"
    assert split_sections(body) == [
        Section("", "Вступление."),
        Section("Цена", "- 100 ₽ # не заголовок"),
        Section("Пусто", ""),
        Section("Даты", "Июль"),
    ]
    assert split_sections("Без заголовков.") == [Section("", "Без заголовков.")]
    assert Section("Цена", "100 ₽").markdown == "## Цена\n100 ₽"


def test_inflected_concept_words_share_the_tag() -> None:
    """Short stems («цен», «очн») are not trusted, so the listed forms carry the tag."""
    assert "_price" in analyze("цены") and "_price" in analyze("цену") and "_price" in analyze("стоит")
    assert "_inperson" in analyze("очные курсы")


async def test_colloquial_words_reach_the_formal_document(knowledge: LocalKnowledge) -> None:
    assert (await knowledge.search("kmipt", "можно маткапиталом")).passages[0].doc_id == "maternity-capital"
    assert (await knowledge.search("kmipt", "есть сплит?")).passages[0].doc_id == "instalments"


async def test_nothing_relevant_signal(knowledge: LocalKnowledge) -> None:
    for question in ("рецепт борща", "какой курс доллара сегодня", "", "!!!", "и в на"):
        result = await knowledge.search("kmipt", question)
        assert result.relevant is False, question


async def test_limit_and_huge_queries_are_bounded(knowledge: LocalKnowledge) -> None:
    assert len((await knowledge.search("kmipt", "оплата скидка лагерь", limit=5)).passages) == 5
    assert (await knowledge.search("kmipt", "оплата", limit=0)).passages == []
    huge = await knowledge.search("kmipt", "оплата " * 50_000)
    assert huge.passages[0].doc_id in {"payment", "instalments", "prices"}


async def test_brands_are_separate(knowledge: LocalKnowledge) -> None:
    demo = LocalKnowledge.from_directory(REPO / "tests" / "data" / "knowledge")
    assert demo.brands() == ["demo"]
    result = await demo.search("demo", "как оплатить курс")
    assert result.passages[0].doc_id == "payment" and "Школе Демо" in result.passages[0].text
    with pytest.raises(UnknownBrand):
        await knowledge.search("demo", "оплата")


def test_documents_and_known_amounts(knowledge: LocalKnowledge) -> None:
    documents = knowledge.documents("kmipt")
    assert len(documents) >= 25
    assert all(doc.title and doc.sources and doc.facts and doc.checked_at for doc in documents)
    amounts = knowledge.known_amounts("kmipt")
    assert {14300, 110000, 49000, 36900, 99750} <= amounts
    assert not {18800, 34400, 120000, 89900} & amounts  # withdrawn figures are gone
    assert knowledge.document("kmipt", "refunds") is not None
    assert knowledge.document("kmipt", "nope") is None


def test_bad_documents_are_reported_not_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "kb" / "acme"
    folder.mkdir(parents=True)
    (folder / "ok.md").write_text("---\ntitle: Оплата\nsources: [https://acme.ru/pay]\n---\nОплата картой.\n", encoding="utf-8")
    (folder / "no-front.md").write_text("Просто текст\n", encoding="utf-8")
    (folder / "no-title.md").write_text("---\nsources: [https://acme.ru/]\n---\nТекст\n", encoding="utf-8")
    (folder / "empty.md").write_text("---\ntitle: Пусто\nsources: [https://acme.ru/]\n---\n", encoding="utf-8")
    documents, issues = read_brand_documents(tmp_path / "kb", "acme")
    assert [d.slug for d in documents] == ["ok"]
    assert {(i.item, i.field) for i in issues} == {("no-front", None), ("no-title", "title"), ("empty", "body")}
    with pytest.raises(DocumentError):
        read_document("acme", folder / "no-title.md")
    assert LocalKnowledge.from_directory(tmp_path / "kb").documents("acme")[0].slug == "ok"


def test_benchmark_quality_on_the_real_data() -> None:
    """The benchmark's own code on the labelled set: quality only (speed is the benchmark's business)."""
    questions = load_questions()
    assert len(questions) >= 80
    figures = evaluate(questions, repeat=0)
    assert figures.hit_at_3 >= 0.9, figures.misses
    assert figures.no_answer_recall >= 0.5
    assert figures.false_no_answer <= 0.15


def test_building_the_index_after_start_up_keeps_bm25s_quiet() -> None:
    """bm25s sets its logger to DEBUG when imported; the index (and so bm25s) is loaded after logging is
    configured now, which must still leave it at WARNING (no «Building index from tokens» lines)."""
    probe = (
        "import logging; from agent.logging_setup import configure_logging; configure_logging('INFO'); "
        "import adapters.knowledge.bm25_index; print(logging.getLogger('bm25s').getEffectiveLevel())"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(logging.WARNING)
