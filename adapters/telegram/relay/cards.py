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
TOPIC_COMMANDS = "Вернуть боту: кнопка ниже или /release; /close — вернуть боту и закрыть тему."
REPLY_COMMANDS = "Вернуть боту: кнопка ниже или /release ответом на эту карточку."
STATUS_LABELS = {True: "дано", False: "нет"}
LEAD_STATUSES = {"new": "новая", "contacted": "связались", "trial": "пробное", "enrolled": "записан", "lost": "отказ"}


class RelayAction(CallbackData, prefix="relay"):
    """The card's button; the prefix keeps it apart from the agent's quick-reply payloads."""

    action: str  # release
    conversation_id: int


def release_keyboard(conversation_id: int, admin_url: str | None = None) -> InlineKeyboardMarkup:
    """«Return to the bot», and the admin app when ADMIN_WEBAPP_URL is an https address (a group
    can't open Mini App buttons, so it is a plain link)."""
    data = RelayAction(action="release", conversation_id=conversation_id).pack()
    rows = [[InlineKeyboardButton(text="↩️ Вернуть боту", callback_data=data)]]
    if admin_url and admin_url.startswith("https://"):
        rows.append([InlineKeyboardButton(text="🗂 Админка", url=admin_url)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def transcript_url(admin_url: str | None, conversation_id: int) -> str | None:
    """The admin API's transcript on the same host as the admin app, when that is known."""
    if not admin_url or not admin_url.startswith("https://"):
        return None
    origin = "/".join(admin_url.split("/", 3)[:3])
    return f"{origin}/admin/conversations/{conversation_id}"


def relay_card(notice: HandoffNotice, facts: CardFacts, *, topics: bool, in_telegram: bool) -> str:
    """The runbook's card (who, why, profile, contact, transcript link) plus what a relay needs."""
    lines = [handoff_card(notice)]
    lead = f"№{facts.lead[0]} ({hd.quote(LEAD_STATUSES.get(facts.lead[1], facts.lead[1]))})" if facts.lead else "нет"
    lines.append(f"Заявка: {lead}; согласие на обработку данных: {STATUS_LABELS[facts.consent]}")
    if facts.transcript:
        lines.append(hd.bold("Последние сообщения:"))
        for role, text in facts.transcript:
            short = text if len(text) <= LINE_PREVIEW else text[:LINE_PREVIEW] + "…"
            lines.append(f"{ROLE_LABELS.get(role, role)}: {hd.quote(short)}")
    if not in_telegram:
        lines.append(hd.italic(hd.quote(NOT_IN_TELEGRAM.format(channel=notice.channel))))
    tail = [hd.quote(TOPIC_MODE if topics else REPLY_MODE), hd.quote(TOPIC_COMMANDS if topics else REPLY_COMMANDS)]
    text = "\n".join(lines + tail)
    if len(text) <= MESSAGE_LIMIT:
        return text
    # Too long for one message: keep the head (who, why, contact) and the tail (mode, commands).
    return "\n".join([handoff_card(notice), *tail])
