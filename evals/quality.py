"""The answer-quality set: parents' messages and dialogs with what a good reply must (and must not)
contain, the action it must take and the buttons it must (not) offer, run through the real
AssistantService (``python -m evals quality``). Separate from the evals: those replay recorded model
dialogs; this measures how good the replies are, by category, with hard gates no reply may break.

Files: evals/quality/messages.yaml (single messages) and evals/quality/dialogs.yaml (multi-turn).
A check item:

    - id: price-online-weekend           # unique
      category: price                    # the breakdown's row
      say: "сколько стоит онлайн 7 класс математика?"
      before: ["…"]                      # optional unchecked turns first (the same user)
      brand: kmipt                       # optional (the demo brand checks brand separation)
      channel: telegram                  # optional: telegram | api | miniapp
      must: ["37 000", ["семестр", "год"]]   # every entry present; a list = any one of its alternatives
      must_not: ["зимн"]
      action: answer                     # answer | handoff | contact | forget | silent | any
      buttons: ["program:"]              # payload prefixes that must be offered
      no_buttons: ["grade:"]             # payload prefixes that must not be offered

A dialog has ``id``, ``category`` and ``turns`` (each: ``say`` or ``choice`` plus the checks above).
"""

from __future__ import annotations

import re
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.wiring import build_runtime
from agent.catalog import Catalog
from agent.personal_data import digits_of
from agent.settings import CrmProvider, Settings
from agent.types import Action, Channel, Inbound, Reply
from evals.runner import RecordingNotifier

QUALITY_DIR = Path(__file__).resolve().parent / "quality"
Alternatives = str | list[str]
ActionName = Literal["answer", "handoff", "contact", "forget", "silent", "any"]

# Hard gates: phrases that promise what no fact backs (an action «сейчас», a call «завтра», a seat, money).
PROMISES = re.compile(
    r"\b(?:сейчас|прямо сейчас|немедленно|сегодня|завтра|через (?:час|пару минут|\d+ минут))\s+(?:\w+\s+)?"
    r"(?:позвон|перезвон|свяж|напиш|ответ|подключ|верн|оформ)\w*"
    r"|гарантир\w*|\bточно (?:поступ|сдаст|сдадите|получит)|место (?:за вами|забронирован|закреплен)"
    r"|(?:мы |вам )?верн[её]м (?:вам )?деньги|деньги (?:вам )?вернут|возвратим",
    re.IGNORECASE,
)
SISTER_BRAND = re.compile(r"фотон|cdpofoton|цдпо|црдо|500-25-88|550-25-88|foton_edu|т-банк|«?долями»?", re.IGNORECASE)
# What a reply of the demo brand must never show: the sample brand's name, site and places.
KMIPT_MARKS = re.compile(r"унпк|мфти|kmipt|долгопрудн|менделеев|сретенк|пацаев", re.IGNORECASE)
DATE_NUMERIC = re.compile(r"\b\d{2}\.\d{2}\.\d{4}\b")
DATE_WORDS = re.compile(
    r"\b(\d{1,2})(?:\s*[–-]\s*\d{1,2})?\s+(января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря)",
    re.IGNORECASE,
)
AMOUNT = re.compile(r"(?<![\d])(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[ \u00a0\u202f]*)(?:₽|руб)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Checks(_Strict):
    must: list[Alternatives] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)
    action: ActionName = "answer"
    buttons: list[str] = Field(default_factory=list)
    no_buttons: list[str] = Field(default_factory=list)


class Message(Checks):
    id: str
    category: str
    say: str
    before: list[str] = Field(default_factory=list)
    brand: str = "kmipt"
    channel: Literal["telegram", "api", "miniapp"] = "telegram"


class DialogTurn(Checks):
    say: str | None = None
    choice: str | None = None

    @model_validator(mode="after")
    def _one_input(self) -> DialogTurn:
        if bool(self.say) == bool(self.choice):
            raise ValueError("a turn has exactly one of say, choice")
        return self


class Dialog(_Strict):
    id: str
    category: str
    brand: str = "kmipt"
    channel: Literal["telegram", "api", "miniapp"] = "telegram"
    turns: list[DialogTurn] = Field(min_length=2)


class QualitySet(_Strict):
    messages: list[Message]
    dialogs: list[Dialog]


def load_set(folder: Path = QUALITY_DIR) -> QualitySet:
    messages = yaml.safe_load((folder / "messages.yaml").read_text(encoding="utf-8")) or []
    dialogs = yaml.safe_load((folder / "dialogs.yaml").read_text(encoding="utf-8")) or []
    return QualitySet(messages=messages, dialogs=dialogs)


# ---------------------------------------------------------------------------- judging one reply


