"""Short, precise answers from the knowledge base, the same for the offline policy and kb_file_search.

The search runs on the question's content words: funnel words («11 класс», «ЕГЭ», «онлайн», «сыну 10
лет») say who asks, not what about, and pulled the wrong document («Когда начнутся занятия у 9
класса?» got the grades table). A result must also agree on the season and on named places and camps:
a summer question never gets the winter document. The answer is the one best section, without its
Markdown heading, cut at a sentence within MAX_ANSWER_CHARS, and its source as a link; when nothing fits,
the caller says so honestly instead of showing a near miss.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.ports import Knowledge, Passage

log = logging.getLogger(__name__)

PRICE_RUNNER_UP = 0.8  # how close (share of the top score) a priced runner-up must be to answer a price question
MAX_ANSWER_CHARS = 380  # the section; with the source link a reply stays within ~450 characters
MIN_SECTION_CHARS = 120  # a one-line section goes on with the next one
SEARCH_LIMIT = 5

# Who is asking rather than what about: removed from the search query (kept in the funnel).
_FUNNEL_WORDS = re.compile(
    r"\b(?<!\d[-–])(?:(?:в|во|для|у)\s+)?(?:1[01]|[1-9])\s*-?\s*(?:[йм]|ый|ой|ом|го)?\s*(?:класс\w*|клас\w*|кл\b\.?)"
    r"|\b\w+классни\w*"
    r"|\b(?:сын\w*|доч\w*|реб[её]нк?\w*|внук\w*)\s+(?:\d{1,2}|\w+)\s+(?:лет|год\w*)"
    r"|\b(?:для|у|моего|моей|нашего|нашей)\s+(?:сына|дочки|дочери|ребенка|ребёнка|школьника)\b"
    r"|\b(?:перв|втор|трет|четв[её]рт|пят|шест|седьм|восьм|девят|десят|одиннадцат)\w*\s+клас\w*",
    re.IGNORECASE,
)
_CONTENT_WORD = re.compile(r"[а-яёa-z]{4,}", re.IGNORECASE)
_FILLER = frozenset(
    "здравствуйте добрый день вечер пожалуйста подскажите скажите спасибо хотела хотел хочу хотим узнать "
    "интересует интересно вообще можно будет есть какая какой какие какое сколько когда этот эта этой "
    "ваши вашей ваша наши наша наше нашем нужно надо тоже также очень просто".split()
)
SEASONS = {
    "summer": re.compile(r"лет(?:о|н\w*|ом|а)\b|июн|июл|август", re.IGNORECASE),
    "winter": re.compile(r"зим|январ|декабр|феврал|новогод", re.IGNORECASE),
}
# Documents about one kind of program answer only questions that name it: «Когда начнутся занятия?» is
# not about the winter camp, «стоимость занятий за месяц» not about the olympiad course.
TOPICS = {
    "camp": re.compile(r"лагер|\bсмен|путевк|\bлвш|\bзвш|менделеев|подлипк", re.IGNORECASE),
    "olympiad": re.compile(r"олимпиад|физтех", re.IGNORECASE),
    "intensive": re.compile(r"интенсив", re.IGNORECASE),
}
_GENERAL = re.compile(r"курс|цен|заняти|оплат|скидк|формат|групп", re.IGNORECASE)
# A quoted or capitalised name in mid-sentence: «Менделеево», Сретенка, Подлипки.
# «мы из Новосибирска», «мы в Подольске», «живём в Химках» say who asks, not what about.
_NAMED = re.compile(r"«([^»]{3,40})»|(?<=[\s,(])(?<!\b[Ии]з\s)(?<!\b[Мм]ы\sв\s)(?<!\bживем\sв\s)(?<!\bживём\sв\s)([А-ЯЁ][а-яё]{3,})")
_NOT_ENTITIES = frozenset("ЕГЭ ОГЭ МФТИ Москва Москве Здравствуйте Спасибо Подскажите".split())
PRICE_WORDS = re.compile(r"стои|стоим|цен[аыуе]|почем|почём|прайс|сколько\s+(?:будет\s+)?(?:стоить|платить)", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s*(.*)$", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[^\d\s])[.!?…](?=\s|$)")
# Abbreviations of addresses and places: their dot ends no sentence («пр. Пацаева», «ул. Сретенка»).
_ABBREVIATION = re.compile(r"(?:^|[\s(«])(?:пр|ул|пер|пос|д|г|м|им|стр|корп|каб|ш|наб|пл|р-н)\.$", re.IGNORECASE)


_WHERE = "адрес"
_WHEN = "расписание время занятий"
# «Во сколько вы работаете?» asks for the office hours, not the timetable.
_OFFICE = re.compile(r"работает|работаете|на\s+связи|открыт|звонить|офис|менеджер", re.IGNORECASE)
# Words in nearly every line of a timetable or a price list: they do not tell its lines apart.
_EVERYWHERE = frozenset({"заня", "курс", "клас", "груп"})
# «Во сколько начинаются занятия» asks for the time of day, not for the start of the school year; a bare
# «во сколько?» too, and its «сколько» must not pick the section titled «Сколько раз в неделю».
_TIME_OF_DAY = re.compile(r"\bво\s+сколько\b(?:\s+(?:начина\w*|заканчива\w*|конча\w*|начало))?", re.IGNORECASE)
# «Когда (проходят) занятия у младших?» asks for the days of the timetable; its «когда» must not pick the
# section titled «Когда начались занятия» (the start of the school year).
_WHEN_HELD = re.compile(r"\bкогда\s+(?:проходят\s+|идут\s+|бывают\s+)?(?=занятия\b(?!\s+(?:начн|начина|старт)))", re.IGNORECASE)
# What a question asks for when its key is a question word the index drops («где», «во сколько»): the
# words of the section that answers that kind of question, added to the search.
_ASKED_FOR = [
    (re.compile(r"\bгде\b|\bадрес|находит|\bметро\b|\bплощадк|\bфилиал"
                r"|(?:есть|проходят|идут|бывают)\s+(?:ли\s+)?(?:у\s+вас\s+)?занятия\s+(?:в|во|на)\s+\w+", re.IGNORECASE), _WHERE),
    (re.compile(r"\bво\s+сколько\b|\bв\s+какое\s+время|\bв\s+котор\w+\s+час|\bв\s+какие\s+дни|\bпо\s+каким\s+дням"
                r"|\bкакие\s+дни|\bв\s+будни|\bпо\s+будням|\bпо\s+выходным|\bдни\s+занятий"
                r"|\bкогда\s+(?:проходят\s+|идут\s+|бывают\s+)?занятия\b(?!\s+начн)|\bвремя\s+занятий", re.IGNORECASE), _WHEN),
    (re.compile(r"\bкак\s+(?:можно\s+|мне\s+|нам\s+)?(?:о|за)?платить|\bспособ\w*\s+оплат|\bчем\s+(?:можно\s+)?платить", re.IGNORECASE),
     "способы оплаты"),
    (re.compile(r"сколько\s+(?:\w+\s+)?(?:учеников|детей|человек|ребят|школьников)\b|наполняемост|размер\w*\s+групп"
                r"|(?:больш|маленьк|небольш|многолюдн)\w*\s+(?:\w+\s+)?групп|групп\w*\s+(?:\w+\s+)?(?:больш|маленьк|небольш|многолюдн)",
                re.IGNORECASE), "сколько человек в группе"),
    # «есть места?»: the section on enrolment, where the content says who confirms a seat
    (re.compile(r"(?:есть|остал\w*|свободн\w*)\s+(?:ли\s+)?(?:ещ[её]\s+)?мест(?:а|о)?\b|\bмест(?:а|о)?\s+(?:ещ[её]\s+)?(?:есть|остал)", re.IGNORECASE),
     "наличие мест подтверждает менеджер"),
]


# «мы в Подольске», «я из Твери», «живём в Химках»: who asks, not what about — a town no document names
# made the whole question look unknown («а онлайн можно? мы в Подольске» got «нет точного ответа»).
# The school's own places stay: «мы в Долгопрудном» may ask about the site there.
_WHO_ASKS = re.compile(
    r"\b(?:(?:[Мм]ы|[Яя])\s+(?:живем\s+|живём\s+|живу\s+)?|[Жж]ив[её]м\s+|[Жж]иву\s+)(?:в|во|из)\s+"
    r"(?!Долгопрудн|Москв|Менделеев|Подлипк|Лобн|Жуковск|Сретенк|Красносельск|Пацаев)[А-ЯЁ][\w-]+"
)


def _without_funnel_words(question: str) -> str:
    question = _WHO_ASKS.sub(" ", question)
    question = _WHEN_HELD.sub(" дни ", _TIME_OF_DAY.sub(" время ", question))
    stripped = " ".join(_FUNNEL_WORDS.sub(" ", question).split())
    return stripped if content_words(stripped) else question


def search_query(question: str) -> str:
    """The question without funnel words (unless nothing meaningful would be left), with the words of
    the kind of section its question word asks for."""
    named = entities_of(question) or topics_of(question)  # «Менделеево это где?» names what it asks about
    hints = [
        words for pattern, words in _ASKED_FOR
        if pattern.search(question) and not (named and words == _WHERE) and not (words == _WHEN and _OFFICE.search(question))
    ]
    return " ".join([_without_funnel_words(question), *hints])


def content_words(text: str) -> list[str]:
    return [w.lower() for w in _CONTENT_WORD.findall(text) if w.lower() not in _FILLER]


def seasons_of(text: str) -> set[str]:
    return {name for name, pattern in SEASONS.items() if pattern.search(text)}


def entities_of(text: str) -> set[str]:
    found = set()
    for match in _NAMED.finditer(text):
        word = (match.group(1) or match.group(2) or "").strip()
        if word and word not in _NOT_ENTITIES:
            found.add(word.lower()[:6])
    return found


def topics_of(text: str) -> set[str]:
    return {name for name, pattern in TOPICS.items() if pattern.search(text)}


def _sections(markdown: str) -> list[str]:
    return [p.strip() for p in re.split(r"^(?=#{1,6}\s)", markdown, flags=re.MULTILINE) if p.strip()]


def fitting_sections(passage: Passage, seasons: set[str], entities: set[str], topics: set[str]) -> list[str]:
    """The passage's sections (best first) that may answer the question: the season agrees (a summer
    question never gets the winter document), named places and camps appear, and a section about a
    camp, an olympiad or an intensive answers only a question that names it."""
    title_seasons = seasons_of(passage.title)
    if seasons and title_seasons and not (seasons & title_seasons):
        return []
    whole = f"{passage.title}\n{passage.text}".lower()
    if not all(entity in whole for entity in entities):
        return []
    # A section is about what its heading names, or what the title names when the document is about
    # one kind of program only («Зимний лагерь»; not «Цены на курсы и лагеря»).
    title_topics = set() if _GENERAL.search(passage.title) else topics_of(passage.title)
    kept = []
    for section in _sections(passage.text):
        heading = section.splitlines()[0] if section.startswith("#") else ""
        if (topics_of(heading) or title_topics) - topics:
            continue
        if seasons and seasons_of(section) and not (seasons & seasons_of(section)):
            continue
        kept.append(section)
    if not kept and not (topics_of(passage.title) - topics):
        kept = _sections(passage.text)[:1]  # the document itself is on topic: its best section stands
    return kept


def _sentence_ends(text: str) -> list[int]:
    """Where the text's sentences end (not at a list number like «3.» or an abbreviation like «пр.»)."""
    return [m.end() for m in _SENTENCE_END.finditer(text) if not _ABBREVIATION.search(text[: m.end()])]


