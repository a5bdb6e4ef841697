"""The handoff card of the relay: who, what they asked, profile, lead and consent, the last messages,
where the transcript is, how to answer; and its «return to the bot» button. HTML, every value escaped."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.storage.relay import CardFacts
from adapters.telegram.notifier import handoff_card
from adapters.telegram.rendering import MESSAGE_LIMIT
from agent.ports import HandoffNotice

LINE_PREVIEW = 300
ROLE_LABELS = {"user": "👤 Клиент", "assistant": "🤖 Бот", "manager": "🧑‍💼 Менеджер"}
TOPIC_MODE = "Режим: тема на клиента. Всё, что вы напишете в этой теме, получит клиент."
REPLY_MODE = (
    "Режим: ответом на сообщение (в группе нет тем). Ответьте (reply) на эту карточку или на "
    "сообщение клиента — ответ получит клиент."
)
NOT_IN_TELEGRAM = (
    "Клиент пишет не из Telegram ({channel}): ваши ответы он увидит при следующем обращении."
)
COMMANDS_HINT = "Вернуть боту: кнопка ниже или /release; /close — вернуть боту и закрыть тему."
STATUS_LABELS = {True: "дано", False: "нет"}


class RelayAction(CallbackData, prefix="relay"):
    """The card's button; the prefix keeps it apart from the agent's quick-reply payloads."""

    action: str  # release
    conversation_id: int


def release_keyboard(conversation_id: int) -> InlineKeyboardMarkup:
    data = RelayAction(action="release", conversation_id=conversation_id).pack()
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="↩️ Вернуть боту", callback_data=data)]])


def relay_card(notice: HandoffNotice, facts: CardFacts, *, topics: bool, in_telegram: bool) -> str:
    """The runbook's card (who, why, profile, contact, transcript link) plus what a relay needs."""
    lines = [handoff_card(notice)]
    lead = f"№{facts.lead[0]} ({hd.quote(facts.lead[1])})" if facts.lead else "нет"
    lines.append(f"Заявка: {lead}; согласие на обработку данных: {STATUS_LABELS[facts.consent]}")
    if facts.transcript:
        lines.append(hd.bold("Последние сообщения:"))
        for role, text in facts.transcript:
            short = text if len(text) <= LINE_PREVIEW else text[:LINE_PREVIEW] + "…"
            lines.append(f"{ROLE_LABELS.get(role, role)}: {hd.quote(short)}")
    if not in_telegram:
        lines.append(hd.italic(hd.quote(NOT_IN_TELEGRAM.format(channel=notice.channel))))
    lines.append(hd.quote(TOPIC_MODE if topics else REPLY_MODE))
    lines.append(hd.quote(COMMANDS_HINT))
    text = "\n".join(lines)
    if len(text) <= MESSAGE_LIMIT:
        return text
    # Too long for one message: keep the head (who, why, contact) and the tail (mode, commands).
    return "\n".join([handoff_card(notice), hd.quote(TOPIC_MODE if topics else REPLY_MODE), hd.quote(COMMANDS_HINT)])
