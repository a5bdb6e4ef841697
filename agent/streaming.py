"""Live replies: what a turn shows while the model is still writing, and the rule that nothing
unchecked is ever shown.

An adapter that can show progress (Telegram drafts, Server-Sent Events) puts a ``LiveReply`` in the
turn's context with ``live_reply(sink)``; the model turn finds it there (so the service's signature,
shared by every channel, stays as it is). The model streams its structured answer as JSON; the
``AnswerPreview`` pulls the ``text`` field out of the incomplete JSON as it grows and hands the sink
only prefixes that end at a sentence boundary and that the reply guardrails leave unchanged. The
first prefix the guardrails would change (an invented «99 000 ₽», a foreign link, a quoted prompt)
stops the preview for the rest of the turn: the final reply, checked as a whole, replaces it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

import jiter

log = logging.getLogger(__name__)

# Telegram drafts take at most 4096 characters; the final message is split there, the preview stops.
MAX_PREVIEW_CHARS = 4000
STATUS_BY_TOOL = {
    "catalog_search": "Подбираю программы…",
    "kb_file_search": "Смотрю в базе знаний…",
    "web_fallback": "Ищу на сайте школы…",
    "crm_lookup": "Проверяю данные…",
    "create_lead": "Оформляю заявку…",
    "handoff_to_manager": "Зову менеджера…",
}
# The end of a sentence: terminal punctuation (and closing quotes or brackets) before whitespace, or
# the end of a line. A line that is only a list number («1.») is not a sentence.
_BOUNDARY = re.compile(r"[.!?…]+[»)\"']*(?=\s)|(?=\n)")
_LIST_NUMBER = re.compile(r"(?:^|\n)\s*\d{1,2}\.$")


class LiveReply(Protocol):
    """Where a turn's progress goes. Calls must return at once (queue or schedule the I/O) and never
    raise: progress is a courtesy that must not delay or break the turn."""

    def status(self, text: str) -> None:
        """A short note on what the assistant is doing («Подбираю программы…»)."""

    def text(self, text: str) -> None:
        """The checked answer so far; each call extends the previous one."""


_current: ContextVar[LiveReply | None] = ContextVar("live_reply", default=None)


@contextmanager
def live_reply(sink: LiveReply | None) -> Iterator[None]:
    """Show this turn's progress on ``sink`` (None: show nothing)."""
    token = _current.set(sink)
    try:
        yield
    finally:
        _current.reset(token)


def current_live_reply() -> LiveReply | None:
    return _current.get()


def mute_live_reply() -> None:
    """Show nothing live for the rest of this turn (its reply will not start with the model's text)."""
    _current.set(None)


def answer_text_so_far(raw_json: str) -> str:
    """The ``text`` field of an incomplete structured answer (``{"text": "Здравствуй`` -> «Здравствуй»)."""
    try:
        parsed = jiter.from_json(raw_json.encode("utf-8"), partial_mode="trailing-strings")
    except ValueError:
        return ""
    text = parsed.get("text") if isinstance(parsed, dict) else None
    return text if isinstance(text, str) else ""


def text_complete(raw_json: str) -> bool:
    """Whether the ``text`` field's string is closed (its end is the end of the last sentence)."""
    try:
        parsed = jiter.from_json(raw_json.encode("utf-8"), partial_mode="on")  # drops an unfinished string
    except ValueError:
        return False
    return isinstance(parsed, dict) and "text" in parsed


def sentence_prefixes(text: str, start: int = 0, *, complete: bool = False) -> Iterator[str]:
    """Every prefix of ``text`` longer than ``start`` characters that ends at a sentence boundary
    (``complete``: the whole text is written, so its end is one too)."""
    for match in _BOUNDARY.finditer(text, start):
        prefix = text[: match.end()].rstrip()
        if len(prefix) > start and not _LIST_NUMBER.search(prefix):
            yield prefix
    if complete and len(text.rstrip()) > start:
        yield text.rstrip()


class AnswerPreview:
    """Feeds a ``LiveReply`` from the model's streamed answer, one checked sentence at a time.

    ``check`` is the reply guardrails the final text goes through (returns the text it would send);
    a prefix is shown only when the check returns it unchanged.
    """

    def __init__(self, sink: LiveReply, check: Callable[[str], str]) -> None:
        self.sink = sink
        self.check = check
        self.shown = ""
        self.stopped = False
        self._raw = ""
        self._status = ""

    def tools(self, names: list[str]) -> None:
        """A tool round starts: say what the assistant is doing (once per distinct status)."""
        status = next((STATUS_BY_TOOL[name] for name in names if name in STATUS_BY_TOOL), "")
        if status and status != self._status and not self.shown and not self.stopped:
            self._status = status
            self._emit(self.sink.status, status)

    def new_round(self) -> None:
        self._raw = ""

    def feed(self, delta: str) -> None:
        """One ``response.output_text.delta`` of the structured answer."""
        if self.stopped:
            return
        self._raw += delta
        text = answer_text_so_far(self._raw).lstrip()  # the final text is stripped too
        if len(text) <= len(self.shown):
            return
        # A closing quote may end the text: then its last sentence is whole (checked only when one came).
        complete = '"' in delta and text_complete(self._raw)
        good = ""
        for prefix in sentence_prefixes(text, len(self.shown) if text.startswith(self.shown) else 0, complete=complete):
            if len(prefix) > MAX_PREVIEW_CHARS:
                self.stopped = True
                break
            if self.check(prefix) != prefix:
                log.debug("preview stopped: the guardrails change the text at %d characters", len(prefix))
                self.stopped = True
                break
            good = prefix
        if good and good != self.shown:
            self.shown = good
            self._emit(self.sink.text, good)

    def _emit(self, method: Callable[[str], None], value: str) -> None:
        try:
            method(value)
        except Exception:  # a broken sink loses the preview, never the turn
            log.debug("live reply sink failed; preview off for this turn", exc_info=True)
            self.stopped = True