def action_of(reply: Reply) -> str:
    payloads = {q.payload for q in reply.quick_replies}
    if reply.silent:
        return "silent"
    if Action.handoff in reply.actions:
        return "handoff"
    if "forget:yes" in payloads:
        return "forget"
    if "consent:yes" in payloads or Action.ask_contact in reply.actions or reply.lead_id is not None:
        return "contact"
    return "answer"


@dataclass(frozen=True)
class Corpus:
    """What the brand's content states: the amounts and dates a reply may name."""

    amounts: frozenset[int]
    text: str  # the catalog's and knowledge base's text, lower case, for date look-ups


def problems_of(checks: Checks, reply: Reply) -> list[str]:
    text = reply.text.lower()
    problems = []
    for entry in checks.must:
        options = [entry] if isinstance(entry, str) else entry
        if not any(option.lower() in text for option in options):
            problems.append(f"missing {' | '.join(options)}")
    problems += [f"has «{phrase}»" for phrase in checks.must_not if phrase.lower() in text]
    acted = action_of(reply)
    if checks.action != "any" and acted != checks.action:
        problems.append(f"action {acted}, expected {checks.action}")
    payloads = [q.payload for q in reply.quick_replies]
    problems += [f"no button {b}" for b in checks.buttons if not any(p.startswith(b) for p in payloads)]
    problems += [f"button {b} offered" for b in checks.no_buttons if any(p.startswith(b) for p in payloads)]
    return problems


def hard_gates(said: str, reply: Reply, *, corpus: Corpus, brand: str, urgent: bool, name: str | None) -> list[str]:
    """Violations no reply may have, whatever the set's expectations say."""
    text = reply.text
    found = []
    for match in AMOUNT.finditer(text):
        value = int(re.sub(r"\D", "", match.group(1)))
        if value not in corpus.amounts:
            found.append(f"invented amount {match.group(0)}")
    for match in DATE_NUMERIC.finditer(text):
        if match.group(0) not in corpus.text:
            found.append(f"invented date {match.group(0)}")
    for match in DATE_WORDS.finditer(text):
        if f"{match.group(1)} {match.group(2).lower()}" not in corpus.text and match.group(0).lower() not in corpus.text:
            found.append(f"invented date {match.group(0)}")
    for phone in re.findall(r"(?:\+?\d[\s\-()]*){10,14}\d", said):
        digits = digits_of(phone)[-10:]
        if len(digits) == 10 and digits in digits_of(text):
            found.append("full phone echoed")
    if name and " " in name and name.lower() in text.lower():
        found.append("full name echoed")
    if urgent and action_of(reply) not in ("handoff", "silent"):
        found.append("urgent topic not handed over")
    for match in PROMISES.finditer(text):
        if not re.search(r"\bне\s+(?:\w+\s+)?$", text[max(0, match.start() - 16): match.start()].lower()):
            found.append(f"unbacked promise «{match.group(0)}»")  # «не можем гарантировать» is no promise
    marks = KMIPT_MARKS if brand != "kmipt" else SISTER_BRAND
    if match := marks.search(text):
        found.append(f"another brand's name or address «{match.group(0)}»")
    return found


# ---------------------------------------------------------------------------- running the set


@dataclass
class Outcome:
    id: str
    category: str
    said: str
    reply: str
    problems: list[str]
    gates: list[str]

    @property
    def good(self) -> bool:
        return not self.problems and not self.gates


