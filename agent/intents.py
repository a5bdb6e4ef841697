"""The intents table: what a message is about, from editable patterns (prompts/intents.yaml).

A school edits the patterns and reply texts in YAML; this module only validates and applies them.
Urgent topics come from the brand's rules (``handoff_topics``) when it defines them, else from the
defaults in the same file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.yaml_load import safe_load


class Intent(StrEnum):
    forget = "forget"
    person = "person"
    enrol = "enrol"
    consent_yes = "consent_yes"
    consent_no = "consent_no"
    skip = "skip"
    thanks = "thanks"
    greeting = "greeting"
    think = "think"
    price_objection = "price_objection"
    client = "client"
    service = "service"
    compute = "compute"
    offtopic = "offtopic"


def normalise(text: str) -> str:
    return text.lower().replace("ё", "е").strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Patterns(_Strict):
    patterns: tuple[str, ...] = Field(min_length=1)
    unless: tuple[str, ...] = ()

    @field_validator("patterns", "unless")
    @classmethod
    def _compiles(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"bad pattern {value!r}: {error}") from None
        return values

    def matches(self, lowered: str) -> bool:
        if not any(re.search(p, lowered) for p in self.patterns):
            return False
        return not any(re.search(p, lowered) for p in self.unless)


class UrgentTopic(Patterns):
    id: str
    reply: str = Field(min_length=1)


@dataclass(frozen=True)
class Handoff:
    """A topic that goes to a manager at once, with the reply the client gets."""

    id: str
    reply: str
    urgent: bool = True


HandoffLookup = Callable[[str], "Handoff | None"]


class IntentFile(_Strict):
    intents: dict[Intent, Patterns]
    urgent: tuple[UrgentTopic, ...] = ()
    replies: dict[str, str]
    objection_queries: tuple[str, ...] = ()
    # The knowledge question whose answer lists where classes are (after «no_site»: a place the content
    # does not name).
    sites_query: str = "где проходят очные занятия, адреса площадок"


# What makes the rest of a message a question or request to answer, rather than a bare funnel answer
# («11 класс», «онлайн»): a question mark, an interrogative, or a topic no funnel step covers.
_ASKS = re.compile(
    r"\?"
    r"|\b(?:сколько|можно|нельзя|ли|когда|где|куда|откуда|почему|зачем|как[аиоу]\w*|подскажите|расскажите|интересует|интересно)\b"
    r"|(?<!так )\bкак\b|^\s*что\b|\bчто\s+(?:входит|нужно|у вас|делать|будет)"
    r"|\bцен[аыуео]|\bстоим|\bстои[тл]|оплат|платн|плати|плат[её]ж|скидк|рассроч|вычет|капитал"
    r"|возврат|договор|документ|расписани|адрес"
)


class IntentTable:
    def __init__(self, spec: IntentFile) -> None:
        self.spec = spec
        self.urgent_topics: tuple[UrgentTopic, ...] = spec.urgent

    def classify(self, text: str) -> tuple[frozenset[Intent], Handoff | None]:
        lowered = normalise(text)
        found = frozenset(intent for intent, patterns in self.spec.intents.items() if patterns.matches(lowered))
        urgent = next((topic for topic in self.urgent_topics if topic.matches(lowered)), None)
        return found, Handoff(id=urgent.id, reply=" ".join(urgent.reply.split())) if urgent else None

    def asks(self, text: str) -> bool:
        return bool(text) and _ASKS.search(normalise(text)) is not None

    def reply(self, key: str, **values: str) -> str:
        text = self.spec.replies.get(key, "")
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return " ".join(text.split())


def parse_intents(text: str) -> IntentTable:
    return IntentTable(IntentFile.model_validate(safe_load(text)))


@lru_cache(maxsize=8)
def load_intents(path: Path) -> IntentTable:
    return parse_intents(path.read_text(encoding="utf-8"))
