"""The deterministic policy: answers without a model (no OPENAI_API_KEY, a failed model turn, a spent
token budget) through the same Reply.

It reads the message's intents first (agent/intents.py: greeting, thanks, «подумаю», «дорого»,
off-topic, an existing client, a service question), then answers the question: a price question that
names a course from the catalog, anything else from the one best knowledge section (agent/answers.py),
or an honest «нет точного ответа» with a manager button. The qualification funnel (grade → goal →
subject → format, steps with a single possible answer skipped) follows only while it fits: never once a
lead exists, never for an existing client or a service question.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from agent.answers import (
    MAX_ANSWER_CHARS,
    best_sentence,
    content_words,
    find_answer,
    find_passages,
    search_query,
    shorten,
    split_questions,
    with_context,
    with_earlier_subject,
)
from agent.catalog import Catalog, SearchCriteria
from agent.contact import CONTACT_START, HANDOFF
from agent.funnel import (
    LABELS,
    STEPS,
    apply_hints,
    goals_for,
    mark_answered,
    next_step,
    profile_labels,
    question,
)
from agent.intents import Intent, IntentTable
from agent.ports import Knowledge
from agent.state import ConversationState
from agent.types import ProgramCard, QuickReply, Reply
from agent.understanding import Understanding

log = logging.getLogger(__name__)

RESTART = "restart"
PROGRAMS = "programs"  # «show me the programs» (after «подумаю»)
GREETING = (
    "Здравствуйте! Я бот-помощник {brand}. Помогу подобрать курс для школьника 1–11 класса, расскажу "
    "об условиях обучения и помогу записаться. Можно выбирать кнопками или просто написать вопрос."
)
FOUND = {
    "strong": "Вот программы, которые подходят:",
    "limited": "Точного совпадения нет, но посмотрите близкие варианты:",
    "none": "Подходящей программы в каталоге я не нашёл — менеджер подберёт вариант индивидуально.",
}
# No program meets every criterion given: the manager is named before the colon, which leads to the cards.
LIMITED_ASK_MANAGER = (
    "Точного совпадения нет — лучше уточнить детали с менеджером, он поможет выбрать. Пока посмотрите близкие варианты:"
)
AFTER_RESULTS = "Хотите записаться на пробное занятие или задать вопрос?"
PICK_UP = "Если хотите, подберу программу."
PICK_UP_NOTED = "Если хотите, подберу программу — учту: {noted}."
PRICE_LINE = "{title}: {price}, {start}."
CHEAPER_FORMAT = "Онлайн-формат дешевле очного: {title} — {price}."
MAX_BUTTON_LABEL = 40
# Words that make a question about the school rather than off-topic: an unanswered one goes to a manager.
_SCHOOL = re.compile(
    r"курс|заняти|урок|учеб|учит|школ|класс|групп|преподав|педагог|цен|стои|оплат|скидк|лагер|смен|"
    r"расписан|адрес|запис|пробн|егэ|огэ|олимпиад|экзамен|программ|справк|договор|ребен|сын|доч|"
    r"менеджер|филиал|онлайн|очно|мфти|физтех|подготов|балл|домашн|кружк|кружок|секци|находит|площадк",
    re.IGNORECASE,
)
_PRICE = re.compile(r"сколько\s+сто(?:ит|ят)|стоимост|\bцен[аыуе]\b|\bцены\b|почем|прайс|сколько\s+(?:будет\s+)?стоить|\bстоит\b", re.IGNORECASE)


# A question about where the school is («где вы находитесь», «есть филиал в …»).
_WHERE = re.compile(r"\bгде\b|\bадрес|находит|\bфилиал|\bплощадк|\bрядом\s+с\b", re.IGNORECASE)
# «в Химках», «рядом с Королёвом»: a named place (capitalised, so case-sensitive).
_IN_PLACE = re.compile(r"(?:\b[Вв]о?|\b[Нн]а|\b[Рр]ядом\s+с|\b[Оо]коло)\s+[А-ЯЁ][а-яё]{3,}")
# «Что есть для 5 класса?», «какие курсы для восьмиклассника»: a question about the programs themselves.
_PROGRAMS_ASKED = re.compile(r"что\s+(?:у\s+вас\s+)?есть|какие\s+(?:у\s+вас\s+)?(?:есть\s+)?(?:курс|программ|заняти|групп)|что\s+(?:можете\s+)?предлож", re.IGNORECASE)
# A price question that also asks what the price includes is a knowledge-base question.
# «сколько стоит зимний лагерь со скидкой 10%?»: the price is searched for without the discount words
# (they found the discounts document instead), and the total is left to the manager (the compute note).
_WITH_DISCOUNT = re.compile(r"\s*\b(?:со|с)\s+скидк\w*(?:\s+(?:в\s+)?\d{1,2}\s*(?:%|процент\w*))?", re.IGNORECASE)
_MORE = re.compile(r"что\s+входит|включ|за\s+что|из\s+чего", re.IGNORECASE)


def _start_phrase(start_text: str) -> str:
    """«старт 13.09.2026» for a date; a sentence («Учебный год идёт — можно присоединиться…») as it is."""
    return f"старт {start_text}" if start_text[:1].isdigit() else start_text[:1].lower() + start_text[1:]


def _same_price(cards: list[ProgramCard]) -> list[ProgramCard] | None:
    priced = [card for card in cards if "₽" in card.price_text]
    if len(priced) < 2 or len({card.price_text for card in priced}) > 1:
        return None
    if len({card.title.partition(",")[2] for card in priced}) > 1:
        return None  # different grades or formats: each keeps its own line
    return priced


def _one_price_line(cards: list[ProgramCard]) -> str:
    names = [card.title.partition(",")[0].strip() for card in cards]
    subjects = ", ".join([names[0], *(name if name[:2].isupper() else name[:1].lower() + name[1:] for name in names[1:])])
    rest = cards[0].title.partition(",")[2].strip()
    start = _start_phrase(cards[0].next_start_text)
    return f"{subjects} — {rest}: {cards[0].price_text}, {start}."


def after_results_buttons() -> list[QuickReply]:
    return [
        QuickReply(label="Оставить заявку", payload=CONTACT_START),
        QuickReply(label="Позвать менеджера", payload=HANDOFF),
        QuickReply(label="Подобрать заново", payload=RESTART),
    ]


def _criteria_key(state: ConversationState) -> str:
    p = state.profile
    return f"{p.grade}|{p.goal}|{p.subject}|{p.format}"


def _compact(title: str) -> str:
    text = re.sub(r"\s*\((?:[^)]*)\)", lambda m: " " + m.group(0).strip(" ()"), title)
    text = text.replace("класс", "кл.").replace("«", "").replace("»", "")
    return " ".join(text.split())


def program_labels(cards: list[ProgramCard]) -> list[str]:
    """Readable, unique sign-up labels: where two titles would read the same, name what differs."""
    compact = [_compact(card.title) for card in cards]
    labels = [shorten(f"Запись: {c}", MAX_BUTTON_LABEL) for c in compact]
    for i, label in enumerate(labels):
        twins = [j for j, other in enumerate(labels) if other == label]
        if len(twins) < 2:
            continue
        common = _common_prefix([compact[j] for j in twins])
        for j in twins:
            head = compact[j].split()[0]
            tail = compact[j][len(common):].strip(" ,—-") or compact[j]
            labels[j] = shorten(f"{head}: {tail}", MAX_BUTTON_LABEL)
    return labels


def _common_prefix(texts: list[str]) -> str:
    prefix = texts[0]
    for text in texts[1:]:
        while not text.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


@dataclass
class OfflinePolicy:
    catalog: Catalog
    knowledge: Knowledge
    intents: IntentTable

    # ------------------------------------------------------------------ entry points

    def greet(self, state: ConversationState, *, brand_name: str, today: date) -> Reply:
        follow = self.advance(state, today=today)
        text = f"{GREETING.format(brand=brand_name)}\n\n{follow.text}"
        return Reply(text=text, quick_replies=follow.quick_replies, cards=follow.cards)

    async def respond(
        self, state: ConversationState, message: Understanding | None, *, today: date, brand_name: str
    ) -> Reply:
        """A free message: intents first, then the question, then a follow-up that fits the state."""
        if message is None or not (message.question or message.text).strip():
            return self.advance(state, today=today)
        if message.has(Intent.client) or message.has(Intent.service):
            state.flow["client"] = state.flow.get("client") or message.has(Intent.client)
        qualifying = self.qualifying(state, message)
        noted = apply_hints(state, message.hints, overwrite=not message.asks) if qualifying or not message.asks else []
        if message.has(Intent.greeting) and not message.asks:
            return self._with_follow(state, self.intents.reply("greeting", brand=brand_name), today, qualifying)
        if message.has(Intent.thanks) and not message.asks:
            return self._thanks(state)
        if message.has(Intent.think):
            return Reply(
                text=self.intents.reply("think"),
                quick_replies=[
                    QuickReply(label="Показать программы", payload=PROGRAMS),
                    QuickReply(label="Оставить контакт", payload=CONTACT_START),
                ],
            )
        if message.has(Intent.price_objection):
            return await self._objection(state, today=today)
        if message.has(Intent.offtopic):
            return self._offtopic(brand_name)  # its patterns are specific: «реши домашку по алгебре»
        if noted and not message.asks:
            return self.advance(state, today=today)  # a bare funnel answer moves the funnel on
        return await self.answer(state, message, today=today, brand_name=brand_name, noted=noted)

    async def answer(
        self,
        state: ConversationState,
        message: Understanding,
        *,
        today: date,
        brand_name: str,
        noted: list[str] | None = None,
        follow_up: bool = True,
    ) -> Reply:
        """The question of a message answered: a course price from the catalog, else the knowledge base."""
        question_text = message.question or message.text
        qualifying = follow_up and self.qualifying(state, message)
        parts = split_questions(question_text, self.intents.asks)
        if len(parts) == 1 and _PRICE.search(question_text) and self._names_a_course(state, message, question_text):
            priced = self._catalog_price(state, message, today=today)
            if priced is not None:
                if message.has(Intent.compute):  # the catalog's price, never a computed total
                    priced.text = f"{priced.text}\n\n{self.intents.reply('compute')}"
                return priced
        if len(parts) > 1:  # each question answered, the price one from the catalog (see _several)
            several = await self._several(state, message, parts, today=today)
            if several is not None:
                return self._with_follow(state, several, today, qualifying, noted=noted or [])
        if correction := self.catalog.guard(state.brand).correction(question_text):
            # «Занятия проходят в МТС Линк?»: the school's current fact, not a search for a retired name.
            return self._with_follow(state, correction, today, qualifying, noted=noted or [])
        searched, limit = question_text, MAX_ANSWER_CHARS
        if message.has(Intent.compute):  # room for the note that the manager gives the total
            limit -= len(self.intents.reply("compute")) + 2
            if _PRICE.search(question_text):
                searched = _WITH_DISCOUNT.sub(" ", question_text)
        answer = await self._find(state.brand, with_context(searched, state.flow.get("topic")), limit=limit)
        if answer is not None:
            state.flow["topic"] = answer.title
        if answer is None and _WHERE.search(question_text) and _IN_PLACE.search(question_text):
            # «есть в Химках?»: a place none of the content names — say so, then where classes are
            answer = await self._find(state.brand, self.intents.spec.sites_query)
            if answer is not None:
                text = f"{self.intents.reply('no_site')}\n{answer.render()}"
                return self._with_follow(state, text, today, qualifying, noted=noted or [])
        if answer is None:
            if not _SCHOOL.search(question_text) and not message.hints.steps():
                return self._offtopic(brand_name)
            asked = message.hints.format
            if asked in ("online", "offline") and qualifying and len(content_words(search_query(question_text))) <= 1 \
                    and (formats := self.options(state, "format")):
                return self._format_asked(state, asked, formats, today=today)
            reply = self._with_follow(state, self.intents.reply("no_answer"), today, qualifying, noted=noted or [])
            reply.quick_replies = [QuickReply(label="Позвать менеджера", payload=HANDOFF), *reply.quick_replies][:12]
            return reply
        text = answer.render()
        if message.has(Intent.compute):  # the facts, never a computed total
            text = answer.render(note=self.intents.reply("compute"))
        return self._with_follow(state, text, today, qualifying, noted=noted or [])

    def _format_asked(self, state: ConversationState, asked: str, formats: list[str], *, today: date) -> Reply:
        """«а онлайн можно?» (also after «очно» was chosen): the catalog's ``formats`` for what is known say
        whether it exists (no online groups for grades 1–4), then the funnel goes on with the asked format
        when it exists; an impossible format is not recorded."""
        offered = asked in formats
        if offered:
            state.profile.format = asked
        elif state.profile.format == asked:
            state.profile.format = None
        said = self.intents.reply(f"format_{'yes' if offered else 'no'}_{asked}")
        reply = self.advance(state, today=today)
        reply.text = f"{said}\n{reply.text}"
        return reply

    @staticmethod
    def _names_a_course(state: ConversationState, message: Understanding, question_text: str) -> bool:
        """The question names a course («ЕГЭ по физике»), or is a bare «Сколько стоит?» once the profile
        does (camps are priced in the knowledge base: shifts and deposits need their words)."""
        h, p = message.hints, state.profile
        if h.subject or h.goal not in (None, "camp") or (h.grade and h.goal is None):
            return True  # «цена за год для 3 класса»: the grade's courses (one price for every subject)
        bare = len(content_words(question_text)) <= 1
        return bare and h.goal is None and p.goal != "camp" and bool(p.subject or p.goal)

    def qualifying(self, state: ConversationState, message: Understanding | None = None) -> bool:
        """The funnel fits: no lead yet, not an existing client, not a service question."""
        if state.flow.get("lead_id") or state.flow.get("client"):
            return False
        return not (message is not None and (message.has(Intent.service) or message.has(Intent.client)))

    # ------------------------------------------------------------------ intents

    def _thanks(self, state: ConversationState) -> Reply:
        text = self.intents.reply("thanks")
        if state.flow.get("lead_id") or state.flow.get("client"):
            return Reply(text=text)
        return Reply(
            text=f"{text} {self.intents.reply('thanks_next')}",
            quick_replies=[
                QuickReply(label="Подобрать программу", payload=PROGRAMS),
                QuickReply(label="Записаться на пробное", payload=CONTACT_START),
            ],
        )

    def _offtopic(self, brand_name: str) -> Reply:
        return Reply(
            text=self.intents.reply("offtopic", brand=brand_name),
            quick_replies=[QuickReply(label="Подобрать курс", payload=PROGRAMS)],
        )

    async def _objection(self, state: ConversationState, *, today: date) -> Reply:
        """«Дорого»: the cheaper format from the catalog, then the discount and trial lines of the KB."""
        lines = [self.intents.reply("price_objection")]
        cheaper = self._cheaper_format(state, today=today)
        if cheaper:
            lines.append(f"— {cheaper}")
        for query in self.intents.spec.objection_queries:
            try:
                _, passages = await find_passages(self.knowledge, state.brand, query, limit=1)
            except Exception:
                log.exception("knowledge search failed for the objection answer")
                continue
            sentence = best_sentence(passages[0].text, content_words(query)) if passages else None
            if sentence:
                lines.append(f"— {shorten(sentence, 200)}")
        buttons = [QuickReply(label="Записаться на пробное", payload=CONTACT_START), QuickReply(label="Позвать менеджера", payload=HANDOFF)]
        return Reply(text="\n".join(lines), quick_replies=buttons)

    def _cheaper_format(self, state: ConversationState, *, today: date) -> str | None:
        p = state.profile
        if p.goal is None and p.subject is None:
            return None  # nothing to compare like for like yet
        online = self.catalog.search(
            state.brand, SearchCriteria(grade=p.grade, goal=p.goal, subject=p.subject, format="online"), today=today
        )
        card = next((c for c in online.items if "₽" in c.price_text), None)
        if card is None or online.match_quality == "none":
            return None
        return CHEAPER_FORMAT.format(title=card.title, price=card.price_text)

    # ------------------------------------------------------------------ answers

    async def _several(self, state: ConversationState, message: Understanding, parts: list[str], *, today: date) -> str | None:
        """Several questions in one message: each answered briefly (a catalog price or a section)."""
        answers: list[str] = []
        sources: list[str] = []
        limit = MAX_ANSWER_CHARS // len(parts) + 60
        for index, part in enumerate(parts):
            if _PRICE.search(part) and (message.hints.steps()):
                priced = self._catalog_price(state, message, today=today)
                if priced is not None:
                    answers.append(priced.text.splitlines()[0])
                    continue
            found = await self._find(state.brand, with_earlier_subject(part, " ".join(parts[:index])), limit=limit)
            if found is None and _PROGRAMS_ASKED.search(part) and message.hints.steps():
                # «что есть для первоклассников?»: the catalog's programs for what the message says
                priced = self._catalog_price(state, message, today=today)
                if priced is not None:
                    answers.append(priced.text)
                continue
            if found is not None and found.text not in answers:
                answers.append(found.text)
                if found.source_url and found.source_url not in sources:
                    sources.append(found.source_url)
        if not answers:
            return None
        links = f"\n\nИсточник: {', '.join(sources)}" if sources else ""
        return "\n\n".join(answers) + links

    async def _find(self, brand: str, question_text: str, *, limit: int = MAX_ANSWER_CHARS):
        """The best answer, or None when the knowledge base has none (or itself fails: this policy is
        the last resort, the model may already have failed on the same error, so it still answers)."""
        try:
            return await find_answer(self.knowledge, brand, question_text, limit=limit)
        except Exception:
            log.exception("knowledge search failed in the offline policy")
            return None

    def _catalog_price(self, state: ConversationState, message: Understanding, *, today: date) -> Reply | None:
        """«Сколько стоит ЕГЭ по физике онлайн?»: the programs the question names, with their prices.
        The question's own values win; the profile fills the rest unless that finds nothing."""
        p, h = state.profile, message.hints
        merged = SearchCriteria(
            grade=h.grade or p.grade, goal=h.goal or p.goal, subject=h.subject or p.subject, format=h.format or p.format
        )
        own = SearchCriteria(grade=h.grade, goal=h.goal, subject=h.subject, format=h.format)
        for criteria in (merged, own):
            result = self.catalog.search(state.brand, criteria, today=today)
            if result.match_quality == "strong":
                break
        else:
            return None
        # The first card meets every criterion; the second is shown only when the format is still open.
        cards = [card for card in result.items[: 1 if criteria.format else 2] if "₽" in card.price_text]
        if not cards or _MORE.search(message.question or message.text):
            return None
        lines = [PRICE_LINE.format(title=c.title, price=c.price_text, start=_start_phrase(c.next_start_text)) for c in cards]
        if criteria.subject is None and (same := _same_price(result.items[:3])):
            # «цена за год для 3 класса»: no subject named and every subject costs the same — one line
            # for all of them, not one subject picked at random.
            cards, lines = same, [_one_price_line(same)]
        state.flow["shown"] = [card.id for card in cards]
        buttons = [QuickReply(label=label, payload=f"program:{card.id}") for label, card in zip(program_labels(cards), cards, strict=True)]
        return Reply(text="\n".join(lines), cards=cards, quick_replies=buttons + [QuickReply(label="Позвать менеджера", payload=HANDOFF)])

    def _with_follow(
        self, state: ConversationState, text: str, today: date, qualifying: bool, *, noted: list[str] | None = None
    ) -> Reply:
        if not qualifying:
            return Reply(text=text)
        step = self.open_step(state)
        follow = self.advance(state, today=today, repeat_results=False)
        if step is None:  # the funnel is done: the programs (again only if the criteria changed)
            return Reply(text=f"{text}\n\n{follow.text}", quick_replies=follow.quick_replies, cards=follow.cards)
        labels = profile_labels(state, noted or [])
        pick_up = PICK_UP_NOTED.format(noted=", ".join(labels)) if labels else PICK_UP
        return Reply(text=f"{text}\n\n{pick_up} {follow.text}", quick_replies=follow.quick_replies)

    # ------------------------------------------------------------------ the funnel

    def options(self, state: ConversationState, step: str) -> list[str]:
        """The values of a step the catalog still offers for what is known (grade first)."""
        if step == "grade":
            return [str(n) for n in range(1, 12)]
        p = state.profile
        programs = [
            program for program in self.catalog.brand(state.brand).programs
            if (p.grade is None or program.grade_min <= p.grade <= program.grade_max)
            and (p.goal is None or step == "goal" or program.goal == p.goal)
            and (p.subject is None or step == "subject" or p.subject in program.subjects)
        ]
        if step == "goal":
            offered = {program.goal for program in programs}
            return [goal for goal in goals_for(p.grade) if goal in offered] or goals_for(p.grade)
        if step == "subject":
            offered = {subject for program in programs for subject in program.subjects}
            return [s for s in LABELS["subject"] if s in offered]
        offered = {program.format for program in programs}
        if "hybrid" in offered:
            offered |= {"online", "offline"}
        return [f for f in ("offline", "online") if f in offered]

    def open_step(self, state: ConversationState) -> str | None:
        """The next open step; a step with a single possible answer is filled and skipped, one with none
        is skipped."""
        while (step := next_step(state)) is not None:
            if step == "grade":
                return step
            options = self.options(state, step)
            if len(options) > 1:
                return step
            if options:
                setattr(state.profile, step, options[0])
            # No value left to choose (no camp for the 4th grade has a subject): asking would offer only
            # «Не важно».
            mark_answered(state, step)
        return None

    def advance(self, state: ConversationState, *, today: date, repeat_results: bool = True) -> Reply:
        """The next funnel question, or the top-3 programs once the funnel is answered."""
        step = self.open_step(state)
        if step is not None:
            text, buttons = question(state, step, None if step == "grade" else self.options(state, step))
            return Reply(text=text, quick_replies=buttons)
        if state.flow.get("shown_for") == _criteria_key(state) and not repeat_results:
            return Reply(text=AFTER_RESULTS, quick_replies=after_results_buttons())
        return self.show_programs(state, today=today)

    def show_programs(self, state: ConversationState, *, today: date) -> Reply:
        p = state.profile
        result = self.catalog.search(
            state.brand, SearchCriteria(grade=p.grade, goal=p.goal, subject=p.subject, format=p.format), today=today
        )
        state.flow["shown_for"] = _criteria_key(state)
        state.flow["shown"] = [card.id for card in result.items]
        limited_ask_manager = result.manager_recommended and result.match_quality == "limited"
        text = LIMITED_ASK_MANAGER if limited_ask_manager else FOUND[result.match_quality]
        cards = list(result.items)
        buttons = [
            QuickReply(label=label, payload=f"program:{card.id}")
            for label, card in zip(program_labels(cards), cards, strict=True)
        ]
        return Reply(text=text, cards=cards, quick_replies=buttons + after_results_buttons())


__all__ = ["AFTER_RESULTS", "OfflinePolicy", "PROGRAMS", "RESTART", "STEPS", "after_results_buttons", "program_labels"]
