"""Reply -> Telegram messages: HTML with every model/user character escaped, split at 4096."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram import keyboards
from agent.types import Action, ProgramCard, Reply

MESSAGE_LIMIT = 4096  # characters after entity parsing, i.e. of the unescaped text
CHOOSE_PROMPT = "Выберите, пожалуйста, вариант:"
CONTACT_PROMPT = "Чтобы оставить номер, нажмите кнопку «📱 Поделиться номером» ниже."
CONTACT_RECEIVED = "Спасибо, номер получен."
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove

# Coarse to fine: paragraphs, lines, sentences, words; a single longer word is cut.
_LEVELS: list[tuple[Callable[[str], list[str]], str]] = [
    (lambda t: re.split(r"\n\s*\n", t), "\n\n"),
    (lambda t: t.split("\n"), "\n"),
    (lambda t: re.split(r"(?<=[.!?…])\s+", t), " "),
    (lambda t: t.split(" "), " "),
]


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    text = text.strip()
    if not text:
        return []
    return [c for c in _split(text, limit, 0) if c.strip()]


def _split(text: str, limit: int, level: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    if level == len(_LEVELS):
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    splitter, joiner = _LEVELS[level]
    chunks: list[str] = []
    current = ""
    for part in splitter(text):
        if len(part) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(_split(part, limit, level + 1))
            continue
        candidate = f"{current}{joiner}{part}" if current else part
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = part
    if current:
        chunks.append(current)
    return chunks


def card_html(card: ProgramCard) -> str:
    lines = [hd.bold(hd.quote(card.title))]
    if card.why_match:
        lines.append(hd.quote(card.why_match))
    lines.append(f"💰 {hd.quote(card.price_text)}")
    lines.append(f"📅 {hd.quote(card.next_start_text)}")
    lines += [f"• {hd.quote(point)}" for point in card.usp]
    return "\n".join(lines)


@dataclass
class Outgoing:
    text: str  # HTML
    markup: Markup | None = None


def plan_messages(
    reply: Reply, *, webapp_url: str | None = None, remove_keyboard: bool = False
) -> list[Outgoing]:
    """What to send for one reply, in order. Silent replies send nothing."""
    if reply.silent:
        return []
    messages = [Outgoing(hd.quote(chunk)) for chunk in split_text(reply.text)]
    for card in reply.cards:
        # A card is short, but the model-facing fields are still capped to one message.
        messages.append(Outgoing(card_html(card)[:MESSAGE_LIMIT], keyboards.inline(keyboards.card_rows(card))))

    rows = keyboards.quick_reply_rows(reply.quick_replies)
    if Action.open_miniapp in reply.actions and webapp_url:
        rows.append(keyboards.web_app_row(webapp_url, "Открыть мини-приложение"))
    if rows:
        last = messages[-1] if messages else None
        if last is None:
            messages.append(Outgoing(hd.quote(CHOOSE_PROMPT), keyboards.inline(rows)))
        elif last.markup is None:
            last.markup = keyboards.inline(rows)
        else:  # a card: its link row stays on top
            assert isinstance(last.markup, InlineKeyboardMarkup)
            last.markup = keyboards.inline([*last.markup.inline_keyboard, *rows])

    # A reply keyboard (or its removal) can only ride on a message without an inline keyboard.
    reply_markup: Markup | None = None
    fallback = ""
    if Action.ask_contact in reply.actions:
        reply_markup, fallback = keyboards.contact_request(), CONTACT_PROMPT
    elif remove_keyboard:
        reply_markup, fallback = ReplyKeyboardRemove(), CONTACT_RECEIVED
    if reply_markup is not None:
        free = next((m for m in messages if m.markup is None), None)
        if free is not None:
            free.markup = reply_markup
        else:
            messages.append(Outgoing(hd.quote(fallback), reply_markup))
    return messages


async def send_reply(
    bot: Bot, chat_id: int, reply: Reply, *, webapp_url: str | None = None, remove_keyboard: bool = False
) -> int:
    """Send the reply; returns how many messages went out."""
    planned = plan_messages(reply, webapp_url=webapp_url, remove_keyboard=remove_keyboard)
    for message in planned:
        await bot.send_message(chat_id, message.text, parse_mode=ParseMode.HTML, reply_markup=message.markup)
    return len(planned)
