"""Russian text analysis for the local knowledge index: words -> stems, plus a few concept tags.

Snowball's Russian stemmer makes «вычет», «вычета», «вычетом» one term (pymorphy3 lemmas measured no
better on bench/kb_retrieval.py and need a 10 MB dictionary). The concept groups are small and general
on purpose: the slang and everyday words parents use for things the documents name formally.
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer
from bm25s.stopwords import STOPWORDS_RUSSIAN

_WORD_RE = re.compile(r"[a-zа-я0-9]+")
# Question words carry the topic here («где» -> addresses, «кто вы» -> about), so they stay; the
# politeness and request fillers of a chat message go.
STOPWORDS = frozenset(STOPWORDS_RUSSIAN) - {"где", "когда", "куда", "кто", "раз", "нет"} | {
    "пожалуйста", "подскажите", "скажите", "дайте", "скиньте", "пришлите", "хочу", "хотим", "хотела",
    "хотел", "вообще", "чтоли", "нибудь", "какие", "какую", "каких",
    # possessives the list lacks: «ваши курсы» asks about courses, not about a «ваш» in some section
    "ваш", "ваши", "наш", "наши", "твой", "свой",
}

# Concept groups: everyday words for one thing. A word of a group also yields the group's tag, in the
# documents and in questions alike, so «почём», «стоит» and «стоимость» meet. Keep it small and general.
# A word whose stem is too short to trust (see MIN_CONCEPT_STEM) lists its inflected forms itself
# («цена», «цены», «цену»…; «очный», «очные»…), or only the listed form would carry the tag.
CONCEPTS: dict[str, tuple[str, ...]] = {
    "price": (
        "цена", "цены", "цену", "цене", "ценой", "цен", "ценах", "стоимость", "стоит", "стоят", "стоить",
        "прайс", "почем", "расценки", "тариф",
    ),
    "payment": ("оплата", "оплатить", "платить", "заплатить", "платеж", "реквизиты"),
    "instalment": ("рассрочка", "кредит", "частями", "долями", "сплит"),
    "discount": ("скидка", "акция", "промокод", "льгота"),
    "refund": ("возврат", "вернуть", "вернете", "вернут"),
    "online": ("онлайн", "дистанционно", "дистанционное", "дистант", "удаленно", "зум", "зуме", "зуму", "зумом", "zoom", "вебинар"),
    "inperson": ("очно", "очный", "очное", "очная", "очные", "очных", "очную", "очной", "очка", "вживую"),
    "illness": ("болеть", "болел", "болеет", "заболел", "болезнь", "больничный"),
    "pause": ("заморозить", "заморозка", "заморозку", "приостановить", "отложить", "перерыв", "пауза"),
    "camp": ("лагерь", "смена", "путевка"),
    "start": (
        "начало", "начался", "началось", "начинается", "начинаются", "начнутся", "начнется", "начать", "начнем",
        "старт", "стартует", "стартуют",
    ),
    "lodging": ("проживание", "жить", "живут", "ночевка", "ночевки", "ночевать", "комната"),
    "food": ("питание", "кормят", "еда", "обед"),
    "math": ("математика", "матеша", "матешу", "матеше", "матан"),
    "informatics": ("информатика", "инфа", "программирование"),
    "subject": ("предмет", "химия", "биология", "английский", "история", "литература", "обществознание"),
    "maternity": ("маткапитал", "маткапиталом", "материнский"),
    "bot": ("бот", "робот", "нейросеть", "ии", "помощник"),
    "human": ("оператор", "человек", "человеком", "менеджер"),
    "address": ("адрес", "находитесь", "филиал", "площадка"),
    "contact": ("телефон", "позвонить", "почта", "email", "связаться", "контакты"),
}


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("russian")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower().replace("ё", "е"))


MIN_CONCEPT_STEM = 4  # shorter stems are ambiguous («почём» and «почему» both stem to «поч»)


@lru_cache(maxsize=1)
def _concepts() -> tuple[dict[str, str], dict[str, str]]:
    """(word -> tag, stem -> tag): a listed word always counts, its other forms only via a long stem."""
    by_word = {word: tag for tag, group in CONCEPTS.items() for word in group}
    by_stem = {stem(word): tag for word, tag in by_word.items() if len(stem(word)) >= MIN_CONCEPT_STEM}
    return by_word, by_stem


@lru_cache(maxsize=1)
def _stop_stems() -> frozenset[str]:
    # Filtering stems too catches forms the list misses («какие» -> «как»).
    return frozenset(stem(word) for word in STOPWORDS)


def analyze_words(text: str) -> list[tuple[str, ...]]:
    """One group per meaningful word: its stem, then its concept tag when it has one."""
    by_word, by_stem = _concepts()
    stop_stems = _stop_stems()
    groups: list[tuple[str, ...]] = []
    for word in words(text):
        if word in STOPWORDS:
            continue
        term = stem(word)
        if term in stop_stems:
            continue
        tag = by_word.get(word) or by_stem.get(term)
        groups.append((term, "_" + tag) if tag else (term,))
    return groups


def analyze(text: str) -> list[str]:
    return [term for group in analyze_words(text) for term in group]
