"""The manager relay over Telegram: a topic (or a card to reply to) per handed-off conversation in
MANAGER_CHAT_ID, client messages copied in, manager messages copied out, release and idle return.

Every call runs inside an update or a job the durable queue handed out (work that starts in an HTTP
request is queued as a job: adapters/telegram/relay/jobs.py), through the bot's SendPolicy (rate
limits, 429, 403). Delivery to the client is idempotent on the staff message:
the manager's message is stored first (delivery ``pending``) and marked once Telegram accepted the
copy, so a crash before the copy resends it once after restart and a repeat after it sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import Message, ReplyParameters
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.storage.models import RelayTopic, utcnow
from adapters.storage.relay import ClientAddress, RelayRepository
from adapters.telegram.notifier import handoff_card
from adapters.telegram.relay.cards import release_keyboard, relay_card, transcript_url
from adapters.telegram.relay.jobs import RelayJobs, in_queue
from adapters.telegram.workers import PermanentFailure
from agent.errors import NotFound
from agent.ports import HandoffNotice
from agent.relay import RELEASED_TEXT, Author, Delivery, human_mode_deadline, topic_title
from agent.state import Store

log = logging.getLogger(__name__)

FORUM_CACHE_SECONDS = 300.0
# How long an admin's answer request waits for its job to tell what became of the answer.
ANSWER_WAIT_SECONDS = 5.0
# A handoff stores its topic a moment before the conversation's human mode: the idle check leaves
# topics this fresh alone.
IDLE_GRACE = timedelta(seconds=30)
BLOCKED_NOTE = "⚠️ Клиент заблокировал бота: сообщение не доставлено. Свяжитесь с ним другим способом."
RELEASED_NOTE = "↩️ Разговор возвращён боту ({by}). Напишите здесь снова, чтобы продолжить с клиентом."
IDLE_NOTE = (
    "⏰ Менеджер не писал {hours} ч — разговор вернулся к боту. Напишите здесь снова, чтобы продолжить."
)
API_CLIENT_PREFIX = "👤 Клиент"
EDIT_FAILED_NOTE = "✏️ Изменение не дошло до клиента: у него остался прежний текст. Напишите исправление новым сообщением."
MEDIA_LABELS = {
    "photo": "фото", "document": "документ", "voice": "голосовое сообщение", "video": "видео",
    "audio": "аудио", "sticker": "стикер", "animation": "анимация", "video_note": "видеосообщение",
    "contact": "контакт", "location": "геопозиция",
}


ANONYMOUS_MANAGER = "Менеджер"  # an admin posting as the group: Telegram does not say who
CLIENT_EDIT_NOTE = "✏️ Клиент изменил сообщение: {text}"


def client_message_key(chat_id: int, message_id: int) -> str:
    """The link of a client's Telegram message to its copy in the staff chat: a reprocessed update
    finds it and copies nothing twice, the client's edit finds the copy to note it under."""
    return f"tgm:{chat_id}:{message_id}"


def describe(message: Message) -> str:
    """A message as the transcript keeps it: its text, or «[фото] подпись» for media."""
    if message.text:
        return message.text
    content_type = getattr(message.content_type, "value", str(message.content_type))
    kind = MEDIA_LABELS.get(content_type, content_type)
    caption = f" {message.caption}" if message.caption else ""
    return f"[{kind}]{caption}"


def _gone(error: TelegramBadRequest) -> bool:
    """The topic was deleted (or the group lost its topics): a new one is needed."""
    text = error.message.lower()
    return "thread not found" in text or "topic_deleted" in text or "topic not found" in text


