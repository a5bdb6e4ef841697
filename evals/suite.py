"""Run a set of cases (K times each with --repeat) and collect the report."""

from __future__ import annotations

from collections.abc import Callable

from evals.cases import CaseFile, write_cassette
from evals.report import CaseReport, RunReport
from evals.runner import CaseResult, Mode, Runner

Progress = Callable[[CaseResult], None]


async def run_suite(files: list[CaseFile], runner: Runner, *, repeat: int = 1, on_result: Progress | None = None) -> RunReport:
    """Cases run one after another: a replay is deterministic and a live run stays within rate limits."""
    report = RunReport(mode=runner.mode.value, repeat=repeat)
    for case_file in files:
        results = []
        for _ in range(repeat):
            result = await runner.run(case_file)
            results.append(result)
            if on_result is not None:
                on_result(result)
        report.cases.append(CaseReport(result=results[0], outcomes=[r.status for r in results]))
        if runner.mode is Mode.record and case_file.case.mode == "model" and results[0].error is None:
            write_cassette(case_file.path, results[0].recorded)
    return report
