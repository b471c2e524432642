"""One self-contained HTML file of a `knock check` run: inline CSS, no script, no external
asset, so it opens from a CI artefact or an e-mail as it is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from knock.check.evidence import Entry
from knock.check.verdict import CaseResult, tally

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1d232a;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin:0}
.meta{color:#5b6570;margin-bottom:1.5em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;vertical-align:top}
thead th{border-bottom:2px solid #c9d1d9} tbody tr{border-bottom:1px solid #e6eaee}
.t-pass{color:#116329} .t-fail{color:#b42318;font-weight:600} .t-skipped{color:#8a6100}
.t-warn{color:#b45309;font-weight:600} .t-not-run{color:#6e40c9}
.badge{display:inline-block;border-radius:1em;padding:0 .7em;font-size:.85em;font-weight:600}
.badge.pass{background:#dafbe1} .badge.fail{background:#ffebe9} .badge.skipped{background:#fff8c5}
.badge.warn{background:#ffe7c2;color:#b45309} .badge.not-run{background:#efe6fd}
section{border:1px solid #d0d7de;border-radius:8px;padding:1em;margin:1.2em 0}
section.fail{border-color:#f5a39b} section.warn{border-color:#f5b74f}
.req{color:#5b6570} .reason{margin:.5em 0}
.ev td.at{font-variant-numeric:tabular-nums;white-space:nowrap;color:#5b6570;width:6em}
.ev td.kind{width:6em;font-weight:600} .k-sent{color:#0550ae} .k-received{color:#6639ba}
.k-inform{color:#116329} .k-note{color:#5b6570}
pre{margin:.3em 0 0;white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:.5em;
border-radius:4px;font-size:12px}
details summary{cursor:pointer}
"""


def _entry(entry: Entry) -> str:
    summary = escape(entry.summary)
    if entry.detail:
        summary = (
            f"<details><summary>{summary}</summary><pre>{escape(entry.detail)}</pre></details>"
        )
    kind = entry.kind.value
    return (
        f'<tr><td class="at">{entry.at:.3f} s</td>'
        f'<td class="kind k-{kind}">{kind}</td><td>{summary}</td></tr>'
    )


def _section(result: CaseResult) -> str:
    case, verdict, slug = result.case, result.verdict.value, result.verdict.slug
    reason = f'<p class="reason t-{slug}">{escape(result.reason)}</p>' if result.reason else ""
    rows = "".join(_entry(e) for e in result.evidence)
    return (
        f'<section id="{escape(case.id)}" class="{slug}">'
        f'<h2>{escape(case.id)} <span class="badge {slug}">{verdict}</span></h2>'
        f'<div class="req">{escape(case.requirement)} · {result.duration:.2f} s</div>'
        f"<p>{escape(case.title)}</p>{reason}"
        f'<table class="ev"><tbody>{rows}</tbody></table></section>'
    )


def html_report(
    results: Sequence[CaseResult], device_id: str, acs_url: str, started: datetime
) -> str:
    overview = "".join(
        f'<tr><td><a href="#{escape(r.case.id)}">{escape(r.case.id)}</a></td>'
        f"<td>{escape(r.case.requirement)}</td>"
        f'<td class="t-{r.verdict.slug}">{r.verdict.value}</td>'
        f"<td>{r.duration:.2f}</td><td>{escape(r.reason)}</td></tr>"
        for r in results
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>knock check: {escape(device_id)}</title><style>{CSS}</style></head><body>"
        f"<h1>knock check: {escape(device_id)}</h1>"
        f'<div class="meta">ACS {escape(acs_url)} · started '
        f"{started.isoformat(timespec='seconds')} · "
        + ", ".join(f'<span class="t-{v.slug}">{words}</span>' for v, words in tally(results))
        + "</div>"
        "<table><thead><tr><th>case</th><th>requirement</th><th>verdict</th><th>s</th>"
        f"<th>why</th></tr></thead><tbody>{overview}</tbody></table>"
        + "".join(_section(r) for r in results)
        + "</body></html>\n"
    )
