"""JUnit XML of a `knock check` run, for a CI server: one testcase per case, the family as its
class, a failure or skipped element with the reason, the evidence as system-out. JUnit knows no
warning: a warned case is a pass with a `verdict` property of `warn`, a `warning` property with
the reason, and the reason first in its system-out; a case not run is skipped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime

from knock.check.evidence import Entry
from knock.check.verdict import CaseResult, Verdict


def evidence_text(entries: Sequence[Entry]) -> str:
    lines = []
    for entry in entries:
        lines.append(f"{entry.at:9.3f} s  {entry.kind.value:8}  {entry.summary}")
        lines.extend(f"{'':22}{line}" for line in entry.detail.splitlines())
    return "\n".join(lines)


def junit_xml(results: Sequence[CaseResult], device_id: str, started: datetime) -> bytes:
    suite = ET.Element(
        "testsuite",
        name=f"knock check {device_id}",
        tests=str(len(results)),
        failures=str(sum(r.verdict is Verdict.FAIL for r in results)),
        skipped=str(sum(r.verdict in (Verdict.SKIPPED, Verdict.NOT_RUN) for r in results)),
        errors="0",
        time=f"{sum(r.duration for r in results):.3f}",
        timestamp=started.isoformat(timespec="seconds"),
    )
    for result in results:
        case = result.case
        testcase = ET.SubElement(
            suite,
            "testcase",
            classname=f"knock.check.{case.family.value}",
            name=case.id,
            time=f"{result.duration:.3f}",
        )
        properties = ET.SubElement(testcase, "properties")
        properties.extend(
            [
                ET.Element("property", name="requirement", value=case.requirement),
                ET.Element("property", name="title", value=case.title),
                ET.Element("property", name="verdict", value=result.verdict.value),
            ]
        )
        out = evidence_text(result.evidence)
        if result.verdict is Verdict.FAIL:
            ET.SubElement(testcase, "failure", message=result.reason).text = case.requirement
        elif result.verdict in (Verdict.SKIPPED, Verdict.NOT_RUN):
            ET.SubElement(testcase, "skipped", message=result.reason)
        elif result.verdict is Verdict.WARN:
            ET.SubElement(properties, "property", name="warning", value=result.reason)
            out = f"WARNING: {result.reason}\n\n{out}"
        ET.SubElement(testcase, "system-out").text = out
    ET.indent(suite)
    text: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return text
