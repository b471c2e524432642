"""A whole run as `knock check` makes it (the ACS started by the run, the device found by its
Inform), the reports it writes, and the command line."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from check_lab import FAST, check_lab
from typer.testing import CliRunner

from acs.scripted_cpe import ScriptedCpe
from knock.check import (
    Case,
    CaseResult,
    CheckContext,
    Entry,
    Family,
    Kind,
    Verdict,
    run_case,
    select,
)
from knock.check.cases import CaseFn
from knock.check.device import NoDevice, wait_for_device
from knock.check.report_html import html_report
from knock.check.report_junit import junit_xml
from knock.check.run import check_settings, run_check
from knock.check.runner import exit_code
from knock.cli import app
from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.defects import Defect
from knock.cpe.device import SimulatedCpe
from knock.cwmp.rpcs import GetParameterNames, GetParameterValues
from knock.notify import SessionEnded
from knock.server import Running, start
from knock.vocab import CrMethod, Event
from serve_support import loopback_settings

CASES = ["http.digest-valid", "http.basic-refused"]


async def test_a_run_finds_the_device_runs_the_cases_and_reports(tmp_path: Path) -> None:
    services = CrServices((CrMethod.HTTP,), CrPolicy(rate_limit=1.0))
    await services.start()
    devices: list[asyncio.Task[None]] = []

    def started(acs: Running) -> None:
        cpe = SimulatedCpe(
            "RUN0001",
            "tr181",
            tmp_path / "state",
            acs.acs_url,
            defects=frozenset({Defect.BASIC_ACCEPTED}),
        )
        services.attach(cpe)
        devices.append(asyncio.create_task(cpe.run()))

    try:
        run = await run_check(loopback_settings(tmp_path), FAST, select(CASES), on_started=started)
    finally:
        for task in devices:
            task.cancel()
        await asyncio.gather(*devices, return_exceptions=True)
        await services.close()
    assert run.device_id == "00D09E-KnockBox-RUN0001"
    assert [(r.case.id, r.verdict) for r in run.results] == [
        ("http.digest-valid", Verdict.PASS),
        ("http.basic-refused", Verdict.FAIL),
    ]
    assert "answered 200" in run.results[1].reason

    suite = ET.fromstring(junit_xml(run.results, run.device_id, run.started))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "0")
    failed = suite.find("testcase[@name='http.basic-refused']")
    assert failed is not None and failed.get("classname") == "knock.check.http"
    failure = failed.find("failure")
    assert failure is not None and failure.get("message") == run.results[1].reason
    out = failed.findtext("system-out") or ""
    assert "sent      GET /" in out and "Authorization: Basic " in out

    page = html_report(run.results, run.device_id, run.acs_url, run.started)
    assert page.count("<section") == 2
    assert '<section id="http.basic-refused" class="fail">' in page
    assert "<script" not in page and "<link" not in page and " src=" not in page
    assert '1 passed</span>, <span class="t-fail">1 failed' in page


def test_check_settings_give_the_lab_its_choices(tmp_path: Path) -> None:
    lab = replace(FAST, stun_auth=False, xmpp_tls=False, cr_attempts=5, cr_interval=0.5)
    settings = check_settings(loopback_settings(tmp_path, cr_provision="off"), lab)
    assert settings.cr_provision == "random"
    assert (settings.stun_require_auth, settings.xmpp_lab_plaintext) == (False, True)
    assert not check_settings(loopback_settings(tmp_path), FAST).xmpp_lab_plaintext
    assert (settings.udp_cr_repeat, settings.udp_cr_interval) == (5, 0.5)
    assert settings.cr_session_wait == FAST.inform_within


def test_reports_escape_what_the_device_sent() -> None:
    (case,) = select(["http.digest-valid"])
    evidence = (Entry(0.5, Kind.RECEIVED, "200 <b>", 'Server: "x" & <script>alert(1)</script>'),)
    result = CaseResult(case, Verdict.FAIL, "body <i>", 0.5, evidence)
    page = html_report([result], "dev<1>", "http://acs/", datetime(2026, 1, 1, tzinfo=UTC))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "dev&lt;1&gt;" in page and "body &lt;i&gt;" in page
    suite = ET.fromstring(junit_xml([result], "dev<1>", datetime(2026, 1, 1, tzinfo=UTC)))
    assert suite.get("name") == "knock check dev<1>"
    assert "<script>alert(1)</script>" in (suite.findtext("testcase/system-out") or "")


def test_the_command_lists_cases_and_refuses_an_unknown_one() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["check", "--list", "http.*"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    for case in select(["http.*"]):
        assert case.id in listed.output
    assert "datamodel." not in listed.output
    unknown = runner.invoke(app, ["check", "http.nope"])
    assert unknown.exit_code == 2
    assert "no case matches 'http.nope'" in unknown.output
    helped = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "200"})
    for word in (
        "3478",
        "5222",
        "5223",
        "7547",
        "--xmpp-tls-port",
        "--stun-require-auth",
        "--udp-delay",
        "--schedule-delay",
        "--junit",
        "knock serve",
    ):
        assert word in helped.output


async def test_the_runner_turns_every_ending_of_a_case_into_a_verdict(tmp_path: Path) -> None:
    async def slow(ctx: CheckContext) -> None:
        ctx.note("about to hang")
        await asyncio.sleep(60)

    async def broken(ctx: CheckContext) -> None:
        raise ValueError("a bug in the case")

    async def unsure(ctx: CheckContext) -> None:
        ctx.skip("the device offers no such thing")

    def made(run: CaseFn) -> Case:  # not registered: the registry stays the product's
        return Case("http.runner-test", "none", "a test of the runner", Family.HTTP, run)

    async with check_lab(tmp_path, options=replace(FAST, case_timeout=0.5)) as lab:
        hung = await run_case(lab.dut, made(slow))
        failed = await run_case(lab.dut, made(broken))
        skipped = await run_case(lab.dut, made(unsure))
    assert (hung.verdict, hung.reason) == (Verdict.FAIL, "the case did not end within 0.5 s")
    # A failure is followed by a check that the device still responds, in the evidence (after
    # the wait for the rate limit the case did not use, when its request is the first).
    notes = [e.summary for e in hung.evidence if e.kind is Kind.NOTE]
    assert [n for n in notes if not n.startswith("waiting ")][-4:] == [
        "about to hang",
        "checking that the device still responds",
        "the device still responds",
        "fail: the case did not end within 0.5 s",
    ]
    assert (failed.verdict, failed.reason) == (
        Verdict.FAIL,
        "the case raised ValueError('a bug in the case')",
    )
    assert (skipped.verdict, skipped.reason) == (Verdict.SKIPPED, "the device offers no such thing")
    assert exit_code([skipped]) == 0 and exit_code([skipped, failed]) == 1


async def test_only_a_session_answering_a_request_counts_against_no_session(
    tmp_path: Path,
) -> None:
    async def quiet_but_periodic(ctx: CheckContext) -> None:
        with ctx.watch() as sessions:
            lab.cpe.request_session(Event.PERIODIC)  # the device's own, as a timer fires
            await sessions.no_session()

    async def answered(ctx: CheckContext) -> None:
        with ctx.watch() as sessions:
            lab.cpe.request_session(Event.CONNECTION_REQUEST)
            await sessions.no_session()

    def made(run: CaseFn) -> Case:
        return Case("http.no-session-test", "none", "a test of no_session", Family.HTTP, run)

    async with check_lab(tmp_path) as lab:
        own = await run_case(lab.dut, made(quiet_but_periodic))
        counted = await run_case(lab.dut, made(answered))
    assert own.verdict is Verdict.PASS, own.reason
    assert "a session of the device's own (Inform [2 PERIODIC]), not counted" in [
        e.summary for e in own.evidence
    ]
    assert counted.verdict is Verdict.FAIL
    assert counted.reason == (
        "the device opened a session (Inform [6 CONNECTION REQUEST]) that should not come"
    )


async def test_a_device_whose_sessions_die_is_told_by_how_they_ended(tmp_path: Path) -> None:
    acs = await start(loopback_settings(tmp_path, cr_provision="random"))
    try:
        options = replace(FAST, device_within=3.0, quiet_for=1.0)
        waiting = asyncio.create_task(wait_for_device(acs, options))
        await asyncio.sleep(0)  # let it subscribe before the first Inform

        async def session(cpe: ScriptedCpe) -> None:
            await cpe.inform("0 BOOTSTRAP", "1 BOOT")
            read = await cpe.empty()
            assert read.envelope is not None
            # The partial path first, then (Knock learns) its names, then the known leaves.
            assert isinstance(read.envelope.body, GetParameterValues | GetParameterNames)

        for _ in range(2):
            with acs.hub.subscribe("00D09E-ScriptBox-DROP1") as announcements:
                async with ScriptedCpe(acs.acs_url, serial="DROP1") as cpe:
                    await session(cpe)
                # The connection closes unanswered, as a device that crashes on the read does;
                # the ACS ends the session then, before the next Inform could supersede it.
                while not isinstance(await announcements.next(), SessionEnded):
                    pass
        async with ScriptedCpe(acs.acs_url, serial="DROP1") as cpe:
            await session(cpe)  # and this one hangs, open, until the check gives up
            with pytest.raises(NoDevice) as raised:
                await waiting
    finally:
        await acs.close()
    message = str(raised.value)
    assert message.startswith(
        "device 00D09E-ScriptBox-DROP1 informed 3 times (3 x [0 BOOTSTRAP, 1 BOOT]); its sessions: "
    ), message
    assert "2 cut short (the device closed the connection without answering)" in message
    assert "1 still open" in message
    assert "not provisioned and quiet for 1 s within 3 s" in message
    assert "GetParameterValues of that partial path; from a device that faulted" in message
    assert "no device informed" not in message


def test_reports_show_a_warning_as_a_pass_and_a_case_not_run_as_skipped() -> None:
    digest, rate, url = select(["http.rate-limit", "http.digest-valid", "datamodel.cr-url-http"])
    results = [
        CaseResult(
            rate, Verdict.WARN, "answered 200: it SHOULD", 6.0, (Entry(0.1, Kind.NOTE, "x"),)
        ),
        CaseResult(digest, Verdict.PASS, "", 1.0, ()),
        CaseResult(url, Verdict.NOT_RUN, "the device is unresponsive since case x", 0.0, ()),
    ]
    suite = ET.fromstring(junit_xml(results, "dev", datetime(2026, 1, 1, tzinfo=UTC)))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "1")
    warned = suite.find("testcase[@name='http.rate-limit']")
    assert warned is not None and warned.find("failure") is None and warned.find("skipped") is None
    properties = {p.get("name"): p.get("value") for p in warned.iter("property")}
    assert properties["verdict"] == "warn"
    assert properties["warning"] == "answered 200: it SHOULD"
    assert (warned.findtext("system-out") or "").startswith("WARNING: answered 200: it SHOULD")
    not_run = suite.find("testcase[@name='datamodel.cr-url-http']/skipped")
    assert not_run is not None and not_run.get("message") == results[2].reason
    page = html_report(results, "dev", "http://acs/", datetime(2026, 1, 1, tzinfo=UTC))
    assert '<section id="http.rate-limit" class="warn">' in page
    assert '<span class="badge warn">warn</span>' in page
    assert '<span class="badge not-run">not run</span>' in page
    assert (
        '<span class="t-pass">1 passed</span>, <span class="t-warn">1 warned</span>, '
        '<span class="t-fail">0 failed</span>, <span class="t-skipped">0 skipped</span>, '
        '<span class="t-not-run">1 not run</span>'
    ) in page
    assert exit_code(results[:2]) == 0 and exit_code(results) == 1
