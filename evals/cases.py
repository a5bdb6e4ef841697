"""An eval case as stored in evals/dialogs/*.yaml: user turns with expectations and a cassette.

The cassette is the model's side of the dialog: every HTTP exchange the openai SDK had with the
Responses API, in order, each with the turn it belongs to and the fingerprint of the request that
produced it. Recording rewrites only the ``cassette:`` block, so comments and formatting elsewhere
survive a re-recording.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

TAGS = ("funnel", "faq", "objection", "safety", "offline")
DIALOGS_DIR = Path(__file__).resolve().parent / "dialogs"
# libyaml's loader when present: cassettes are long, and the pure-Python parser dominates a replay.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TOP_LEVEL_RE = re.compile(r"^[A-Za-z_]")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolExpect(Strict):
    """A tool the model must call in this turn; ``args`` constrain the call's arguments.

    An argument's constraint is a plain value (equal), ``{contains: "..."}`` (case-insensitive substring)
    or ``{one_of: [...]}``.
    """

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class Expect(Strict):
    engine: Literal["model", "offline"] | None = None
    tools: list[ToolExpect] = Field(default_factory=list)
    tools_absent: list[str] = Field(default_factory=list)
    no_tools: bool = False  # the model answered without calling any tool
    text_contains: list[str] = Field(default_factory=list)  # all of them, case-insensitive
    text_contains_any: list[str] = Field(default_factory=list)
    text_not_contains: list[str] = Field(default_factory=list)
    quick_replies: list[str] = Field(default_factory=list)  # payloads; "program:" matches any program:<id>
    cards: int | None = None  # exact number of program cards
    card_ids: list[str] = Field(default_factory=list)
    lead_created: bool | None = None
    handoff: bool | None = None
    ask_contact: bool | None = None  # consent buttons or the phone request shown
    silent: bool | None = None


class Turn(Strict):
    say: str | None = None
    choice: str | None = None
    contact: str | None = None  # a phone shared with Telegram's contact button
    start: bool = False
    expect: Expect = Field(default_factory=Expect)
    # Expectations when the case runs on the offline policy (`--offline`); without them only the
    # universal checks and text_not_contains apply there.
    offline: Expect | None = None

    @model_validator(mode="after")
    def _one_input(self) -> Turn:
        given = [x for x in (self.say, self.choice, self.contact) if x] + ([True] if self.start else [])
        if len(given) != 1:
            raise ValueError("a turn has exactly one of say, choice, contact, start")
        return self

    def describe(self) -> str:
        if self.say:
            return self.say
        if self.choice:
            return f"[{self.choice}]"
        return "[контакт]" if self.contact else "/start"


class Exchange(Strict):
    """One recorded HTTP exchange with the Responses API."""

    turn: int
    request: dict[str, Any] = Field(default_factory=dict)  # {"fingerprint": ..., "parts": {...}}
    status: int = 200
    body: dict[str, Any]
    # The text deltas of a streamed answer, as they arrived (the body is the final Response). A replay
    # answers a streamed request with them; an answer recorded without them is cut into token pieces.
    deltas: list[str] | None = None
    injected: bool = False  # a fault put here on purpose (an outage): re-injected when re-recording


class Case(Strict):
    id: str
    title: str
    tags: list[str]
    mode: Literal["model", "offline"] = "model"
    today: date  # the school calendar is pinned to the recording day
    channel: Literal["telegram", "api", "miniapp"] = "telegram"
    user_id: str = "7001"
    first_name: str | None = "Анна"
    notes: str | None = None
    captured_from: int | None = None
    turns: list[Turn] = Field(min_length=1)
    cassette: list[Exchange] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_tags(self) -> Case:
        unknown = [tag for tag in self.tags if tag not in (*TAGS, "captured")]
        if unknown:
            raise ValueError(f"unknown tags {unknown}; use {list(TAGS)}")
        return self


class CaseFile(BaseModel):
    path: Path
    case: Case


def load_case(path: Path) -> CaseFile:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    return CaseFile(path=path, case=Case.model_validate(data))


def load_cases(folder: Path = DIALOGS_DIR, only: list[str] | None = None, tags: list[str] | None = None) -> list[CaseFile]:
    files = [load_case(path) for path in sorted(folder.glob("*.yaml"))]
    if only:
        files = [f for f in files if f.case.id in only or f.path.stem in only]
    if tags:
        files = [f for f in files if set(f.case.tags) & set(tags)]
    return files


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)


def write_cassette(path: Path, exchanges: list[Exchange]) -> None:
    """Replace the file's top-level ``cassette:`` block with the new recording; every other line
    (comments included) stays as written."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("cassette:")), len(lines))
    end = next((i for i in range(start + 1, len(lines)) if TOP_LEVEL_RE.match(lines[i])), len(lines))
    entries = [exchange.model_dump(mode="json", exclude={"deltas"} if exchange.deltas is None else None) for exchange in exchanges]
    block = dump_yaml({"cassette": entries})
    if start == len(lines) and lines and not lines[-1].endswith("\n"):
        block = "\n" + block
    path.write_text("".join(lines[:start]) + block + "".join(lines[end:]), encoding="utf-8")
