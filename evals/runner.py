"""Run one eval case through the real AssistantService: a fresh SQLite database per case, the real
catalog and knowledge base, the real openai SDK talking to a cassette (replay) or to a live Responses
API (live, record) through an httpx transport, or no model at all (offline)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx
from pydantic import BaseModel, Field, SecretStr

from adapters.knowledge.backend import KnowledgeBackend
from adapters.wiring import build_runtime
from agent.catalog import Catalog
from agent.llm import LLM
from agent.ports import HandoffNotice
from agent.settings import CrmProvider, Settings
from agent.streaming import live_reply
from agent.types import Channel, Inbound, SharedContact
from evals.cases import Case, CaseFile, Exchange, Expect
from evals.checks import Check, Observed, evaluate, tool_calls
from evals.pricing import Spend
from evals.transport import CassetteTransport, LiveTransport

log = logging.getLogger(__name__)

REPLAY_KEY = "sk-eval-replay"  # never sent anywhere: the cassette answers


class Mode(StrEnum):
    replay = "replay"  # model cases from their cassettes
    live = "live"  # model cases against the configured Responses API
    record = "record"  # live, and the cassettes are rewritten
    offline = "offline"  # every case on the offline policy


class Status(StrEnum):
    passed = "PASS"
    failed = "FAIL"
    stale = "STALE"
    error = "ERROR"


class TurnResult(BaseModel):
    index: int
    user: str
    reply: str
    engine: str
    tools: list[str]


class CaseResult(BaseModel):
    id: str
    title: str
    tags: list[str]
    engine: str  # what the case ran on: cassette | live | offline
    status: Status
    checks: list[Check] = Field(default_factory=list)
    stale: list[str] = Field(default_factory=list)
    error: str | None = None
    tools: list[str] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    models: list[str] = Field(default_factory=list)
    turns: list[TurnResult] = Field(default_factory=list)
    recorded: list[Exchange] = Field(default_factory=list, exclude=True)

    @property
    def checks_passed(self) -> int:
        return sum(check.passed for check in self.checks)


class RecordingNotifier:
    """The notifier of an eval run (and of tests): managers are "notified" into a list."""

    def __init__(self) -> None:
        self.handoffs: list[HandoffNotice] = []

    async def notify_handoff(self, notice: HandoffNotice) -> None:
        self.handoffs.append(notice)

    async def notify_user(self, telegram_user_id: int, text: str) -> None:
        return None


class LiveTexts:
    """A live reply that keeps what a chat would have shown while the answer streamed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def status(self, text: str) -> None:
        pass

    def text(self, text: str) -> None:
        self.texts.append(text)


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def case_settings(base: Settings, data_dir: Path, *, mode: Mode, model: bool) -> Settings:
    """The run's settings with everything a case must own pinned: its own SQLite file, no CRM, no
    Redis, the local knowledge index, one retry (so an outage is two recorded 500s) and, in replay, a
    dummy key and the default endpoint (the cassette answers)."""
    update: dict[str, object] = {
        "persistent_data_path": str(data_dir),
        "database_path": None,
        "database_url": None,
        "redis_url": None,
        "crm_provider": CrmProvider.none,
        "openai_vector_store_id": None,
        "openai_max_retries": 1,
    }
    if not model:
        update["openai_api_key"] = None
    elif mode is Mode.replay:
        update.update(openai_api_key=SecretStr(REPLAY_KEY), openai_base_url=None)
    return base.model_copy(update=update)


