"""Everything else a user sends: text, quick-reply buttons, a shared contact, unsupported media.

Also follows my_chat_member, which tells when a user blocks or unblocks the bot.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, Update
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram import filters, keyboards
from adapters.telegram.relay.router import pass_to_managers
from adapters.telegram.relay.staff import StaffRelay, describe
from adapters.telegram.turns import TelegramContext, inbound_for, run_turn
from agent.types import SharedContact


NOT_OWN_CONTACT_TEXT = (
    "Пожалуйста, поделитесь своим номером кнопкой «📱 Поделиться номером» — "
    "чужой контакт принять не можем."
)
UNKNOWN_COMMAND_TEXT = "Такой команды я не знаю. Список команд — /help."
UNSUPPORTED_TEXT = "Я пока понимаю только текст и кнопки. Напишите, пожалуйста, вопрос словами."


async def contact(
    message: Message, bot: Bot, event_update: Update, tg: TelegramContext, relay: StaffRelay | None = None
) -> None:
    shared = message.contact
    sender = message.from_user
    if sender is None or shared is None or shared.user_id != sender.id:
        await message.answer(hd.quote(NOT_OWN_CONTACT_TEXT), reply_markup=keyboards.contact_request())
        return
    inbound = inbound_for(
        sender,
        event_update.update_id,
        contact=SharedContact(phone=shared.phone_number, first_name=shared.first_name, verified=True),
    )
    reply = await run_turn(tg, bot, message.chat.id, lambda: tg.assistant.handle(inbound), remove_keyboard=True)
    await pass_to_managers(relay, message, reply, event_update.update_id)


async def unknown_command(message: Message) -> None:
    await message.answer(hd.quote(UNKNOWN_COMMAND_TEXT))


async def text(
    message: Message, bot: Bot, event_update: Update, tg: TelegramContext, relay: StaffRelay | None = None
) -> None:
    inbound = inbound_for(message.from_user, event_update.update_id, text=message.text)  # type: ignore[arg-type]
    reply = await run_turn(tg, bot, message.chat.id, lambda: tg.assistant.handle(inbound))
    await pass_to_managers(relay, message, reply, event_update.update_id)


async def unsupported(
    message: Message, bot: Bot, event_update: Update, tg: TelegramContext, relay: StaffRelay | None = None
) -> None:
    """Media: relayed while a manager has the conversation (stored as «[фото] подпись»), else a polite
    «only text» answer."""
    sender = message.from_user
    if relay is not None and sender is not None and await relay.client_in_human_mode(sender.id, tg.settings.brand_default):
        inbound = inbound_for(sender, event_update.update_id, text=describe(message))
        reply = await run_turn(tg, bot, message.chat.id, lambda: tg.assistant.handle(inbound))
        await pass_to_managers(relay, message, reply, event_update.update_id)
        return
    await message.answer(hd.quote(UNSUPPORTED_TEXT))


async def choice(query: CallbackQuery, bot: Bot, event_update: Update, tg: TelegramContext) -> None:
    """A quick-reply button: answered at once (Telegram shows a spinner until then), then the turn."""
    try:
        await query.answer()
    except TelegramBadRequest:
        pass  # reprocessed after a crash: the query is too old, the choice still counts
    message = query.message
    if message is None or message.chat.type != "private":
        return
    pressed = getattr(message, "reply_markup", None)
    remaining = keyboards.without_callback_buttons(pressed)
    if pressed is not None and remaining != pressed:
        try:
            await bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=message.message_id, reply_markup=remaining)
        except TelegramBadRequest:
            pass  # "message is not modified" after a retry
    inbound = inbound_for(query.from_user, event_update.update_id, choice=query.data)
    await run_turn(tg, bot, message.chat.id, lambda: tg.assistant.handle(inbound))


async def membership(event: ChatMemberUpdated, tg: TelegramContext) -> None:
    if event.new_chat_member.status == "kicked":
        await tg.policy.mark_blocked(event.chat.id)
    else:
        await tg.policy.unblock(event.chat.id)


def build() -> Router:
    """A fresh router: aiogram attaches a router to one dispatcher only."""
    router = Router(name="conversation")
    router.message.filter(filters.private_chat)
    router.message.register(contact, filters.has_contact)
    router.message.register(unknown_command, filters.looks_like_command)
    router.message.register(text, filters.has_text)
    router.message.register(unsupported)
    router.callback_query.register(choice, filters.has_data)
    router.my_chat_member.register(membership, filters.private_chat)
    return router
