"""What a parent sees while the assistant works: a «Thinking…» draft that grows into the answer.

Bot API 9.5 ``sendMessageDraft`` shows an animated, ephemeral draft in a private chat; the final
``sendMessage`` replaces it. ``TelegramLiveReply`` is the turn's ``LiveReply`` (agent/streaming.py):

- ``FEEDBACK_DELAY_SECONDS`` after the service received the update (a faster reply needs no
  indicator) it sends an empty draft, which Telegram shows as «Thinking…»; where drafts are refused (a
  group, a Bot API server without the method) it shows the typing indicator instead, as before. The
  delay counts from the update's arrival (``update_received``), not from when a worker got to it nor
  from when the feedback task first ran: with 50 chats writing at once, the turns' start-up keeps the
  event loop busy for a while, and a delay that only began after it added that time to every parent's
  wait (bench/live_replies.py);
- tool rounds turn the draft into a short status («Подбираю программы…»);
- the checked answer so far replaces it, at most once per ``DRAFT_INTERVAL_SECONDS`` (the newest text
  wins; intermediate ones are skipped);
- nothing here may delay or break the turn: every call returns at once, the requests run in a
  background task, and their failures are logged at debug level and dropped; a 429 stops the drafts
  for the rest of the turn (the final message keeps its own budget and retries).

A Bot API server that does not know the method answers 404 (or "method not found"): that is
remembered for the whole process (``DraftSupport``), so later turns go straight to typing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNotFound, TelegramRetryAfter
from aiogram.methods import SendMessageDraft
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.text_decorations import html_decoration as hd

log = logging.getLogger(__name__)

# A reply faster than this needs no indicator (and saves a request); short enough that the feedback
# reaches the parent within 0.3 s of the update arriving (bench/live_replies.py).
FEEDBACK_DELAY_SECONDS = 0.2
DRAFT_INTERVAL_SECONDS = 1.0  # about one draft per second per chat
TYPING_INTERVAL_SECONDS = 4.5  # "typing" fades after 5 s
# How long the final message waits for a draft request already on its way (so it cannot land after it).
IN_FLIGHT_WAIT_SECONDS = 2.0
DRAFT_MAX_CHARS = 4096


# When the update being handled reached the service (set by the queue worker around a turn).
_received_at: ContextVar[datetime | None] = ContextVar("update_received_at", default=None)


@contextlib.contextmanager
def update_received(at: datetime | None) -> Iterator[None]:
    """Feedback shown in this block counts its delay from ``at`` (aware UTC), the update's arrival."""
    token = _received_at.set(at)
    try:
        yield
    finally:
        _received_at.reset(token)


def _already_waited(received: datetime | None) -> float:
    """Seconds the parent has waited since the update arrived (0 when unknown; never negative, even
    when the process that took the update in has a clock slightly ahead of this one's)."""
    if received is None:
        return 0.0
    return max(0.0, time.time() - received.timestamp())


class StartGate:
    """Lets the turns of one process start their heavy part one per pass of the event loop.

    A turn's start-up (opening the turn, understanding the message, building the model request) is CPU
    that runs without yielding until its first real wait (on SQLite even its transactions run in
    place). 50 updates claimed at once all started in one pass, ~130 ms on a quiet machine and more
    than a second on a loaded one, and every timer and socket waited for the whole pass: the
    «Thinking…» drafts due 0.2 s after arrival went out only after all 50 start-ups. The turns enter
    their feedback first and then pass this gate, so each starts when it would have (the same CPU in
    the same order) while the drafts and other I/O get the loop between two start-ups."""

    def __init__(self) -> None:
        self._free = asyncio.Semaphore(1)

    async def wait(self) -> None:
        await self._free.acquire()
        # Free again on the next pass, once this turn's start-up has run.
        asyncio.get_running_loop().call_soon(self._free.release)


class DraftSupport:
    """Whether this process's Bot API server accepts ``sendMessageDraft`` (learned once)."""

    def __init__(self) -> None:
        self.available = True

    def refused(self, error: TelegramAPIError) -> bool:
        """Remember a server without the method; True when ``error`` says so."""
        message = error.message.lower()
        if isinstance(error, TelegramNotFound) or "method not found" in message or "unknown method" in message:
            if self.available:
                log.info("the Bot API server has no sendMessageDraft; using the typing indicator")
            self.available = False
            return True
        return False