@dataclass
class Runner:
    base: Settings
    mode: Mode
    upstream: httpx.AsyncBaseTransport | None = None  # live/record: default is the real network
    # The catalog and knowledge base are read once per run (the settings that locate them are the same).
    _content: tuple[Catalog, KnowledgeBackend] | None = field(default=None, init=False, repr=False)

    def engine_of(self, case: Case) -> str:
        if case.mode == "offline" or self.mode is Mode.offline:
            return "offline"
        return "cassette" if self.mode is Mode.replay else "live"

    async def run(self, case_file: CaseFile) -> CaseResult:
        case = case_file.case
        engine = self.engine_of(case)
        result = CaseResult(id=case.id, title=case.title, tags=case.tags, engine=engine, status=Status.passed)
        with tempfile.TemporaryDirectory(prefix=f"eval-{case.id}-") as folder:
            try:
                await self._run(case, engine, Path(folder), result)
            except Exception as error:  # a crash is a finding about the service, reported per case
                log.debug("case %s crashed", case.id, exc_info=True)
                result.status = Status.error
                result.error = "".join(traceback.format_exception_only(error)).strip()
        return result

    async def _run(self, case: Case, engine: str, folder: Path, result: CaseResult) -> None:
        model = engine != "offline"
        settings = case_settings(self.base, folder / "data", mode=self.mode, model=model)
        seam: CassetteTransport | LiveTransport | None = None
        llm = None
        if model:
            if engine == "cassette":
                seam = CassetteTransport(case.cassette)
            else:
                upstream = self.upstream or httpx.AsyncHTTPTransport()
                seam = LiveTransport(upstream, case.cassette, owns_upstream=self.upstream is None)
            client = httpx.AsyncClient(transport=seam, timeout=settings.openai_timeout_seconds)
            llm = LLM(settings, http_client=client, sleep=_no_sleep if engine == "cassette" else asyncio.sleep)
        notifier = RecordingNotifier()
        runtime = build_runtime(
            settings, content=self._content, llm=llm, notifier=notifier, today=lambda: case.today
        )
        # The local index only: case_settings leaves no vector store, so nothing here records usage.
        self._content = (runtime.catalog, runtime.knowledge)
        try:
            await runtime.db.migrate()
            forced_offline = case.mode == "model" and engine == "offline"
            for index, turn in enumerate(case.turns):
                if seam is not None:
                    seam.turn = index
                leads_before, handoffs_before = await runtime.leads.count(), len(notifier.handoffs)
                shown = LiveTexts()
                with live_reply(shown):  # streamed like a Telegram chat: the cassette answers as events
                    reply = await runtime.assistant.handle(
                        Inbound(
                        channel=Channel(case.channel),
                        user_id=case.user_id,
                        first_name=case.first_name,
                            idempotency_key=f"eval:{case.id}:{index}",
                            text=turn.say,
                            choice=turn.choice,
                            contact=SharedContact(phone=turn.contact, verified=True) if turn.contact else None,
                            start=turn.start,
                        )
                    )
                calls = tool_calls(seam.seen_in(index)) if seam is not None else []
                observed = Observed(
                    reply=reply,
                    calls=calls,
                    lead_created=await runtime.leads.count() > leads_before,
                    handoff=len(notifier.handoffs) > handoffs_before,
                    live=shown.texts,
                )
                expect: Expect | None = turn.offline if forced_offline else turn.expect
                # Safety holds whichever engine answers: the forbidden phrases always apply.
                result.checks += evaluate(index, expect, observed, not_contains=turn.expect.text_not_contains)
                result.tools += [call.name for call in calls]
                result.turns.append(
                    TurnResult(index=index, user=turn.describe(), reply=reply.text, engine=reply.engine, tools=[c.name for c in calls])
                )
        finally:
            await runtime.close()
        if seam is not None:
            seam.finish()
            result.stale = list(seam.problems) if isinstance(seam, CassetteTransport) else []
            if isinstance(seam, LiveTransport) and seam.problems:
                result.checks.append(Check(turn=-1, name="recorded faults injected", passed=False, detail="; ".join(seam.problems)))
            result.recorded = list(seam.seen)
            spend = Spend()
            for exchange in seam.seen:
                if exchange.status == 200:
                    spend.add_response(exchange.body)
            result.input_tokens, result.output_tokens = spend.input_tokens, spend.output_tokens
            result.cost_usd, result.models = spend.cost_usd, sorted(spend.models)
        if result.stale:
            result.status = Status.stale
        elif not all(check.passed for check in result.checks):
            result.status = Status.failed
