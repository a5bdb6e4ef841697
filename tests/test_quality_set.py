"""The labelled answer-quality set (evals/quality/) through the real assistant on the offline policy:
its size, and the targets of issue 13 (good share, no hard-gate violation, median length)."""

from __future__ import annotations

from pathlib import Path

from agent.types import Action, Reply
from evals.quality import Corpus, hard_gates, load_set, run_quality
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent
MIN_GOOD = 0.85  # the target for the offline policy (README «Answer quality»); measured 0.90+


def test_the_set_is_big_enough_and_well_formed() -> None:
    quality = load_set()
    assert len(quality.messages) >= 150 and len(quality.dialogs) >= 30
    ids = [m.id for m in quality.messages] + [d.id for d in quality.dialogs]
    assert len(ids) == len(set(ids))
    assert {"urgent", "price", "contact", "smalltalk", "objection", "brand"} <= {m.category for m in quality.messages}


def test_hard_gates_catch_what_they_promise_to() -> None:
    corpus = Corpus(amounts=frozenset({36900}), text="13.09.2026 17–27 июля")
    said = "Меня зовут Ольга Иванова, 8 916 123-45-67"
    bad = Reply(text="Ольга Иванова, ваш номер 89161234567. Курс стоит 12 345 ₽ со скидкой, старт 01.02.2027, "
                     "менеджер завтра позвонит. Наш партнёр Фотон тоже поможет.")
    gates = hard_gates(said, bad, corpus=corpus, brand="kmipt", urgent=True, name="Ольга Иванова")
    joined = " | ".join(gates)
    for expected in ("invented amount", "invented date", "full phone echoed", "full name echoed",
                     "urgent topic not handed over", "unbacked promise", "another brand"):
        assert expected in joined, joined
    fine = Reply(text="Курс стоит 36 900 ₽, старт 13.09.2026; мы не можем гарантировать результат.", actions=[Action.handoff])
    assert hard_gates(said, fine, corpus=corpus, brand="kmipt", urgent=True, name="Ольга Иванова") == []
    demo = Reply(text="Занятия в УНПК МФТИ в Долгопрудном")
    assert hard_gates("где вы?", demo, corpus=corpus, brand="demo", urgent=False, name=None)


async def test_the_offline_policy_meets_the_targets(tmp_path: Path) -> None:
    report = await run_quality(make_settings(tmp_path), REPO)
    gates = [(o.id, g) for o in report.outcomes for g in o.gates]
    assert gates == []
    assert report.good_share >= MIN_GOOD, [(o.id, o.problems) for o in report.outcomes if not o.good]
    assert report.median_length <= 450