class TelegramLiveReply:
    """One turn's feedback in one chat (use as ``async with``; see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        support: DraftSupport,
        *,
        delay: float = FEEDBACK_DELAY_SECONDS,
        interval: float = DRAFT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.support = support
        self.delay = delay
        self.interval = interval
        self.clock = clock
        # Drafts exist in private chats only (a private chat's id is the user's, a positive number).
        self.drafts = chat_id > 0 and support.available
        # The placeholder and statuses morph into each other; the answer replaces them with its own id.
        self._status_id = secrets.randbelow(2**31 - 2) + 1
        self._text_id = self._status_id % (2**31 - 2) + 1
        self._pending: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None
        self._last_sent = float("-inf")
        self.flooded = False
        # The feedback is due ``delay`` after the update arrived: fixed now, so neither the time the
        # update waited for a worker nor the time before the task below first runs adds to it.
        self._due = clock() + max(0.0, delay - _already_waited(_received_at.get()))

    # ----------------------------------------------------------------- LiveReply

    def status(self, text: str) -> None:
        self._offer(self._status_id, hd.italic(hd.quote(text)))

    def text(self, text: str) -> None:
        if len(text) <= DRAFT_MAX_CHARS:
            self._offer(self._text_id, hd.quote(text))

    def _offer(self, draft_id: int, html: str) -> None:
        if self.drafts and not self.flooded:
            self._pending = (draft_id, html)
            self._wake.set()

    # ----------------------------------------------------------------- lifetime

    async def __aenter__(self) -> TelegramLiveReply:
        self._task = asyncio.create_task(self._run(), name=f"feedback-{self.chat_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop before the final message goes out; a draft already on its way is let through first."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight is not None and not self._in_flight.done():
            await asyncio.wait([self._in_flight], timeout=IN_FLIGHT_WAIT_SECONDS)

    async def _run(self) -> None:
        try:
            await asyncio.sleep(max(0.0, self._due - self.clock()))
            if self.drafts and self._pending is None:
                self._pending = (self._status_id, "")  # empty text: Telegram's «Thinking…» placeholder
            while self.drafts and not self.flooded:
                if self._pending is None:
                    await self._wake.wait()
                self._wake.clear()
                await asyncio.sleep(max(0.0, self._last_sent + self.interval - self.clock()))
                if self._pending is None:
                    continue
                draft_id, html = self._pending
                self._pending = None
                self._last_sent = self.clock()
                self._in_flight = asyncio.ensure_future(self._send(draft_id, html))
                await asyncio.shield(self._in_flight)
            if not self.flooded:
                await self._typing()
        except asyncio.CancelledError:
            raise
        except Exception:  # feedback is a courtesy: never the reason a turn fails
            log.debug("feedback for chat %s failed", self.chat_id, exc_info=True)

    async def _send(self, draft_id: int, html: str) -> None:
        try:
            await self.bot(SendMessageDraft(chat_id=self.chat_id, draft_id=draft_id, text=html, parse_mode=ParseMode.HTML))
        except TelegramAPIError as error:
            log.debug("draft refused in chat %s: %s", self.chat_id, error)
            if isinstance(error, TelegramRetryAfter):
                self._pending = None
                self._wake.clear()
                self.flooded = True  # no more drafts (nor typing) this turn: the message needs the room
            elif self.support.refused(error) or isinstance(error, TelegramBadRequest):
                self.drafts = False  # e.g. not a private chat: typing for the rest of the turn
        except Exception as error:  # network trouble: this draft is skipped, the next may pass
            log.debug("draft not sent to chat %s: %s", self.chat_id, type(error).__name__)

    async def _typing(self) -> None:
        """The typing indicator until the turn ends (the task is cancelled then)."""
        async with ChatActionSender.typing(bot=self.bot, chat_id=self.chat_id, interval=TYPING_INTERVAL_SECONDS, initial_sleep=0):
            await asyncio.Event().wait()
