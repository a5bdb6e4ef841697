"""The staff chat (MANAGER_CHAT_ID) and the client's side of the relay.

Staff chat: a manager's message in a client's topic (or a reply to a client's card or message) goes to
that client (an anonymous admin posting as the group too), and an edit of it edits the client's copy; /release and the card's button return the conversation to the bot, /close also closes
the topic. The bot's own and service messages, commands and chatter outside client topics stay put.
Messages from any other group never reach a client: this router only sees MANAGER_CHAT_ID.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, Update
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram.relay.cards import RelayAction
from adapters.telegram.relay.staff import StaffRelay, client_message_key
from agent.errors import NotFound
from agent.relay import is_command
from agent.types import Reply

# What a manager may send a client: content, never service messages (topic created, member joined…).
RELAYABLE = frozenset(
    {"text", "photo", "document", "voice", "video", "audio", "sticker", "animation", "video_note", "contact", "location"}
)
NO_CLIENT_TEXT = "Эта команда работает в теме клиента или ответом на его сообщение."


def _who(message: Message | CallbackQuery) -> str:
    user = message.from_user
    return user.full_name if user is not None else "менеджер"


async def release_command(message: Message, relay: StaffRelay) -> None:
    await _release(message, relay, close=False)


async def close_command(message: Message, relay: StaffRelay) -> None:
    await _release(message, relay, close=True)


async def _release(message: Message, relay: StaffRelay, *, close: bool) -> None:
    conversation_id = await relay.conversation_of(message)
    if conversation_id is None:
        await message.reply(hd.quote(NO_CLIENT_TEXT))
        return
    try:
        await relay.release(conversation_id, by=_who(message), close=close)
    except NotFound:
        await message.reply(hd.quote("Этого разговора больше нет: клиент удалил свои данные."))


async def release_button(query: CallbackQuery, callback_data: RelayAction, relay: StaffRelay) -> None:
    try:
        await query.answer("Разговор возвращён боту" if callback_data.action == "release" else None)
    except TelegramBadRequest:
        pass  # reprocessed after a crash: the query is too old, the release still happens
    if callback_data.action != "release" or query.message is None or query.message.chat.id != relay.chat_id:
        return  # the card's button works only in the staff chat
    try:
        await relay.release(callback_data.conversation_id, by=_who(query))
    except NotFound:
        return


def anonymous_admin(message: Message) -> bool:
    """An admin posting as the group itself (Telegram sends GroupAnonymousBot as the sender and the
    group as ``sender_chat``): a manager. A linked channel's post has another ``sender_chat``."""
    return message.sender_chat is not None and message.sender_chat.id == message.chat.id


def _relayable(message: Message) -> bool:
    sender = message.from_user
    if sender is None or (sender.is_bot and not anonymous_admin(message)):
        return False  # the bot itself, other bots
    return message.content_type in RELAYABLE and not is_command(message.text)


async def manager_message(message: Message, relay: StaffRelay) -> None:
    if _relayable(message):
        await relay.from_manager(message)


async def manager_edit(message: Message, relay: StaffRelay) -> None:
    if _relayable(message):
        await relay.edit_from_manager(message)


async def client_edit(message: Message, relay: StaffRelay, event_update: Update) -> None:
    if message.from_user is not None and message.content_type in RELAYABLE:
        await relay.client_edited(message, event_update.update_id)


def client_edits(relay: StaffRelay) -> Router:
    """A client's edit of a message the managers got a copy of (a copy cannot be edited): a note under it."""
    router = Router(name="relay-client-edits")
    router.edited_message.filter(F.chat.type == "private")
    router.edited_message.register(client_edit)
    return router


def build(relay: StaffRelay) -> Router:
    """A fresh router for the staff chat; it goes first, so the chat never reaches the client routers."""
    router = Router(name="relay")

    async def staff_chat(event: Message) -> bool:
        return event.chat.id == relay.chat_id

    router.message.filter(staff_chat)
    router.message.register(release_command, Command("release"))
    router.message.register(close_command, Command("close"))
    router.message.register(manager_message)
    router.edited_message.filter(staff_chat)
    router.edited_message.register(manager_edit)
    router.callback_query.register(release_button, RelayAction.filter())
    return router


async def pass_to_managers(relay: StaffRelay | None, message: Message, reply: Reply | None, update_id: int) -> None:
    """After a client's turn: in human mode what they sent is copied to their topic."""
    if relay is None or reply is None or not reply.human_mode or reply.conversation_id is None:
        return
    await relay.from_client(message, reply.conversation_id, client_message_key(message.chat.id, message.message_id))
