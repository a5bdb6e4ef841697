"""/forget: withdraw consent and delete the user's personal data and conversation (152-ФЗ)."""

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

log = logging.getLogger(__name__)

CONFIRM_TEXT = (
    "Удалить ваши персональные данные и всю переписку с ботом? Это отзыв согласия на обработку "
    "персональных данных; отменить удаление будет нельзя."
)
DONE_TEXT = (
    "Готово: ваши данные и переписка удалены, согласие отозвано. Если захотите вернуться, "
    "напишите /start."
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
    user = await tg.users.get_or_create("telegram", str(query.from_user.id))
    await tg.users.forget(user.id)  # type: ignore[arg-type]
    log.info("user %s withdrew consent: personal data deleted", user.id)
    await query.bot.send_message(chat_id, hd.quote(DONE_TEXT))  # type: ignore[union-attr]


def build() -> Router:
    """A fresh router: aiogram attaches a router to one dispatcher only."""
    router = Router(name="forget")
    # Commands only: plain text skips these routers after one cheap check.
    router.message.filter(filters.private_chat, filters.looks_like_command)
    router.message.register(forget_command, Command("forget"))
    router.callback_query.register(forget_choice, ForgetChoice.filter())
    return router
