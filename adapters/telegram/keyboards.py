"""Keyboards: quick replies (inline), program card links, the contact request, Mini App buttons."""

from __future__ import annotations

import logging

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    WebAppInfo,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder

from agent.types import ProgramCard, QuickReply

log = logging.getLogger(__name__)

CALLBACK_DATA_MAX_BYTES = 64
SHORT_LABEL = 16  # labels this short sit two to a row


class ForgetChoice(CallbackData, prefix="bot_forget"):
    """/forget confirmation; the prefix keeps it apart from the agent's quick-reply payloads."""

    confirm: bool


MAX_BUTTON_LABEL = 40  # longer labels are cut on a phone's inline button anyway


def button_label(label: str) -> str:
    return label if len(label) <= MAX_BUTTON_LABEL else label[: MAX_BUTTON_LABEL - 1].rstrip() + "…"


def quick_reply_rows(quick_replies: list[QuickReply]) -> list[list[InlineKeyboardButton]]:
    builder = InlineKeyboardBuilder()
    buttons = 0
    for item in quick_replies:
        if not item.payload or len(item.payload.encode()) > CALLBACK_DATA_MAX_BYTES:
            log.warning("quick reply %r dropped: callback_data must be 1-64 bytes", item.label)
            continue
        builder.button(text=button_label(item.label), callback_data=item.payload)
        buttons += 1
    if not buttons:
        return []
    short = all(len(q.label) <= SHORT_LABEL for q in quick_replies)
    builder.adjust(2 if short else 1)
    return builder.export()


def card_rows(card: ProgramCard) -> list[list[InlineKeyboardButton]]:
    if not card.url.startswith(("https://", "http://")):
        return []
    return [[InlineKeyboardButton(text="Подробнее на сайте", url=card.url)]]


def web_app_row(url: str, label: str) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=label, web_app=WebAppInfo(url=url))]


def inline(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def contact_request() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="📱 Поделиться номером", request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def forget_confirmation() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Да, удалить", callback_data=ForgetChoice(confirm=True).pack()),
                InlineKeyboardButton(text="Отмена", callback_data=ForgetChoice(confirm=False).pack()),
            ]
        ]
    )


def without_callback_buttons(markup: InlineKeyboardMarkup | None) -> InlineKeyboardMarkup | None:
    """The same keyboard with its pressed-once choices gone, links and Mini App buttons kept."""
    if markup is None:
        return None
    rows = [[b for b in row if b.callback_data is None] for row in markup.inline_keyboard]
    return inline([row for row in rows if row])
