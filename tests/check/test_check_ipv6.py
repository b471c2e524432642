"""`knock check` against a device on IPv6: the cases pass as on IPv4, and the evidence says
which family each exchange went over: HTTP requests, UDP datagrams, STUN, XMPP IQs and the CWMP
sessions they open."""

from __future__ import annotations

from pathlib import Path

from check_lab import check_lab

from knock.check import CaseResult, Kind, Verdict
from knock.vocab import CrMethod

V6 = {"cwmp_host": "::1", "stun_host": "::1", "xmpp_host": "::1"}


def summaries(result: CaseResult, kind: Kind) -> list[str]:
    return [e.summary for e in result.evidence if e.kind is kind]


async def test_cases_by_every_method_over_ipv6_name_the_family(tmp_path: Path) -> None:
    methods = (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP)
    async with check_lab(tmp_path, methods=methods, acs_settings=V6, cr_host="::1") as lab:
        http = await lab.run("http.digest-valid")
        assert http.verdict is Verdict.PASS, http.reason
        sent = summaries(http, Kind.SENT)
        assert sent and all(s.endswith(" over IPv6") for s in sent), sent
        assert all(
            e.detail.startswith("GET http://[::1]:") for e in http.evidence if e.kind is Kind.SENT
        )
        udp = await lab.run("udp.valid-cr")
        assert udp.verdict is Verdict.PASS, udp.reason
        [datagram] = [e.summary for e in udp.evidence if e.kind is Kind.SENT]
        assert " to [::1]:" in datagram and datagram.endswith(" over IPv6"), datagram
        stun = await lab.run("udp.binding-request")
        assert stun.verdict is Verdict.PASS, stun.reason
        seen = [e.summary for e in stun.evidence if e.summary.startswith("from ")]
        assert seen and all(s.startswith("from [::1]:") and " over IPv6: " in s for s in seen)
        xmpp = await lab.run("xmpp.valid-cr")
        assert xmpp.verdict is Verdict.PASS, xmpp.reason
        [iq] = [s for s in summaries(xmpp, Kind.SENT) if " IQ get " in s]
        assert iq.startswith("valid CR: IQ get from acs@") and iq.endswith(" over IPv6"), iq
    for result in (http, udp, xmpp):
        informs = summaries(result, Kind.INFORM)
        assert informs and all(s.endswith(" over IPv6") for s in informs), informs


async def test_over_ipv4_the_evidence_says_so(tmp_path: Path) -> None:
    async with check_lab(tmp_path) as lab:
        http = await lab.run("http.digest-valid")
    assert http.verdict is Verdict.PASS, http.reason
    for kind in (Kind.SENT, Kind.INFORM):
        seen = summaries(http, kind)
        assert seen and all(s.endswith(" over IPv4") for s in seen), seen