def shorten(text: str, limit: int) -> str:
    """Cut at the last full sentence or line within the limit (not at a list number like «3.» or an
    abbreviation like «пр.»)."""
    if len(text) <= limit:
        return text
    ends = _sentence_ends(text[:limit])
    ends.append(text[:limit].rfind("\n"))  # a list line ending in a time («…14:00–16:00.») ends there too
    if max(ends) > limit // 3:
        return text[: max(ends)].strip()
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:—-") + "…"


def plain(markdown: str) -> str:
    """Chat text from Markdown: a heading becomes a lead-in line («Стоимость путёвки:»), no emphasis
    markers, list dashes kept."""
    text = _HEADING.sub(lambda m: f"{m.group(1).strip().rstrip(':.')}:" if m.group(1).strip() else "", markdown)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def best_section(sections: list[str], limit: int = MAX_ANSWER_CHARS) -> str:
    """The first (best-ranked) section; the next ones only while the whole still fits (a second
    question in the message: «когда смены и сколько стоит»), or when the first is a mere line."""
    parts = [plain(section) for section in sections]
    if not parts:
        return ""
    chosen = parts[0]
    for extra in parts[1:]:
        if len(chosen) >= MIN_SECTION_CHARS and len(chosen) + len(extra) + 1 > limit:
            break
        chosen = f"{chosen}\n{extra}".strip()
    return chosen


