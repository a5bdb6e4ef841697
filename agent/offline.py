"""The deterministic policy: answers without a model (no OPENAI_API_KEY, a failed model turn, a spent
token budget) through the same Reply. It greets, walks the funnel with buttons, shows the catalog's
top 3 as cards, answers free questions from the best knowledge passage with its source (or says
«уточню у менеджера» and offers a manager), and hands contact capture to agent/contact.py.

A free message is either a bare funnel answer («11 класс», «онлайн») or a question. A question that
names a funnel value («Сколько стоит лагерь?», «Можно ли заниматься онлайн?») is still a question: it
is answered from the knowledge base, and the values it names fill the funnel so the follow-up never asks
for them again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from agent.catalog import Catalog, SearchCriteria
from agent.contact import CONTACT_START, HANDOFF
from agent.funnel import apply_text_hints, next_step, profile_labels, question
from agent.ports import Knowledge, KnowledgeResult, Passage
from agent.state import ConversationState
from agent.types import QuickReply, Reply

log = logging.getLogger(__name__)

RESTART = "restart"
GREETING = (
    "Здравствуйте! Я бот-помощник {brand}. Помогу подобрать курс для школьника 1–11 класса, расскажу "
    "об условиях обучения и помогу записаться. Можно выбирать кнопками или просто написать вопрос."
)
FOUND = {
    "strong": "Вот программы, которые подходят:",
    "limited": "Точного совпадения нет, но посмотрите близкие варианты:",
    "none": "Подходящей программы в каталоге я не нашёл — менеджер подберёт вариант индивидуально.",
}
MANAGER_HINT = "Лучше уточнить детали с менеджером — он поможет выбрать."
AFTER_RESULTS = "Хотите записаться на пробное занятие или задать вопрос?"
ASK_MANAGER = (
    "Точного ответа в моих материалах нет — уточню у менеджера. Позвать менеджера в этот чат? "
    "Или задайте вопрос иначе."
)
PICK_UP = "Если хотите, подберу программу."
PICK_UP_NOTED = "Если хотите, подберу программу — учту: {noted}."
MAX_PASSAGE_CHARS = 700


# What makes a message a question rather than a bare funnel answer: a question mark, an interrogative
# word («сколько», «можно ли», «как», «когда», «где»…), or a topic no funnel step covers (price,
# payment, discounts, documents, schedule, addresses) — «скидка на математику» asks about discounts.
_QUESTION = re.compile(
    r"\?"
    r"|\b(?:сколько|можно|нельзя|ли|когда|где|куда|откуда|почему|зачем|как[аиоу]\w*)\b"
    r"|(?<!так )\bкак\b|^\s*что\b|\bчто (?:входит|нужно|у вас)"
    r"|\bцен[аыуео]|\bстоим|\bстои[тл]|оплат|платн|плати|плат[её]ж|скидк|рассроч|вычет|капитал"
    r"|возврат|договор|документ|расписани|адрес"
)


def is_question(text: str) -> bool:
    return _QUESTION.search(text.lower()) is not None


_SENTENCE_END = re.compile(r"(?<=[^\d\s])[.!?…](?=\s|$)")


def _shorten(text: str, limit: int) -> str:
    """Cut at the last full sentence within the limit (not at a list number like «3.»)."""
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text[:limit])]
    if ends and ends[-1] > limit // 2:
        return text[: ends[-1]].strip()
    return text[:limit].rstrip() + "…"


def _plain(markdown: str) -> str:
    """Knowledge documents are Markdown; chat replies are plain text."""
    text = re.sub(r"^#{1,6}\s*", "", markdown, flags=re.MULTILINE)
    return re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)


def passage_answer(passage: Passage) -> str:
    source = f"{passage.title} — {passage.source_url}" if passage.source_url else passage.title
    return f"{_shorten(_plain(passage.text).strip(), MAX_PASSAGE_CHARS)}\n\nИсточник: {source}"


def _criteria_key(state: ConversationState) -> str:
    p = state.profile
    return f"{p.grade}|{p.goal}|{p.subject}|{p.format}"


def after_results_buttons() -> list[QuickReply]:
    return [
        QuickReply(label="Оставить заявку", payload=CONTACT_START),
        QuickReply(label="Позвать менеджера", payload=HANDOFF),
        QuickReply(label="Подобрать заново", payload=RESTART),
    ]


@dataclass
class OfflinePolicy:
    catalog: Catalog
    knowledge: Knowledge

    def greet(self, state: ConversationState, *, brand_name: str, today: date) -> Reply:
        follow = self.advance(state, today=today)
        return Reply(text=f"{GREETING.format(brand=brand_name)}\n\n{follow.text}", quick_replies=follow.quick_replies, cards=follow.cards)

    async def respond(self, state: ConversationState, *, text: str | None, today: date) -> Reply:
        """A free message (or none, after a funnel button): a bare funnel answer moves the funnel on; a
        question is answered from the knowledge base, keeping the funnel as a gentle follow-up."""
        if not text:
            return self.advance(state, today=today)
        noted = apply_text_hints(state, text)
        if noted and not is_question(text):
            return self.advance(state, today=today)
        found = await self._search(state.brand, text)
        follow = self.advance(state, today=today, repeat_results=False)
        follow_text = follow.text
        if next_step(state) is not None:  # the funnel is open: offer it, noting what the question told us
            labels = profile_labels(state, noted)
            pick_up = PICK_UP_NOTED.format(noted=", ".join(labels)) if labels else PICK_UP
            follow_text = f"{pick_up} {follow.text}"
        if found is not None and found.relevant and found.passages:
            answer = passage_answer(found.passages[0])
            return Reply(text=f"{answer}\n\n{follow_text}", quick_replies=follow.quick_replies, cards=follow.cards)
        buttons = [QuickReply(label="Позвать менеджера", payload=HANDOFF), *follow.quick_replies]
        return Reply(text=f"{ASK_MANAGER}\n\n{follow_text}", quick_replies=buttons[:12], cards=follow.cards)

    async def _search(self, brand: str, text: str) -> KnowledgeResult | None:
        """The best passage, or None when the knowledge base itself fails: this policy is the last
        resort (the model may already have failed on the same error), so it still answers."""
        try:
            return await self.knowledge.search(brand, text, limit=1)
        except Exception:
            log.exception("knowledge search failed in the offline policy")
            return None

    def advance(self, state: ConversationState, *, today: date, repeat_results: bool = True) -> Reply:
        """The next funnel question, or the top-3 programs once the funnel is answered."""
        step = next_step(state)
        if step is not None:
            text, buttons = question(state, step)
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
        lines = [FOUND[result.match_quality]]
        if result.manager_recommended and result.match_quality != "none":
            lines.append(MANAGER_HINT)
        buttons = [
            # The full title: Telegram's keyboard shortens it for its narrow buttons, the Mini App wraps it.
            QuickReply(label=f"Записаться: {card.title}", payload=f"program:{card.id}")
            for card in result.items
        ]
        return Reply(text="\n".join(lines), cards=list(result.items), quick_replies=buttons + after_results_buttons())
