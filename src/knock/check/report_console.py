"""The console summary of a `knock check` run."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from knock.check.cases import Case
from knock.check.verdict import CaseResult, Verdict, tally

STYLE = {
    Verdict.PASS: "green",
    Verdict.WARN: "bold dark_orange",
    Verdict.FAIL: "bold red",
    Verdict.SKIPPED: "yellow",
    Verdict.NOT_RUN: "magenta",
}


def case_line(result: CaseResult) -> str:
    """One line as a case ends, for the progress of a run."""
    style = STYLE[result.verdict]
    reason = f"  {result.reason}" if result.reason else ""
    return (
        f"[{style}]{result.verdict.value:7}[/] {result.case.id} ({result.duration:.1f} s){reason}"
    )


def summary(console: Console, results: Sequence[CaseResult], device_id: str) -> None:
    table = Table(title=f"knock check: {device_id}", show_lines=False)
    table.add_column("case")
    table.add_column("requirement")
    table.add_column("verdict")
    table.add_column("s", justify="right")
    table.add_column("why", overflow="fold")
    for result in results:
        style = STYLE[result.verdict]
        table.add_row(
            result.case.id,
            result.case.requirement,
            f"[{style}]{result.verdict.value}[/]",
            f"{result.duration:.1f}",
            result.reason,
        )
    console.print(table)
    console.print(", ".join(words for _verdict, words in tally(results)))


def timing(results: Sequence[CaseResult], wall: float, device_after: float) -> str:
    """How long the run took, and its slowest profile: where a quicker run would start."""
    profiles: dict[str, list[float]] = {}
    for result in results:
        profiles.setdefault(result.case.profile, []).append(result.duration)
    line = (
        f"{wall:.0f} s in all: {device_after:.0f} s until the device was provisioned and "
        f"quiet, {sum(r.duration for r in results):.0f} s of cases"
    )
    if profiles:
        name, times = max(profiles.items(), key=lambda item: sum(item[1]))
        cases = f"{len(times)} case{'s' if len(times) > 1 else ''}"
        line += f"; slowest profile {name} ({cases}, {sum(times):.0f} s)"
    return line


def listing(console: Console, cases: Sequence[Case]) -> None:
    table = Table(title="knock check cases")
    table.add_column("id")
    table.add_column("requirement")
    table.add_column("level")
    table.add_column("passes when", overflow="fold")
    for case in cases:
        table.add_row(case.id, case.requirement, case.level, case.title)
    console.print(table)
