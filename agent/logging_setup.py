"""One log format for the whole process: JSON when stderr is not a TTY, secrets redacted.

The request id (HTTP) and the update id (Telegram) ride in context variables, so every line a
request or an update causes carries them without threading them through calls.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
update_id_var: ContextVar[int | None] = ContextVar("update_id", default=None)

# Shapes of secrets that may reach a log line even when we don't know the value (e.g. from a URL).
_SECRET_PATTERNS = [
    re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token (also inside /bot<token>/)
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"),  # OpenAI key
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(x-auth-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",]{6,}"),
]
REDACTED = "***"


class Redactor:
    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = sorted({s for s in secrets or [] if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text


class ContextFilter(logging.Filter):
    """Adds request/update ids and redacts the formatted message and exception text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.update_id = update_id_var.get()
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + format_exception(record.exc_info[1])
            record.exc_info = None
            record.exc_text = None
        record.msg = self.redactor(message)
        record.args = None
        return True


# Database drivers put the values a statement was sent with into their messages (PostgreSQL's «Failing
# row contains (…)», SQLAlchemy's «[parameters: …]»): messages, names, phones. Their tracebacks are
# logged with the error's type and SQLSTATE only.
_DATA_CARRYING_MODULES = ("sqlalchemy", "psycopg", "sqlite3", "aiosqlite", "asyncpg")


def _carries_data(error: BaseException) -> bool:
    return type(error).__module__.split(".")[0] in _DATA_CARRYING_MODULES


def _withheld(error: BaseException) -> str:
    code = getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate", None)
    return f"(message withheld: may hold personal data; sqlstate={code})"


def describe_error(error: BaseException) -> str:
    """One line for a log or a stored last_error: the type, and the message unless a database's."""
    if _carries_data(error):
        return f"{type(error).__name__} {_withheld(error)}"
    return f"{type(error).__name__}: {error}"


def format_exception(error: BaseException | None) -> str:
    """The traceback as logging prints it, with the message of each database error withheld."""
    if error is None:
        return ""
    text = "".join(traceback.TracebackException.from_exception(error).format()).rstrip("\n")
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    for item in chain:
        shown = str(item)
        if shown and _carries_data(item):
            text = text.replace(shown, _withheld(item))
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = []
        if getattr(record, "request_id", None):
            ids.append(f"req={record.request_id}")
        if getattr(record, "update_id", None) is not None:
            ids.append(f"upd={record.update_id}")
        prefix = f" [{' '.join(ids)}]" if ids else ""
        return f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}{prefix}: {record.getMessage()}"


# Library loggers that would otherwise print URLs with tokens (aiogram puts the bot token in URLs), or
# every step of their work.
NOISY_LOGGERS = ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine", "bm25s")


def quiet_library_loggers(names: tuple[str, ...] = NOISY_LOGGERS) -> None:
    """Those loggers at WARNING, or at the configured level when it is higher. Called again by modules
    that import such a library after start-up (bm25s sets its own logger to DEBUG when imported)."""
    level = max(logging.WARNING, logging.getLogger().level)
    for noisy in names:
        logging.getLogger(noisy).setLevel(level)


def configure_logging(level: str = "INFO", secrets: list[str] | None = None, *, json: bool | None = None) -> None:
    global _format
    use_json = (not sys.stderr.isatty()) if json is None else json
    _format = (use_json, Redactor(secrets))
    handler = logging.StreamHandler(sys.stderr)
    if use_json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(update_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(ContextFilter(_format[1]))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_library_loggers()
    # uvicorn installs its own handlers; route its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


# (JSON lines?, the redactor) of the last configure_logging call, for writers that bypass the logging
# module on hot paths (adapters/http/access_log.py).
_format: tuple[bool, Redactor] | None = None


def log_format() -> tuple[bool, Redactor]:
    return _format if _format is not None else (not sys.stderr.isatty(), Redactor())
