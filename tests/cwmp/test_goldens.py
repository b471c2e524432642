"""Knock's codec against golden messages written from TR-069 Annex A, not from the codec.

Each golden is parsed (every field compared) and built (canonical XML compared byte for byte)
in every namespace that has its messages, and is itself valid under the schema written from the
spec's tables (tests/cwmp/schema/), so the two references check each other.
"""

from __future__ import annotations

import pytest
from cwmp_goldens import GOLDEN_DIR, GOLDENS, VERSIONS, Golden, golden_failure

from knock.cwmp import CWMP_1_0, CWMP_1_2, RPC_TYPES, Fault, GetRPCMethods, GetRPCMethodsResponse
from wire_schema import wire_errors

CASES = [(golden, ns) for golden in GOLDENS for ns in golden.namespaces()]


def _case_id(case: object) -> str:
    return case.path.removesuffix(".xml") if isinstance(case, Golden) else str(case)[-3:]


@pytest.mark.parametrize(("golden", "cwmp_ns"), CASES, ids=_case_id)
def test_codec_matches_golden(golden: Golden, cwmp_ns: str) -> None:
    assert golden_failure(golden, cwmp_ns) is None


@pytest.mark.parametrize(("golden", "cwmp_ns"), CASES, ids=_case_id)
def test_golden_is_valid(golden: Golden, cwmp_ns: str) -> None:
    assert wire_errors(golden.text(cwmp_ns)) == []


@pytest.mark.parametrize("golden", [g for g in GOLDENS if g.since != CWMP_1_0], ids=_case_id)
def test_older_namespaces_lack_later_messages(golden: Golden) -> None:
    older = VERSIONS[VERSIONS.index(golden.since) - 1]
    errors = wire_errors(golden.text(older))
    assert any("No matching global element declaration" in e for e in errors), errors


def test_every_message_has_a_golden_in_each_direction_it_travels() -> None:
    sent = {(g.path.partition("/")[0], type(g.message)) for g in GOLDENS}
    # GetRPCMethods goes both ways (A.3.1), and a fault can answer any request.
    both = {GetRPCMethods, GetRPCMethodsResponse, Fault}
    for rpc in RPC_TYPES:
        directions = {d for d, cls in sent if cls is rpc}
        if rpc in both:
            assert directions == {"acs-to-cpe", "cpe-to-acs"}, rpc.__name__
        else:
            assert len(directions) == 1, rpc.__name__


def test_every_golden_file_is_in_the_table() -> None:
    files = {str(p.relative_to(GOLDEN_DIR)) for p in GOLDEN_DIR.rglob("*.xml")}
    assert files == {g.path for g in GOLDENS}


def test_goldens_carry_the_soap_details_peers_rely_on() -> None:
    # The checks C14N comparison makes implicitly, spelled out once on the raw files.
    for golden in GOLDENS:
        text = golden.text(CWMP_1_2).decode()
        assert '<cwmp:ID soap-env:mustUnderstand="1">' in text, golden.path
        assert f'xmlns:cwmp="{CWMP_1_2}"' in text, golden.path
    spv = next(g for g in GOLDENS if g.path == "acs-to-cpe/SetParameterValues.xml")
    text = spv.text(CWMP_1_2).decode()
    assert 'soap-enc:arrayType="cwmp:ParameterValueStruct[7]"' in text
    assert text.count("xsi:type=") == 7
    assert '<Value xsi:type="xsd:string"></Value>' in text
