"""One inbound text, understood whole: every part a parent may put into one message, parsed once.

«Меня зовут Ольга, мой номер +7 916 555-12-34. Сыну 10 лет, сколько стоит матиматика онлайн?» holds a
name, a phone, funnel hints (grade 4 from the age, maths despite the typo, online) and a question. The
service's decision table (agent/decide.py) acts on all of them in one reply instead of following the
first part it notices. Pure functions only: no storage, no model, no I/O beyond the pattern table
(agent/intents.py) the caller passes in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.personal_data import EMAIL_RE, PHONE_RE
from agent.intents import Handoff, HandoffLookup, Intent, IntentTable
from agent.errors import InvalidInput
from agent.phones import normalize_phone

# ------------------------------------------------------------------ funnel hints

_GRADE_DIGITS = re.compile(
    r"\b(1[01]|[1-9])\s*(?:-?\s*(?:[йяю]|ый|ой|ом|ем|ого|м))?\s*(?:класс\w*|клас\w*|кл\b\.?)"
    r"|\b(?:в|во|перешел|перешла|перешёл|переходит в|идет в|идёт в|пойдет в|пойдёт в)\s+(1[01]|[1-9])\s*-?\s*(?:[йм]|ый|ой|ом)?\b(?!\s*(?:лет|год|час|мин|₽|руб|тыс|%))",
    re.IGNORECASE,
)
# «Где занимаются 1-4 классы?», «группы 5–8 кл.»: a range of grades names no child's grade.
_GRADE_RANGE = re.compile(r"\b(?:1[01]|[1-9])\s*[-–—]\s*(?:1[01]|[1-9])\s*(?:-?\s*(?:[йх]|ых|ые|ым))?\s*(?:клас\w*|кл\b\.?)")
# Grades in words: (compound stem, ordinal stem) — «восьмиклассник», «в седьмом классе», «в 7 кл.».
_GRADE_WORDS = (
    ("перво", "перв"), ("второ", "втор"), ("третье", "трет"), ("четверо", "четв[её]рт"), ("пяти", "пят"),
    ("шести", "шест"), ("семи", "седьм"), ("восьми", "восьм"), ("девяти", "девят"), ("десяти", "десят"),
    ("одиннадцати", "одиннадцат"),
)
_ORDINAL_ENDING = r"(?:ый|ой|ий|ом|ем|ого|его|ьем|ьего|ый|ая|ую)"
_GRADE_WORD_RES = [
    (grade, re.compile(rf"\b(?:{compound}классни\w*|{ordinal}{_ORDINAL_ENDING}\s+клас\w*)"))
    for grade, (compound, ordinal) in enumerate(_GRADE_WORDS, start=1)
]
# «сыну 10 лет», «дочке 7», «ребёнку двенадцать лет»: the grade a Russian child of that age is in.
_AGE_RE = re.compile(
    r"\b(?:сын\w*|доч\w*|реб[её]н\w*|внук\w*|внучк\w*|мне|нам)\s+(?:уже\s+|исполнилось\s+|почти\s+)?(\d{1,2})\s*(?:лет|год|годик)?\b"
    r"|\b(\d{1,2})\s*(?:лет|год)\b",
    re.IGNORECASE,
)

# Goal, subject and format as parents type them, typos included («матиматика», «физ-ка», «инфа»).
HINT_PATTERNS: dict[str, list[tuple[str, str]]] = {
    "goal": [
        (r"\b(?:егэ|еге|е\.г\.э|ege)\b", "ege"),
        (r"\b(?:огэ|оге|гиа|oge)\b", "oge"),  # «оге»: typed without «э»
        (r"олимпиад", "olympiad"),
        (r"лагер|\bсмен[аеуы]\b|\bлвш\b|\bзвш\b|летн\w* школ|выездн", "camp"),
        (r"интенсив", "intensive"),
    ],
    "subject": [
        (r"ма[тд][еи]м|матеш|матан|алгебр|геометр", "math"),
        (r"\bфиз(?:ик|ек|-?к)\w*|\bфизик", "physics"),
        (r"информат|инфор|\bинф[аеуы]\b|программир|питон|python", "informatics"),
        (r"русск", "russian"),
    ],
    "format": [
        (r"онлайн|online|дистанц|удал[её]нн?о|по зуму|в зуме|\bzoom", "online"),
        (r"\bочн\w*|вживую|в класс[еа]\b|лично\b|оффлайн|офлайн", "offline"),
        (r"гибрид", "hybrid"),
    ],
}
# The town or branch: recorded for the manager, never used to pick a different document.
LOCATION_PATTERNS: list[tuple[str, str]] = [
    (r"долгопрудн", "Долгопрудный"),
    (r"сретенк|чисты\w* пруд", "Сретенка"),
    (r"красносельск", "Верхняя Красносельская"),
    (r"пацаев", "Пацаева"),
    (r"москв", "Москва"),
    (r"жуковск", "Жуковский"),
    (r"лобн", "Лобня"),
]


def grade_in(lowered: str) -> int | None:
    lowered = _GRADE_RANGE.sub(" ", lowered)
    if match := _GRADE_DIGITS.search(lowered):
        return int(match.group(1) or match.group(2))
    for grade, pattern in _GRADE_WORD_RES:
        if pattern.search(lowered):
            return grade
    if match := _AGE_RE.search(lowered):
        age = int(match.group(1) or match.group(2))
        if 7 <= age <= 17:
            return min(11, max(1, age - 6))
    return None


@dataclass(frozen=True)
class Hints:
    grade: int | None = None
    goal: str | None = None
    subject: str | None = None
    format: str | None = None
    location: str | None = None

    def steps(self) -> dict[str, object]:
        return {k: v for k, v in (("grade", self.grade), ("goal", self.goal), ("subject", self.subject), ("format", self.format)) if v is not None}


def hints_in(text: str) -> Hints:
    lowered = text.lower().replace("ё", "е")
    found: dict[str, str | None] = {}
    for step, patterns in HINT_PATTERNS.items():
        found[step] = next((value for pattern, value in patterns if re.search(pattern, lowered)), None)
    location = next((name for pattern, name in LOCATION_PATTERNS if re.search(pattern, lowered)), None)
    return Hints(grade=grade_in(lowered), location=location, **found)


# ------------------------------------------------------------------ contact parts

_NAME_WORD = r"[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?"
_NAME_RES = [
    re.compile(rf"(?i:меня зовут|зовут меня|мо[её] имя|я\s*[-—–]|это|с вами|пишет|на имя)\s+({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})"),
    re.compile(rf"(?:имя|фио)\s*[:\-—]?\s*({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})", re.IGNORECASE),
]
# A bare «Иванова Ольга» or «Ольга» next to a phone: one to three capitalised words and nothing else.
_BARE_NAME_RE = re.compile(rf"^\s*({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})\s*$")
# Capitalised words that start sentences or name things, never a person.
NOT_NAMES = frozenset(
    "Здравствуйте Добрый Привет Спасибо Подскажите Скажите Сколько Когда Где Как Можно Есть Хочу Хотим "
    "Мой Моя Мы Наш Наша Ребенок Ребёнок Сын Дочь Телефон Номер Запишите Перезвоните Позвоните Да Нет "
    "Москва Долгопрудный Жуковский Лобня ЕГЭ ОГЭ МФТИ Физтех Менделеево Подлипки Пожалуйста Если Это Вот "
    "Ок Хорошо Понятно Добрый Доброе Утро День Вечер Меня Я".split()
)
# A remark for the manager that comes with a phone: when to call, whose number it is.
_NOTE_RE = re.compile(
    r"(?:перезвон\w*|позвон\w*|звон\w*|набер\w*|связ\w*)[^.!?\n]{0,60}?(?:после|до|с|в|утром|вечером|днем|днём|завтра|в выходн)[^.!?\n,;]{0,30}"
    r"|(?:это|номер)\s+(?:номер\s+)?(?:муж\w*|жен\w*|мам\w*|пап\w*|бабушк\w*|дедушк\w*|отц\w*|матер\w*|сын\w*|доч\w*|рабоч\w*|домашн\w*)"
    r"|(?:лучше|удобнее)\s+(?:звонить|писать|в)\s[^.!?\n]{0,40}|(?:доп(?:олнительный|\.)?|второй|запасной)\s+(?:номер|телефон)",
    re.IGNORECASE,
)


def _name_candidate(value: str) -> str | None:
    words = value.split()
    while words and words[-1] in NOT_NAMES:
        words.pop()
    if not words or words[0] in NOT_NAMES:
        return None
    return " ".join(words)


def name_in(text: str, *, with_contact: bool) -> str | None:
    for pattern in _NAME_RES:
        if match := pattern.search(text):
            if name := _name_candidate(match.group(1)):
                return name
    if with_contact:
        for chunk in re.split(r"[,;\n]|(?<=[.!?])\s", text):
            if match := _BARE_NAME_RE.match(chunk):
                if name := _name_candidate(match.group(1)):
                    return name
    return None


# ------------------------------------------------------------------ the whole message

_CONTACT_FILLER = re.compile(
    r"(?:^|(?<=[\s,.;:!?]))(?:мой|наш|мои|вот|мой номер|номер телефона|номер|телефон|тел\.?|моб\.?|e-?mail|email|почта|меня зовут|зовут меня|это)\s*[:\-—]?\s*(?=$|[\s,.;:!?])",
    re.IGNORECASE,
)
# What is left of «здраствуйте, можете перезвонить завтра? +7 916 …» once the contact and the note are
# taken out: greetings and a bare «можете» ask nothing (answered, they drew the off-topic reply).
_HOLLOW = re.compile(
    r"(?:[\W\d_]|\b(?:здр\w*|добр\w*|день|вечер|утро|привет\w*|можете|можно|могли|бы|пожалуйста|пожалуйсто|"
    r"а|и|вы|мне|нам|ещ[её]|еще|тогда|спасибо)\b)*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Understanding:
    text: str
    phones: tuple[str, ...] = ()  # normalised +7XXXXXXXXXX
    bad_phone: bool = False  # something phone-like that is no Russian number
    emails: tuple[str, ...] = ()
    name: str | None = None
    note: str | None = None  # «перезвоните после 18», «это номер мужа»
    hints: Hints = field(default_factory=Hints)
    intents: frozenset[Intent] = frozenset()
    urgent: Handoff | None = None  # a topic that goes to a manager at once (nothing else is done)
    topic: Handoff | None = None  # a topic whose details only a manager gives: answered, the manager offered
    question: str = ""  # what is left once the contact parts are taken out
    asks: bool = False  # the remainder is a question or request to answer

    @property
    def has_contact(self) -> bool:
        return bool(self.phones or self.emails)

    def has(self, intent: Intent) -> bool:
        return intent in self.intents


def understand(
    text: str, table: IntentTable, *, expecting_contact: bool = False, handoff_topic: HandoffLookup | None = None
) -> Understanding:
    """Parse one message into its parts. ``text`` is the user's text as stored (already capped);
    ``expecting_contact``: the conversation asked for a contact or has a lead, so a bare «Иванова Ольга»
    is a name. ``handoff_topic``: the brand's own topics (its rules file), asked before the defaults
    (prompts/intents.yaml ``urgent``)."""
    phones: list[str] = []
    bad_phone = False
    for match in PHONE_RE.finditer(text):
        try:
            phone = normalize_phone(match.group(0))
        except InvalidInput:
            bad_phone = True
            continue
        if phone not in phones:
            phones.append(phone)
    emails = tuple(dict.fromkeys(m.group(0) for m in EMAIL_RE.finditer(text)))
    rest = EMAIL_RE.sub("\n", PHONE_RE.sub("\n", text))  # «Иванова Ольга 8 916 …, вопрос» splits at the phone
    name = name_in(rest, with_contact=bool(phones or emails) or expecting_contact)
    notes = [m.group(0) for m in _NOTE_RE.finditer(rest)] if (phones or emails) else []
    note = "; ".join(n.strip(" ,.;") for n in notes) or None
    if name:
        rest = rest.replace(name, " ")
    for part in notes:
        rest = rest.replace(part, " ")
    if phones or emails or name:
        rest = _CONTACT_FILLER.sub(" ", rest)
    question = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(rest.split())).strip(" ,.;:-—–\n")
    if (phones or emails or notes) and _HOLLOW.fullmatch(question):
        question = ""
    intents, default = table.classify(question or text)
    # The brand's own topics first (their replies are the school's words), then the defaults; an urgent
    # topic from either wins over one that is not urgent.
    found = [h for h in (handoff_topic(question or text) if handoff_topic else None, default) if h is not None]
    urgent = next((h for h in found if h.urgent), None)
    topic = next((h for h in found if not h.urgent), None)
    return Understanding(
        text=text,
        phones=tuple(phones),
        bad_phone=bad_phone and not phones,
        emails=emails,
        name=name,
        note=note,
        hints=hints_in(question or text),
        intents=intents,
        urgent=urgent,
        topic=topic,
        question=question,
        asks=table.asks(question),
    )
