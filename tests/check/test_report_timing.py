"""The run's closing line: how long it took, and the profile that took longest."""

from __future__ import annotations

from knock.check import CaseResult, Verdict, select
from knock.check.report_console import timing


def test_the_timing_line_names_the_wall_time_and_the_slowest_profile() -> None:
    http, xmpp_cr, gpv_http, gpv_xmpp = select(
        ["http.digest-valid", "rpc.http.gpv-leaf", "rpc.xmpp.gpv-leaf", "xmpp.valid-cr"]
    )
    assert (gpv_http.profile, gpv_xmpp.profile, http.profile) == ("rpc.http", "rpc.xmpp", "http")
    durations = {http: 4.0, xmpp_cr: 1.0, gpv_http: 2.5, gpv_xmpp: 3.0}
    results = [CaseResult(case, Verdict.PASS, "", took, ()) for case, took in durations.items()]
    assert timing(results, 31.4, 20.6) == (
        "31 s in all: 21 s until the device was provisioned and quiet, 10 s of cases; "
        "slowest profile http (1 case, 4 s)"
    )