@dataclass(frozen=True)
class Answer:
    title: str
    text: str  # the best section, plain and short
    source_url: str | None

    def render(self, note: str = "") -> str:
        link = f"\n\nИсточник: {self.source_url}" if self.source_url else ""
        extra = f"\n\n{note}" if note else ""
        return f"{self.text}{extra}{link}"


async def find_passages(knowledge: Knowledge, brand: str, question: str, *, limit: int = 3) -> tuple[bool, list[Passage]]:
    """(relevant, passages) for a question: searched with its content words, filtered by season and
    named entities. Raises what the knowledge base raises."""
    found = await knowledge.search(brand, search_query(question), limit=SEARCH_LIMIT)
    seasons, entities, topics = seasons_of(question), entities_of(question), topics_of(question)
    fitting = []
    for passage in found.passages:
        sections = fitting_sections(passage, seasons, entities, topics)
        if sections:
            fitting.append(passage.model_copy(update={"text": "\n\n".join(sections)}))
    return found.relevant and bool(fitting), fitting[:limit]


def covers(question: str, text: str) -> bool:
    """The section shares enough of the question's content words (4-letter stems) to be its answer, not
    a near miss: one of one or two words, a third of longer questions."""
    asked = {w[:4] for w in content_words(search_query(question))}
    if len(asked) <= 1 or (PRICE_WORDS.search(question) and "₽" in text):
        return True  # one word («где вы находитесь?»): the index's own relevance decides
    have = {w[:4] for w in content_words(text)}
    return len(asked & have) >= max(1, round(len(asked) / 3))