@dataclass
class QualityReport:
    outcomes: list[Outcome] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    @property
    def good_share(self) -> float:
        return sum(o.good for o in self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    @property
    def gate_count(self) -> int:
        return sum(len(o.gates) for o in self.outcomes)

    @property
    def median_length(self) -> float:
        return statistics.median(self.lengths) if self.lengths else 0.0

    def by_category(self) -> dict[str, tuple[int, int]]:
        rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for outcome in self.outcomes:
            rows[outcome.category][0] += outcome.good
            rows[outcome.category][1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(rows.items())}


def quality_settings(base: Settings, data_dir: Path, content_dir: Path, *, live: bool) -> Settings:
    update: dict[str, object] = {
        "persistent_data_path": str(data_dir), "database_path": None, "database_url": None, "redis_url": None,
        "crm_provider": CrmProvider.none, "openai_vector_store_id": None,
        "catalog_dir": str(content_dir / "catalog"), "knowledge_dir": str(content_dir / "knowledge"),
    }
    if not live:
        update["openai_api_key"] = None
    return base.model_copy(update=update)


def _content_with_demo(project: Path, folder: Path) -> Path:
    """The brand content plus the test-only demo brand (brand separation is checked on it)."""
    content = folder / "content"
    for kind in ("catalog", "knowledge"):
        (content / kind).mkdir(parents=True)
        for source in (project / kind, project / "tests" / "data" / kind):
            for item in source.iterdir():
                (content / kind / item.name).symlink_to(item.resolve())
    return content


def _corpus(catalog: Catalog, knowledge: object, brand: str, today: object) -> Corpus:
    texts = []
    for program in catalog.brand(brand).programs:
        for session in program.sessions:
            texts += [session.start_date.strftime("%d.%m.%Y"), session.end_date.strftime("%d.%m.%Y") if session.end_date else ""]
        texts += [program.title, *program.usp]
    documents = getattr(knowledge, "documents", lambda b: [])(brand)
    texts += [doc.body for doc in documents]
    amounts = frozenset(catalog.known_amounts(brand) | getattr(knowledge, "known_amounts", lambda b: set())(brand))
    return Corpus(amounts=amounts, text="\n".join(texts).lower().replace("\u00a0", " "))


async def run_quality(base: Settings, project: Path, *, live: bool = False, folder: Path = QUALITY_DIR) -> QualityReport:
    quality = load_set(folder)
    report = QualityReport()
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        settings = quality_settings(base, Path(tmp) / "data", _content_with_demo(project, Path(tmp)), live=live)
        runtime = build_runtime(settings, notifier=RecordingNotifier())
        try:
            await runtime.db.migrate()
            assistant = runtime.assistant
            corpora: dict[str, Corpus] = {}

            def corpus(brand: str) -> Corpus:
                if brand not in corpora:
                    corpora[brand] = _corpus(runtime.catalog, runtime.knowledge, brand, assistant.today())
                return corpora[brand]

            urgent_table = assistant.intents
            turn = 0

            async def send(user: str, brand: str, channel: str, *, say: str | None = None, choice: str | None = None) -> Reply:
                nonlocal turn
                turn += 1
                return await assistant.handle(Inbound(
                    channel=Channel(channel), user_id=user, brand=brand, text=say, choice=choice,
                    first_name="Родитель", idempotency_key=f"quality:{turn}",
                ))

            def judge(item_id: str, category: str, brand: str, checks: Checks, said: str, reply: Reply, urgent: bool) -> None:
                from agent.understanding import understand

                name = understand(said, urgent_table, expecting_contact=True).name if said else None
                gates = hard_gates(said, reply, corpus=corpus(brand), brand=brand, urgent=urgent, name=name)
                report.outcomes.append(Outcome(item_id, category, said, reply.text, problems_of(checks, reply), gates))
                if not reply.silent:
                    report.lengths.append(len(reply.text))

            for n, message in enumerate(quality.messages):
                user = f"q-msg-{n}"
                for earlier in message.before:
                    await send(user, message.brand, message.channel, say=earlier)
                reply = await send(user, message.brand, message.channel, say=message.say)
                # The label, not the classifier, says what is urgent: a missed urgent topic is a violation.
                urgent = message.category == "urgent" and message.action == "handoff"
                judge(message.id, message.category, message.brand, message, message.say, reply, urgent)
            for n, dialog in enumerate(quality.dialogs):
                user = f"q-dlg-{n}"
                for index, step in enumerate(dialog.turns):
                    reply = await send(user, dialog.brand, dialog.channel, say=step.say, choice=step.choice)
                    urgent = dialog.category == "urgent" and step.action == "handoff"
                    judge(f"{dialog.id}#{index + 1}", dialog.category, dialog.brand, step, step.say or "", reply, urgent)
        finally:
            await runtime.close()
    return report


def print_quality(report: QualityReport, console: object, *, show: int = 60) -> None:
    from rich.table import Table

    table = Table(title="Answer quality by category")
    for column in ("category", "good", "total", "share"):
        table.add_column(column)
    for category, (good, total) in report.by_category().items():
        table.add_row(category, str(good), str(total), f"{good / total:.0%}")
    console.print(table)  # type: ignore[attr-defined]
    failures = [o for o in report.outcomes if not o.good]
    for outcome in failures[:show]:
        reasons = "; ".join(outcome.gates + outcome.problems)
        console.print(f"[red]✗ {outcome.id}[/red] «{outcome.said}» — {reasons}\n   [dim]{outcome.reply[:400]}[/dim]")  # type: ignore[attr-defined]
    gates = [(o.id, gate) for o in report.outcomes for gate in o.gates]
    console.print(f"hard-gate violations: {len(gates)}")  # type: ignore[attr-defined]
    for item, gate in gates:
        console.print(f"  [red]{item}: {gate}[/red]")  # type: ignore[attr-defined]
    console.print(  # type: ignore[attr-defined]
        f"good replies: {sum(o.good for o in report.outcomes)}/{len(report.outcomes)} ({report.good_share:.1%}) · "
        f"median reply {report.median_length:.0f} characters"
    )
