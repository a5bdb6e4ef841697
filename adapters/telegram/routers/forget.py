"""/forget: withdraw consent and delete the user's personal data and conversation (152-ФЗ), after a
confirmation button; the withdrawal itself is the assistant's one method for every channel."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram import filters, keyboards
from adapters.telegram.keyboards import ForgetChoice
from adapters.telegram.turns import TelegramContext
from agent.types import Channel
from agent.withdrawal import UserRef

log = logging.getLogger(__name__)

CONFIRM_TEXT = (
    "Удалить ваши персональные данные и всю переписку с ботом? Это отзыв согласия на обработку "
    "персональных данных; отменить удаление будет нельзя."
)
CANCELLED_TEXT = "Хорошо, ничего не удаляю."


async def forget_command(message: Message) -> None:
    await message.answer(hd.quote(CONFIRM_TEXT), reply_markup=keyboards.forget_confirmation())


async def forget_choice(query: CallbackQuery, callback_data: ForgetChoice, tg: TelegramContext) -> None:
    try:
        await query.answer()
    except TelegramBadRequest:
        pass  # a reprocessed update: the query is too old to answer, the deletion still happens
    if query.message is not None:
        try:
            await query.message.edit_reply_markup(reply_markup=None)  # type: ignore[union-attr]
        except TelegramBadRequest:
            pass  # already edited by an earlier attempt
    chat_id = query.message.chat.id if query.message else query.from_user.id
    if not callback_data.confirm:
        await query.bot.send_message(chat_id, hd.quote(CANCELLED_TEXT))  # type: ignore[union-attr]
        return
    # The same withdrawal as every other channel (agent/withdrawal.py): recorded, then the data deleted.
    user = UserRef(identity="telegram", external_id=str(query.from_user.id))
    withdrawn = await tg.assistant.withdraw_consent(user, Channel.telegram)
    await query.bot.send_message(chat_id, hd.quote(withdrawn.text))  # type: ignore[union-attr]


def build() -> Router:
    """A fresh router: aiogram attaches a router to one dispatcher only."""
    router = Router(name="forget")
    # Commands only: plain text skips these routers after one cheap check.
    router.message.filter(filters.private_chat, filters.looks_like_command)
    router.message.register(forget_command, Command("forget"))
    router.callback_query.register(forget_choice, ForgetChoice.filter())
    return router