class StaffRelay:
    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        repo: RelayRepository,
        store: Store,
        release_conversation: Callable[[int], Awaitable[None]],
        *,
        idle_hours: float,
        admin_url: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.repo = repo
        self.store = store
        self.release_conversation = release_conversation
        self.idle_hours = idle_hours
        self.admin_url = admin_url
        self.clock = clock
        self._forum: tuple[bool, float] | None = None
        self.jobs: RelayJobs | None = None  # the queue's jobs (TelegramService sets it)

    # ------------------------------------------------------------------ from an HTTP request: queued

    async def _later(self, conversation_id: int, kind: str, **fields: Any) -> bool:
        """Queue the work when outside the queue (an HTTP request); False: run it in place."""
        if self.jobs is None or in_queue.get():
            return False
        await self.jobs.submit(conversation_id, kind, **fields)
        return True

    async def handoff(self, notice: HandoffNotice) -> None:
        """The notifier's handoff: in place inside an update, queued from an HTTP request (a client
        outside Telegram), so its later messages (jobs of the same line) come after the card."""
        if not await self._later(notice.conversation_id, "open", notice=notice.model_dump(mode="json")):
            await self.open(notice)

    async def queue_api_client_message(self, conversation_id: int, text: str, source_key: str | None = None) -> None:
        if not await self._later(conversation_id, "api_client", text=text, source_key=source_key):
            await self.from_api_client(conversation_id, text, source_key)

    async def release_from_admin(self, conversation_id: int, *, by: str) -> None:
        """The admin API's release: the conversation is the bot's when the request returns; the client's
        notice and the topic's note are queued."""
        await self.release_conversation(conversation_id)  # NotFound for an unknown conversation
        if not await self._later(conversation_id, "released", by=by):
            await self._announce_release(conversation_id, by=by)

    async def answer_from_admin(self, conversation_id: int, text: str, author: Author, *, key: str) -> Delivery:
        """An admin's answer: queued, then waited for a few seconds to tell what became of it
        (``pending`` when the queue has not got to it yet; the transcript shows it later)."""
        if await self.repo.client(conversation_id) is None:
            raise NotFound(f"conversation {conversation_id}")
        stored = await self.repo.manager_message(key)
        if stored is not None and (stored.meta or {}).get("delivery", "pending") != "pending":
            return (stored.meta or {})["delivery"]  # a repeat of an answer already handled
        fields = {"text": text, "author": author.model_dump(mode="json"), "key": key}
        if not await self._later(conversation_id, "admin_answer", **fields):
            return await self.send_from_admin(conversation_id, text, author, key=key)
        deadline = time.monotonic() + ANSWER_WAIT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            stored = await self.repo.manager_message(key)
            delivery = (stored.meta or {}).get("delivery", "pending") if stored is not None else "pending"
            if delivery != "pending":
                return delivery  # type: ignore[no-any-return]
        return "pending"

    async def run_job(self, job: dict[str, Any]) -> None:
        """A queued job (adapters/telegram/relay/jobs.py); raising lets the queue retry it."""
        kind, conversation_id = job.get("kind"), job.get("conversation_id")
        if not isinstance(conversation_id, int):
            raise PermanentFailure("relay job without a conversation")
        try:
            if kind == "open":
                await self.open(HandoffNotice.model_validate(job["notice"]))
            elif kind == "api_client":
                await self.from_api_client(conversation_id, job["text"], job.get("source_key"))
            elif kind == "admin_answer":
                await self.send_from_admin(conversation_id, job["text"], Author.model_validate(job["author"]), key=job["key"])
            elif kind == "released":
                await self._announce_release(conversation_id, by=job["by"])
            else:
                raise PermanentFailure(f"unknown relay job {kind!r}")
        except NotFound:
            log.info("relay job %s: conversation %s is gone (its data was withdrawn)", kind, conversation_id)

    # ------------------------------------------------------------------ the staff chat

    async def topics_enabled(self) -> bool:
        """Whether MANAGER_CHAT_ID is a forum (topics on); asked once every few minutes."""
        if self.chat_id > 0:
            return False  # a private chat with a manager: reply mode
        if self._forum is not None and time.monotonic() - self._forum[1] < FORUM_CACHE_SECONDS:
            return self._forum[0]
        chat = await self.bot.get_chat(self.chat_id)
        self._forum = (bool(chat.is_forum), time.monotonic())
        return self._forum[0]

    async def open(self, notice: HandoffNotice) -> None:
        """A handoff: create (or reuse, reopening it) the client's topic and post the card there."""
        conversation_id = notice.conversation_id
        if notice.transcript_url is None:
            notice = notice.model_copy(update={"transcript_url": transcript_url(self.admin_url, conversation_id)})
        state = await self.store.load_by_id(conversation_id)
        client = await self.repo.client(conversation_id)
        if state is None or client is None:  # nothing to relay to: the runbook's card alone
            await self.bot.send_message(self.chat_id, handoff_card(notice))
            return
        facts = await self.repo.card_facts(conversation_id, state.user_id)
        topic = await self.repo.topic(conversation_id)
        if topic is not None and topic.chat_id != self.chat_id:
            topic = None  # MANAGER_CHAT_ID changed since: start afresh in the new chat
        forum = await self.topics_enabled()
        thread = None
        if forum:
            try:
                thread = await self._thread(topic, topic_title(state))
            except TelegramBadRequest as error:  # e.g. the bot may not manage topics: answer by reply
                log.error("no topic for conversation %s (%s): the card goes out in reply mode", conversation_id, error.message)
                forum = False
        card = relay_card(notice, facts, topics=forum, in_telegram=client.telegram_chat_id is not None)
        # Stored before the card goes out: a manager may write in the new topic at once.
        row = await self._remember(topic, conversation_id, thread)
        try:
            sent = await self._post(card, thread, None, release_keyboard(conversation_id, self.admin_url))
        except TelegramBadRequest as error:
            if thread is None or not _gone(error):
                raise
            thread = await self._thread(None, topic_title(state))  # the old topic was deleted
            row = await self._remember(row, conversation_id, thread)
            sent = await self._post(card, thread, None, release_keyboard(conversation_id, self.admin_url))
        row.card_message_id = sent.message_id
        await self.repo.save_topic(row)
        await self.repo.link(self.chat_id, sent.message_id, conversation_id)

    async def _remember(self, topic: RelayTopic | None, conversation_id: int, thread: int | None) -> RelayTopic:
        row = topic or RelayTopic(conversation_id=conversation_id, chat_id=self.chat_id)
        row.thread_id, row.active, row.closed = thread, True, False
        return await self.repo.save_topic(row)

    async def _thread(self, topic: RelayTopic | None, title: str) -> int:
        if topic is None or topic.thread_id is None:
            created = await self.bot.create_forum_topic(self.chat_id, title)
            return created.message_thread_id
        try:
            if topic.closed:
                await self.bot.reopen_forum_topic(self.chat_id, topic.thread_id)
            await self.bot.edit_forum_topic(self.chat_id, topic.thread_id, name=title)  # the profile may have grown
        except TelegramBadRequest as error:
            if _gone(error):
                created = await self.bot.create_forum_topic(self.chat_id, title)
                return created.message_thread_id
            log.info("topic %s not updated: %s", topic.thread_id, error.message)  # e.g. TOPIC_NOT_MODIFIED
        return topic.thread_id

    async def _post(self, text: str, thread: int | None, reply_to: int | None, markup: Any = None) -> Message:
        reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
        return await self.bot.send_message(
            self.chat_id, text, message_thread_id=thread, reply_parameters=reply, reply_markup=markup
        )

    async def _note(self, topic: RelayTopic, text: str) -> None:
        """A line in the client's topic (under the card in reply mode); never fails the caller."""
        try:
            await self._post(hd.quote(text), topic.thread_id, None if topic.thread_id else topic.card_message_id)
        except TelegramAPIError as error:
            log.warning("note for conversation %s not posted: %s", topic.conversation_id, error)

    async def conversation_of(self, message: Message) -> int | None:
        """The conversation a staff-chat message belongs to: its topic, else the message it replies to."""
        if message.chat.id != self.chat_id:
            return None  # only the staff chat ever reaches a client
        if message.is_topic_message and message.message_thread_id is not None:
            found = await self.repo.conversation_for_thread(self.chat_id, message.message_thread_id)
            if found is not None:
                return found
        replied = message.reply_to_message
        if replied is not None:
            return await self.repo.conversation_for_message(self.chat_id, replied.message_id)
        return None

    # ------------------------------------------------------------------ client -> managers

    async def client_in_human_mode(self, telegram_id: int, brand: str) -> bool:
        return await self.repo.in_human_mode("telegram", str(telegram_id), brand, self.clock())

    async def from_client(self, message: Message, conversation_id: int, source_key: str) -> None:
        """Copy what the client sent into their topic (or under their card); once per update."""
        topic = await self.repo.topic(conversation_id)
        if topic is None or topic.chat_id != self.chat_id or await self.repo.copied(source_key):
            return
        reply = None if topic.thread_id else topic.card_message_id
        try:
            copied = await self.bot.copy_message(
                self.chat_id, message.chat.id, message.message_id, message_thread_id=topic.thread_id,
                reply_parameters=ReplyParameters(message_id=reply, allow_sending_without_reply=True) if reply else None,
            )
        except TelegramBadRequest as error:
            log.error("client message of conversation %s not copied to the staff chat: %s", conversation_id, error.message)
            return
        await self.repo.link(self.chat_id, copied.message_id, conversation_id, source_key)

    async def client_edited(self, message: Message, update_id: int) -> None:
        """The client edited a message the managers got a copy of: Telegram cannot edit a copy of
        someone else's message, so a note with the new words goes under the copy (once per update)."""
        copy = await self.repo.link_for(client_message_key(message.chat.id, message.message_id))
        if copy is None or copy.chat_id != self.chat_id:
            return  # never copied: the bot had the conversation then
        topic = await self.repo.topic(copy.conversation_id)
        key = f"tge:{message.chat.id}:{update_id}"
        if topic is None or topic.chat_id != self.chat_id or await self.repo.copied(key):
            return
        text = CLIENT_EDIT_NOTE.format(text=describe(message))
        try:
            sent = await self._post(hd.quote(text), topic.thread_id, copy.message_id)
        except TelegramBadRequest as error:
            log.warning("client edit of conversation %s not shown to managers: %s", copy.conversation_id, error.message)
            return
        await self.repo.link(self.chat_id, sent.message_id, copy.conversation_id, key)  # a reply to it reaches the client

    async def from_api_client(self, conversation_id: int, text: str, source_key: str | None = None) -> None:
        """A client outside Telegram wrote while a manager has the conversation: show it in the topic
        (once per ``source_key``: a retried request is not shown twice)."""
        topic = await self.repo.topic(conversation_id)
        if topic is None or topic.chat_id != self.chat_id or (source_key and await self.repo.copied(source_key)):
            return
        try:
            sent = await self._post(f"{API_CLIENT_PREFIX}: {hd.quote(text)}", topic.thread_id,
                                    None if topic.thread_id else topic.card_message_id)
        except (TelegramBadRequest, TelegramForbiddenError) as error:  # never accepted: no point retrying
            log.warning("client message of conversation %s not shown to managers: %s", conversation_id, error)
            return  # a flood wait, 5xx or network error raises: the queue runs the job again
        await self.repo.link(self.chat_id, sent.message_id, conversation_id, source_key)

    # ------------------------------------------------------------------ managers -> client

    async def from_manager(self, message: Message) -> None:
        conversation_id = await self.conversation_of(message)
        sender = message.from_user
        if conversation_id is None or sender is None:
            return
        if message.sender_chat is not None and message.sender_chat.id == message.chat.id:  # an anonymous admin
            author = Author(name=(message.author_signature or ANONYMOUS_MANAGER)[:128])
        else:
            author = Author(name=sender.full_name[:128], telegram_id=sender.id)
        key = f"relay:{message.chat.id}:{message.message_id}"
        await self._deliver(conversation_id, key, describe(message), author, source=message)

    async def edit_from_manager(self, message: Message) -> None:
        """A manager edited a message the relay carried: the client's copy is edited the same way (its
        text, or a media message's caption) and the transcript keeps the new words. The client is edited
        before the transcript, so a crash in between redoes the edit (Telegram answers «not modified»);
        an edit that changes nothing stored sends nothing. A client outside Telegram who has not taken
        the message yet simply gets the new words."""
        stored = await self.repo.manager_message(f"relay:{message.chat.id}:{message.message_id}")
        content = describe(message)
        if stored is None or stored.id is None or stored.content == content:
            return  # never relayed (a command, chatter outside topics) or a repeated edit
        meta = stored.meta or {}
        client = await self.repo.client(stored.conversation_id)
        chat, copy_id = (client.telegram_chat_id if client else None), meta.get("client_message_id")
        if meta.get("delivery") == "delivered" and client is not None and chat is not None and copy_id is not None:
            try:
                if message.text is not None:
                    await self.bot.edit_message_text(
                        text=message.text, chat_id=chat, message_id=copy_id, entities=message.entities, parse_mode=None
                    )
                else:
                    await self.bot.edit_message_caption(
                        chat_id=chat, message_id=copy_id, caption=message.caption,
                        caption_entities=message.caption_entities, parse_mode=None,
                    )
            except TelegramForbiddenError:
                await self._blocked(client)
            except TelegramBadRequest as error:
                if "not modified" not in error.message.lower():
                    topic = await self.repo.topic(stored.conversation_id)
                    if topic is not None:
                        await self._note(topic, f"{EDIT_FAILED_NOTE} ({error.message})")
                    return
        await self.repo.edit_manager_message(stored.id, content)

    async def send_from_admin(self, conversation_id: int, text: str, author: Author, *, key: str | None = None) -> Delivery:
        """An admin's answer from the admin API: delivered like a topic message and shown in the topic.
        ``key`` (the admin app's own id for the message) makes a repeated request send nothing twice."""
        delivery, handled = await self._deliver(conversation_id, key or f"admin:{conversation_id}:{time.time_ns()}", text, author, source=None)
        topic = await self.repo.topic(conversation_id)
        if handled and topic is not None and topic.chat_id == self.chat_id:
            await self._note(topic, f"🧑‍💼 {author.name} (админка): {text}")
        return delivery

    async def _deliver(
        self, conversation_id: int, key: str, content: str, author: Author, *, source: Message | None
    ) -> tuple[Delivery, bool]:
        """(what became of the message, whether this call handled it: False for a repeat of a message
        already delivered or parked, True for its first attempt and for a retry of a pending one)."""
        client = await self.repo.client(conversation_id)
        if client is None:
            raise NotFound(f"conversation {conversation_id}")
        meta = {
            "manager_id": author.telegram_id, "manager_name": author.name, "via": author.via, "delivery": "pending",
        }
        if source is not None:
            meta["staff_message"] = {"chat_id": source.chat.id, "message_id": source.message_id}
        until = human_mode_deadline(self.clock(), self.idle_hours)
        stored, _ = await self.repo.add_manager_message(conversation_id, key, content, meta, human_mode_until=until)
        assert stored.id is not None
        await self.repo.set_active(conversation_id, True)  # a manager writing takes the conversation (back)
        delivery: Delivery = (stored.meta or {}).get("delivery", "pending")
        if delivery != "pending":
            return delivery, False  # a repeat of a message already handled: nothing is sent twice
        chat = client.telegram_chat_id
        if chat is None:
            await self.repo.set_delivery(stored.id, "waiting")  # the client's next request carries it
            return "waiting", True
        try:
            if source is not None:
                sent = await self.bot.copy_message(chat, source.chat.id, source.message_id)
            else:
                sent = await self.bot.send_message(chat, hd.quote(content))
        except TelegramForbiddenError:
            await self.repo.set_delivery(stored.id, "blocked")
            await self._blocked(client)
            return "blocked", True
        await self.repo.set_delivery(stored.id, "delivered", client_message_id=sent.message_id)
        return "delivered", True

    async def _blocked(self, client: ClientAddress) -> None:
        topic = await self.repo.topic(client.conversation_id)
        if topic is not None:
            await self._note(topic, BLOCKED_NOTE)

    # ------------------------------------------------------------------ back to the bot

    async def release(self, conversation_id: int, *, by: str, close: bool = False) -> None:
        """/release, /close, the card's button: the bot answers the client again."""
        await self.release_conversation(conversation_id)  # NotFound for an unknown conversation
        topic = await self._announce_release(conversation_id, by=by)
        if topic is not None and close and topic.thread_id is not None and not topic.closed:
            try:
                await self.bot.close_forum_topic(self.chat_id, topic.thread_id)
            except TelegramBadRequest as error:
                log.info("topic %s not closed: %s", topic.thread_id, error.message)
            fresh = await self.repo.topic(conversation_id)
            if fresh is not None:
                fresh.closed = True
                await self.repo.save_topic(fresh)

    async def _announce_release(self, conversation_id: int, *, by: str) -> RelayTopic | None:
        """The client is told and the topic says so, once (only the call that flips the topic)."""
        topic = await self.repo.topic(conversation_id)
        if topic is None or topic.chat_id != self.chat_id:
            return None
        if await self.repo.set_active(conversation_id, False):
            await self._tell_client(conversation_id, RELEASED_TEXT)
            await self._note(topic, RELEASED_NOTE.format(by=by))
        return topic

    async def _tell_client(self, conversation_id: int, text: str) -> None:
        client = await self.repo.client(conversation_id)
        chat = client.telegram_chat_id if client else None
        if chat is None:
            return  # outside Telegram the bot's next answer says it all
        try:
            await self.bot.send_message(chat, hd.quote(text))
        except TelegramAPIError as error:
            log.info("release notice to conversation %s not sent: %s", conversation_id, error)

    async def sweep_idle(self) -> int:
        """Conversations no manager wrote in for HANDOFF_IDLE_HOURS go back to the bot; the topic says
        so. Safe in several processes: only the one that flips the topic posts the note."""
        returned = 0
        grace = min(IDLE_GRACE, timedelta(hours=self.idle_hours / 4))
        for topic in await self.repo.idle_topics(self.clock(), grace=grace):
            if not await self.repo.set_active(topic.conversation_id, False):
                continue
            try:
                await self.release_conversation(topic.conversation_id)
            except NotFound:
                continue
            await self._note(topic, IDLE_NOTE.format(hours=f"{self.idle_hours:g}"))
            returned += 1
        return returned
