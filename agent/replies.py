"""Small reply pieces the decision table combines: the withdrawal confirmation, an answer joined with a
contact-flow step, and what the model is told the user gave in this message."""

from __future__ import annotations

import re
from typing import Any

from agent.answers import content_words
from agent.contact import HANDOFF
from agent.intents import Handoff
from agent.personal_data import mask_phone
from agent.types import Action, QuickReply, Reply
from agent.understanding import Understanding

CALL_MANAGER = "Позвать менеджера"
FORGET_YES = "forget:yes"
FORGET_NO = "forget:no"
FORGET_CONFIRM = (
    "Удалить ваши персональные данные и всю переписку с ботом? Это отзыв согласия на обработку "
    "персональных данных; отменить удаление будет нельзя."
)
FORGET_CANCELLED = "Хорошо, ничего не удаляю."
FORGET_UNAVAILABLE = "Сейчас я не могу удалить данные сам — напишите, пожалуйста, на почту школы, и их удалят."


def forget_confirmation() -> Reply:
    return Reply(
        text=FORGET_CONFIRM,
        quick_replies=[QuickReply(label="Да, удалить", payload=FORGET_YES), QuickReply(label="Нет", payload=FORGET_NO)],
    )


def withdrawn_reply(*, available: bool, confirmed: bool) -> Reply:
    """A withdrawal that did not happen: cancelled, or not wired (the done text is agent/withdrawal.py's)."""
    return Reply(text=FORGET_UNAVAILABLE if confirmed and not available else FORGET_CANCELLED)


def combine(answer: Reply, step: Reply) -> Reply:
    """The answer to the question first, then the contact step (consent, phone or the lead's number);
    the step's buttons win: consent must be answered with them."""
    text = "\n\n".join(part for part in (answer.text.strip(), step.text.strip()) if part)
    actions = list(dict.fromkeys([*answer.actions, *step.actions]))
    return Reply(
        text=text,
        quick_replies=step.quick_replies or [q for q in answer.quick_replies if q.payload.startswith("program:")],
        cards=answer.cards,
        actions=[a for a in actions if a is not Action.handoff or Action.handoff in step.actions],
        usage=answer.usage,
        lead_id=step.lead_id or answer.lead_id,
        engine=answer.engine,
    )


def offer_manager(answer: Reply, topic: Handoff) -> Reply:
    """A topic whose details only a manager gives (its ``reply`` is the school's words about it): the
    answer keeps its content, the words come first and a «Позвать менеджера» button is added."""
    if not _already_said(topic.reply, answer.text):
        answer.text = f"{topic.reply}\n\n{answer.text.strip()}".strip()
    buttons = [q for q in answer.quick_replies if q.payload != HANDOFF]
    answer.quick_replies = [QuickReply(label=CALL_MANAGER, payload=HANDOFF), *buttons][:12]
    return answer


def _already_said(words: str, text: str) -> bool:
    """The answer (a knowledge section on the same topic) already says the first sentence of ``words``."""
    head = set(content_words(re.split(r"[.:—?!]", words, maxsplit=1)[0]))
    said = set(content_words(text))
    return bool(head) and len(head & said) >= 0.7 * len(head)


def given_in(message: Understanding | None) -> dict[str, Any]:
    """What this message itself gave, for the model's instructions (the bot handles contact and consent)."""
    if message is None:
        return {}
    given: dict[str, Any] = {}
    if message.phones:
        given["phone"] = mask_phone(message.phones[0])
    if message.emails:
        given["email"] = True
    if message.name:
        given["name"] = True
    if message.note:
        given["note_for_manager"] = True
    return given
