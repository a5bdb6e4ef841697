"""Evals: every recorded dialog replays green through the real service, a changed prompt or tool
schema turns replays STALE, and record/live/repeat/capture work against a fake Responses server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tools.kb_file_search
from adapters.wiring import build_runtime
from agent.prompting import Prompts, load_prompts
from agent.types import Channel, Inbound
from evals.__main__ import app as cli
from evals.cases import DIALOGS_DIR, load_case, load_cases
from evals.capture import capture_conversation
from evals.report import markdown, write_report
from evals.runner import Mode, Runner, Status
from evals.suite import run_suite
from tests import openai_fakes as fake
from tests.conftest import make_settings
from tests.fake_responses import responses_app
from tests.thread_server import ThreadServer

DIALOGS = sorted(DIALOGS_DIR.glob("*.yaml"))


def _why(result: Any) -> str:
    return result.error or "; ".join(result.stale) or "; ".join(
        f"turn {c.turn}: {c.name}: {c.detail}" for c in result.checks if not c.passed
    )


def test_there_are_enough_dialogs_covering_every_tag() -> None:
    cases = [f.case for f in load_cases()]
    assert len(cases) >= 25
    tags = {tag for case in cases for tag in case.tags}
    assert {"funnel", "faq", "objection", "safety", "offline"} <= tags
    assert len({case.id for case in cases}) == len(cases)
    assert any(e.injected and e.status >= 500 for case in cases for e in case.cassette)  # an outage


@pytest.fixture(scope="module")
def replayer(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """One runner for all replays: it reads the catalog and knowledge base once (each case still gets
    its own database)."""
    return Runner(base=make_settings(tmp_path_factory.mktemp("evals")), mode=Mode.replay)


@pytest.mark.parametrize("path", DIALOGS, ids=[p.stem for p in DIALOGS])
async def test_dialog_replays(path: Path, replayer: Runner) -> None:
    result = await replayer.run(load_case(path))
    assert result.status is Status.passed, _why(result)
    assert result.checks and all(c.passed for c in result.checks)


async def _suite(tmp_path: Path, *ids: str, mode: Mode = Mode.replay, **settings: Any):
    files = load_cases(only=list(ids)) if ids else load_cases()
    return await run_suite(files, Runner(base=make_settings(tmp_path, **settings), mode=mode))


async def test_a_changed_system_prompt_turns_replays_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def changed(settings: Any) -> Prompts:
        prompts = load_prompts(settings)
        return dataclasses.replace(prompts, system=prompts.system + "\n- Всегда предлагайте скидку 5 %.")

    monkeypatch.setattr("adapters.wiring.load_prompts", changed)
    report = await _suite(tmp_path, "faq-tax-deduction", "safety-are-you-a-bot", "offline-consent-refused")
    by_id = {case.result.id: case for case in report.cases}
    for case_id in ("faq-tax-deduction", "safety-are-you-a-bot"):
        assert by_id[case_id].status is Status.stale
        assert "the request changed (instructions)" in by_id[case_id].result.stale[0]
    assert by_id["offline-consent-refused"].status is Status.passed  # no model, nothing to be stale
    assert not report.ok
    json_path, md_path = write_report(report, tmp_path / "reports")
    saved = json.loads(json_path.read_text(encoding="utf-8"))
    assert {c["id"]: c["status"] for c in saved["cases"]} == {
        "faq-tax-deduction": "STALE", "safety-are-you-a-bot": "STALE", "offline-consent-refused": "PASS"
    }
    assert "STALE" in md_path.read_text(encoding="utf-8") and "2 STALE" in saved["summary"]


async def test_a_changed_tool_schema_turns_replays_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tools.kb_file_search.TOOL
    monkeypatch.setattr(tools.kb_file_search, "TOOL", dataclasses.replace(tool, description=tool.description + " Новое правило."))
    report = await _suite(tmp_path, "faq-tax-deduction")
    assert report.cases[0].status is Status.stale
    assert "(tools)" in report.cases[0].result.stale[0]


async def test_a_missing_or_extra_recording_is_stale(tmp_path: Path) -> None:
    source = load_case(DIALOGS_DIR / "faq-trial-lesson.yaml")
    short = source.model_copy(update={"case": source.case.model_copy(update={"cassette": source.case.cassette[:-1]})})
    result = await Runner(base=make_settings(tmp_path), mode=Mode.replay).run(short)
    assert result.status is Status.stale and "more calls than recorded" in result.stale[0]
    extra = source.case.cassette + source.case.cassette[-1:]
    longer = source.model_copy(update={"case": source.case.model_copy(update={"cassette": extra})})
    result = await Runner(base=make_settings(tmp_path), mode=Mode.replay).run(longer)
    assert result.status is Status.stale and "never requested" in result.stale[0]


async def test_every_case_runs_on_the_offline_policy(tmp_path: Path) -> None:
    report = await _suite(tmp_path, mode=Mode.offline)
    assert all(case.result.engine == "offline" and case.status is not Status.error for case in report.cases)
    assert all(t.engine == "offline" for case in report.cases for t in case.result.turns)
    # The offline cases themselves, and safety on every engine, hold without a model.
    assert all(case.status is Status.passed for case in report.cases if {"offline", "safety"} & set(case.result.tags)
               and not case.result.id.startswith("outage"))


def _replying(text_for: Any) -> Any:
    def script(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
        return [fake.answer(text_for(number), quick_replies=[{"label": "Позвать менеджера", "payload": "handoff"}])]
    return script


CASE = {
    "id": "recorded-greeting",
    "title": "a case recorded against a fake server",
    "tags": ["faq"],
    "today": "2026-08-24",
    "turns": [
        {"say": "Здравствуйте!", "expect": {"engine": "model", "text_contains": ["здравствуйте"]}},
        {"say": "Можно ли получить вычет?", "expect": {"engine": "offline", "text_contains": ["вычет"]}},
        {"say": "Спасибо", "expect": {"engine": "model", "quick_replies": ["handoff"]}},
    ],
}
OUTAGE = {"error": {"message": "boom", "type": "server_error", "code": None}}


async def test_record_against_a_local_server_writes_a_replayable_cassette(tmp_path: Path) -> None:
    path = tmp_path / "recorded-greeting.yaml"
    cassette = [{"turn": 1, "status": 500, "body": OUTAGE, "injected": True}] * 2
    path.write_text("# a comment that survives recording\n" + yaml.safe_dump({**CASE, "cassette": cassette}, allow_unicode=True))
    app = responses_app(_replying(lambda n: "Здравствуйте! Чем помочь?"))
    with ThreadServer(app) as server:
        base = make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=f"{server.url}/v1")
        report = await run_suite([load_case(path)], Runner(base=base, mode=Mode.record))
    assert report.cases[0].status is Status.passed, _why(report.cases[0].result)
    assert len(app.state.seen) == 2  # turn 1's outage was injected, not forwarded
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# a comment that survives recording")
    recorded = load_case(path).case.cassette
    assert [(e.turn, e.status, e.injected) for e in recorded] == [(0, 200, False), (1, 500, True), (1, 500, True), (2, 200, False)]
    assert all(e.request["fingerprint"] for e in recorded) and "instructions" not in recorded[0].body
    replay = await Runner(base=make_settings(tmp_path / "replay"), mode=Mode.replay).run(load_case(path))
    assert replay.status is Status.passed, _why(replay)
    assert replay.input_tokens == 200 and replay.cost_usd == pytest.approx(2 * (100 * 2.0 + 20 * 8.0) / 1e6)


async def test_repeated_live_runs_report_pass_rate_and_flip_rate(tmp_path: Path) -> None:
    path = tmp_path / "flaky.yaml"
    path.write_text(yaml.safe_dump({**CASE, "id": "flaky", "turns": CASE["turns"][:1]}, allow_unicode=True))
    # Every other run the model forgets to greet.
    app = responses_app(_replying(lambda n: "Здравствуйте!" if n % 2 == 0 else "Чем помочь?"))
    with ThreadServer(app) as server:
        base = make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=f"{server.url}/v1")
        report = await run_suite([load_case(path)], Runner(base=base, mode=Mode.live), repeat=4)
    case = report.cases[0]
    assert case.outcomes == [Status.passed, Status.failed, Status.passed, Status.failed]
    assert case.pass_rate == 0.5 and case.flip_rate == 1.0
    assert report.as_json()["cases"][0]["flip_rate"] == 1.0 and "flip rate" in markdown(report)


def test_cli_replays_and_writes_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSISTENT_DATA_PATH", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["run", "--case", "safety-are-you-a-bot", "--report-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1/1 passed" in result.output and "safety 1/1" in result.output
    assert len(list(tmp_path.glob("*-replay.json"))) == 1 and len(list(tmp_path.glob("*-replay.md"))) == 1
    assert CliRunner().invoke(cli, ["run", "--repeat", "3"]).exit_code == 2  # repeat needs --live
    assert CliRunner().invoke(cli, ["run", "--live"]).exit_code == 2  # no OPENAI_API_KEY


async def test_capture_masks_personal_data_and_replays_offline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    runtime = build_runtime(settings)
    await runtime.db.migrate()
    assert runtime.assistant is not None
    base = Inbound(channel=Channel.telegram, user_id="555", first_name="Светлана", username="sveta_k")
    said = [
        {"start": True},
        {"text": "Меня зовут Светлана Кузнецова, 10 класс, ЕГЭ по физике онлайн"},
        {"text": "Пишите на sveta.k@mail.ru или звоните 8 916 123-45-67"},
        {"choice": "consent:yes"},
    ]
    for n, fields in enumerate(said):
        await runtime.assistant.handle(base.model_copy(update={"idempotency_key": f"tg:{n}", **fields}))
    state = await runtime.store.load("telegram", "555", "kmipt")
    await runtime.close()

    text = await capture_conversation(settings, state.conversation_id)
    for secret in ("Светлана", "Кузнецова", "sveta", "123-45-67", "916"):
        assert secret not in text
    path = tmp_path / "captured.yaml"
    path.write_text(text, encoding="utf-8")
    captured = load_case(path).case
    assert captured.mode == "offline" and captured.captured_from == state.conversation_id
    assert captured.turns[1].say == "Меня зовут Имя, 10 класс, ЕГЭ по физике онлайн"
    assert captured.turns[2].say == "Пишите на user1@example.com или звоните +7 900 000-00-01"
    assert captured.turns[3].expect.lead_created is True
    result = await Runner(base=make_settings(tmp_path / "run"), mode=Mode.replay).run(load_case(path))
    assert result.status is Status.passed, _why(result)


def test_capture_cli_refuses_to_overwrite_and_reports_unknown_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSISTENT_DATA_PATH", str(tmp_path / "data"))
    target = tmp_path / "out.yaml"
    shutil.copy(DIALOGS[0], target)
    assert CliRunner().invoke(cli, ["capture", "1", "--output", str(target)]).exit_code == 2
    fresh = CliRunner().invoke(cli, ["capture", "1", "--output", str(tmp_path / "new.yaml")])
    assert fresh.exit_code == 1 and "not migrated" in fresh.output
    asyncio.run(build_runtime(make_settings(tmp_path)).db.migrate())  # the same data root as the CLI's
    missing = CliRunner().invoke(cli, ["capture", "999", "--output", str(tmp_path / "new.yaml")])
    assert missing.exit_code == 1 and "conversation 999 not found" in missing.output
    assert not (tmp_path / "new.yaml").exists()
