"""The report of an eval run: a rich table on the terminal, plus JSON and Markdown files."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from evals.cases import TAGS
from evals.runner import CaseResult, Status

REPORTS_DIR = Path(__file__).resolve().parent / "reports"
STATUS_STYLE = {Status.passed: "green", Status.failed: "red", Status.stale: "yellow", Status.error: "magenta"}


class CaseReport(BaseModel):
    """A case over its runs: the first run's details, and with --repeat how stable the outcome was."""

    result: CaseResult
    outcomes: list[Status]

    @property
    def pass_rate(self) -> float:
        return sum(o is Status.passed for o in self.outcomes) / len(self.outcomes)

    @property
    def flip_rate(self) -> float:
        """Share of consecutive runs whose pass/fail outcome differs (0: stable, 1: alternates)."""
        if len(self.outcomes) < 2:
            return 0.0
        passed = [o is Status.passed for o in self.outcomes]
        return sum(a != b for a, b in zip(passed, passed[1:])) / (len(passed) - 1)

    @property
    def status(self) -> Status:
        return Status.passed if all(o is Status.passed for o in self.outcomes) else next(
            o for o in self.outcomes if o is not Status.passed
        )


class RunReport(BaseModel):
    mode: str
    repeat: int = 1
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    cases: list[CaseReport] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(case.status is Status.passed for case in self.cases)

    def tag_rates(self) -> dict[str, tuple[int, int]]:
        rates: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for case in self.cases:
            for tag in case.result.tags:
                rates[tag][0] += case.status is Status.passed
                rates[tag][1] += 1
        order = [*TAGS, *sorted(set(rates) - set(TAGS))]
        return {tag: (rates[tag][0], rates[tag][1]) for tag in order if tag in rates}

    def summary_line(self) -> str:
        passed = sum(case.status is Status.passed for case in self.cases)
        counts = {s: sum(c.status is s for c in self.cases) for s in Status}
        by_tag = " · ".join(f"{tag} {p}/{n}" for tag, (p, n) in self.tag_rates().items())
        cost = sum(c.result.cost_usd or 0.0 for c in self.cases)
        tokens = sum(c.result.input_tokens + c.result.output_tokens for c in self.cases)
        others = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n and s is not Status.passed)
        return (
            f"{passed}/{len(self.cases)} passed ({_percent(passed, len(self.cases))})"
            f"{f' — {others}' if others else ''} | by tag: {by_tag} | tokens {tokens} · ≈ ${cost:.4f}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "repeat": self.repeat,
            "started_at": self.started_at.isoformat(),
            "ok": self.ok,
            "summary": self.summary_line(),
            "pass_rate_by_tag": {tag: {"passed": p, "total": n} for tag, (p, n) in self.tag_rates().items()},
            "cases": [
                {
                    **case.result.model_dump(mode="json"),
                    "status": case.status.value,
                    "checks_passed": case.result.checks_passed,
                    "checks_total": len(case.result.checks),
                    "runs": len(case.outcomes),
                    "pass_rate": case.pass_rate,
                    "flip_rate": case.flip_rate,
                }
                for case in self.cases
            ],
        }


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"


def _cost(value: float | None) -> str:
    return "?" if value is None else f"${value:.4f}"


def _why(case: CaseReport) -> str:
    result = case.result
    if result.error:
        return result.error
    if result.stale:
        return "; ".join(result.stale)
    return "; ".join(f"t{c.turn}: {c.name} — {c.detail}" for c in result.checks if not c.passed)


def _rows(report: RunReport) -> list[list[str]]:
    rows = []
    for case in report.cases:
        r = case.result
        row = [
            r.id,
            ",".join(r.tags),
            r.engine,
            case.status.value,
            f"{r.checks_passed}/{len(r.checks)}",
            " ".join(r.tools) or "—",
            str(r.input_tokens + r.output_tokens),
            _cost(r.cost_usd),
        ]
        if report.repeat > 1:
            row += [f"{case.pass_rate:.0%}", f"{case.flip_rate:.0%}"]
        rows.append(row + [_why(case)])
    return rows


def _headers(report: RunReport) -> list[str]:
    extra = ["pass rate", "flip rate"] if report.repeat > 1 else []
    return ["case", "tags", "engine", "status", "checks", "tools called", "tokens", "cost", *extra, "why not passed"]


def print_report(report: RunReport, console: Console) -> None:
    table = Table(title=f"evals · {report.mode}" + (f" · {report.repeat} runs" if report.repeat > 1 else ""))
    for header in _headers(report):
        table.add_column(header, overflow="fold")
    for case, row in zip(report.cases, _rows(report), strict=True):
        row[3] = f"[{STATUS_STYLE[case.status]}]{row[3]}[/]"
        table.add_row(*row)
    console.print(table)
    console.print(report.summary_line())


def markdown(report: RunReport) -> str:
    headers = _headers(report)
    lines = [
        f"# Eval report — {report.mode}, {report.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        report.summary_line(),
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in _rows(report):
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |")
    lines += ["", "## Dialogs", ""]
    for case in report.cases:
        lines.append(f"### {case.result.id} — {case.status.value}")
        for turn in case.result.turns:
            tools = f" _(tools: {', '.join(turn.tools)})_" if turn.tools else ""
            lines.append(f"- **{turn.user}** → [{turn.engine}]{tools} {turn.reply[:300].replace(chr(10), ' ')}")
        lines.append("")
    return "\n".join(lines)


def write_report(report: RunReport, folder: Path = REPORTS_DIR) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{report.started_at:%Y%m%d-%H%M%S}-{report.mode}"
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    json_path.write_text(json.dumps(report.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path
