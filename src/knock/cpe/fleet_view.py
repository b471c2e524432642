"""How `knock sim` shows a fleet: a table for a terminal, one line per report for logs and CI."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from knock.cpe.cr_http import CrAnswer
from knock.cpe.fleet_stats import FleetSnapshot, FleetStats, accepted
from knock.vocab import CrMethod


def _refusals(stats: FleetStats) -> str:
    return ", ".join(f"{answer} {n}" for answer, n in sorted(stats.cr_refused.items()))


def _errors(stats: FleetStats) -> str:
    """Failed sessions by reason, most first: what the log says once per reason per interval."""
    if not stats.failures:
        return "failed sessions, devices that stopped"
    ranked = sorted(stats.failures.items(), key=lambda item: (-item[1], item[0]))
    return "failed sessions: " + ", ".join(f"{reason} {n}" for reason, n in ranked)


def _refused(counts: Mapping[str, int]) -> dict[str, int]:
    """UDP or XMPP requests that opened no session, by reason (replays, refusals)."""
    return {k: n for k, n in sorted(counts.items()) if k not in ("accepted", "merged") and n}


def _by_method(stats: FleetStats) -> dict[CrMethod, Mapping[str, int]]:
    return {CrMethod.UDP: stats.udp, CrMethod.XMPP: stats.xmpp}


def status_table(snapshot: FleetSnapshot) -> Table:
    config, stats = snapshot.config, snapshot.stats
    online_note = ""
    if snapshot.online_after is not None:
        online_note = f"all online after {snapshot.online_after:.1f} s"
    workers = f"{config.workers} worker process{'es' if config.workers > 1 else ''}"
    table = Table(
        title=f"knock sim: {config.count} devices, {workers} -> {config.acs_url}",
        caption=f"running {snapshot.elapsed:.0f} s; Ctrl-C stops",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    table.add_row("started", f"{stats.started} / {config.count}", "")
    table.add_row("online", str(stats.online), online_note)
    table.add_row("in session", str(stats.in_session), "")
    table.add_row("sessions done", str(stats.sessions), "")
    table.add_row("errors", str(stats.errors), _errors(stats))
    table.add_row("CRs received", str(stats.cr_received), "HTTP requests to the devices")
    merged = stats.cr.get(CrAnswer.MERGED, 0)
    table.add_row("CRs accepted", str(stats.cr_accepted), f"{merged} joined a pending session")
    table.add_row(
        "CRs challenged", str(stats.cr.get(CrAnswer.CHALLENGED, 0)), "401 without credentials"
    )
    table.add_row("CRs refused", str(sum(stats.cr_refused.values())), _refusals(stats))
    methods = config.cr_methods
    if CrMethod.UDP in methods:
        table.add_row(
            "STUN bindings", str(stats.stun_bound), "devices whose public address is known"
        )
    if CrMethod.XMPP in methods:
        table.add_row("XMPP online", str(stats.xmpp_online), "devices logged in")
    for method, counts in _by_method(stats).items():
        if method in methods:
            refused = _refused(counts)
            name = method.upper()
            table.add_row(f"{name} CRs accepted", str(accepted(counts)), "")
            table.add_row(
                f"{name} CRs dropped",
                str(sum(refused.values())),
                ", ".join(f"{k} {n}" for k, n in refused.items()),
            )
    return table


def status_line(snapshot: FleetSnapshot) -> str:
    """``key=value`` pairs, so a log reader or a benchmark can pick the figures out."""
    stats = snapshot.stats
    fields: dict[str, object] = {
        "elapsed": f"{snapshot.elapsed:.1f}",
        "started": f"{stats.started}/{snapshot.config.count}",
        "online": stats.online,
        "in_session": stats.in_session,
        "sessions": stats.sessions,
        "errors": stats.errors,
        "cr_received": stats.cr_received,
        "cr_accepted": stats.cr_accepted,
        "cr_refused": sum(stats.cr_refused.values()),
    }
    fields.update({f"cr_{answer}".replace("-", "_"): n for answer, n in stats.cr_refused.items()})
    methods = snapshot.config.cr_methods
    if CrMethod.UDP in methods:
        fields["stun_bound"] = stats.stun_bound
    if CrMethod.XMPP in methods:
        fields["xmpp_online"] = stats.xmpp_online
    for method, counts in _by_method(stats).items():
        if method in methods:
            fields[f"{method}_accepted"] = accepted(counts)
            refused = _refused(counts)
            fields[f"{method}_dropped"] = sum(refused.values())
            fields.update({f"{method}_{k}".replace("-", "_"): n for k, n in refused.items()})
    if snapshot.online_after is not None:
        fields["all_online_after"] = f"{snapshot.online_after:.1f}"
    return " ".join(f"{key}={value}" for key, value in fields.items())