_SPLIT = re.compile(r"\?\s*|[,;]?\s+(?:и|а\s+также|а|ещё|еще)\s+(?=(?:сколько|где|когда|как|можно|есть|какие|какой|какая|что)\b)", re.IGNORECASE)


def split_questions(question: str, asks: Callable[[str], bool]) -> list[str]:
    """«Сколько стоит очно 8 класс и сколько детей в группе?» -> two questions (at most three); a part
    that asks nothing («У нас региональный капитал») stays with the question before it."""
    pieces: list[tuple[str, bool]] = []  # each part, and whether the parent ended it with «?»
    start = 0
    for match in _SPLIT.finditer(question):
        pieces.append((question[start:match.start()], match.group().startswith("?")))
        start = match.end()
    pieces.append((question[start:], False))
    parts: list[str] = []
    for piece, questioned in pieces:
        part = piece.strip(" ,.;")
        if not content_words(part):
            continue
        # «…онлайн? и домашку проверяют?»: a question mark asks even without a question word, unless
        # the part is a mere follow-up of one word («Кто преподаёт? Из МФТИ?»)
        if parts and not ((questioned and len(content_words(part)) > 1) or asks(part)):
            parts[-1] = f"{parts[-1]}. {part}"
        else:
            parts.append(part)
    return parts[:3] or [question]


def with_earlier_subject(part: str, earlier: str) -> str:
    """«Сколько стоит лагерь и что входит в стоимость?»: the second question is about the camp too. A
    question that names no kind of program and no season of its own is searched with those the
    questions before it in the same message name."""
    if topics_of(part) or seasons_of(part):
        return part
    named = [m.group(0) for pattern in (*TOPICS.values(), *SEASONS.values()) for m in pattern.finditer(earlier)]
    return f"{part} {' '.join(dict.fromkeys(named))}" if named else part


def with_context(question: str, topic: str | None) -> str:
    """A bare follow-up («а цена?», «Сколько стоит?») is about the topic of the previous answer."""
    if topic and len(content_words(search_query(question))) <= 1:
        return f"{question} {topic}"
    return question


async def find_answer(knowledge: Knowledge, brand: str, question: str, *, limit: int = MAX_ANSWER_CHARS) -> Answer | None:
    """The one best section for the question, or None when nothing relevant enough is there."""
    relevant, passages = await find_passages(knowledge, brand, question, limit=2)
    if not relevant or not passages:
        return None
    passage = passages[0]
    if PRICE_WORDS.search(question) and len(passages) > 1:
        # A price question gets the close runner-up that states a price over a section that only points
        # elsewhere («сколько стоит летний лагерь?»: the camp's price, not «see the summer school»).
        runner = passages[1]
        priced = "₽" in best_section(_sections(runner.text), limit)
        if priced and "₽" not in best_section(_sections(passage.text), limit) and runner.score >= PRICE_RUNNER_UP * passage.score:
            passage = runner
    text = best_section(_sections(passage.text), limit)
    if not text or not covers(question, f"{passage.title}\n{text}"):
        return None
    text = same_season(text, seasons_of(question))
    return Answer(title=passage.title, text=shorten(focused(text, question, limit), limit), source_url=passage.source_url)


def same_season(text: str, seasons: set[str]) -> str:
    """A list's lines about another season go («зимняя выездная школа» does not list the July camp)."""
    if not seasons:
        return text
    kept = [
        line for line in text.splitlines()
        if not (line.lstrip().startswith(("-", "•")) and seasons_of(line) and not (seasons_of(line) & seasons))
    ]
    return "\n".join(kept) if any(line.lstrip().startswith(("-", "•")) for line in kept) else text


def focused(text: str, question: str, limit: int) -> str:
    """A list too long to show whole starts with the lines that name what the question names («онлайн
    в будни» gets the weekday online line of the timetable first, not only the first lines that fit)."""
    if len(text) <= limit:
        return text
    lines = text.splitlines()
    items = [i for i, line in enumerate(lines) if line.lstrip().startswith(("-", "•"))]
    asked = {w[:4] for w in content_words(_without_funnel_words(question))} - _EVERYWHERE
    scores = {i: len(asked & {w[:4] for w in content_words(lines[i])}) for i in items}
    best = max(scores.values(), default=0)
    if best == 0 or all(score == best for score in scores.values()):
        return text
    first = [i for i in items if scores[i] == best]
    rest = [i for i in items if scores[i] != best]
    at = items[0]
    intro = list(range(at))
    if sum(len(lines[i]) + 1 for i in intro) + len(lines[first[0]]) > limit:
        intro = []  # the lines before the list would leave no room for the one asked about (a short budget)
    order = intro + first + rest + [i for i in range(at, len(lines)) if i not in scores]
    return "\n".join(lines[i] for i in order)


def _sentences(text: str) -> list[str]:
    """The sentences of each line, split where one ends (not after an abbreviation like «пр.»)."""
    found = []
    for line in text.splitlines():
        starts = [0, *_sentence_ends(line)]
        found += [line[start:end].strip() for start, end in zip(starts, [*starts[1:], len(line)])]
    return [sentence for sentence in found if sentence]


def best_sentence(text: str, words: list[str]) -> str | None:
    """The sentence of a passage sharing most words with ``words`` (for the price objection's lines). A
    line ending with a colon only leads into a list («Условия бесплатного пробного занятия:»): alone it
    says nothing, so it is never the one."""
    sentences = [s for s in _sentences(plain(text)) if len(s) > 20 and not s.endswith(":")]
    stems = {w[:5] for w in words}
    scored = [(sum(1 for w in content_words(s) if w[:5] in stems), -i, s) for i, s in enumerate(sentences)]
    scored = [item for item in scored if item[0] > 0]
    return max(scored)[2].lstrip("-• ") if scored else None
