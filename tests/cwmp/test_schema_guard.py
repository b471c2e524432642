"""The schema guard of tests/conftest.py covers what the ACS and the simulator build."""

from __future__ import annotations

import knock.cpe.acs_client
import knock.cwmp
import knock.cwmp.envelope
import knock.cwmp.session
from knock.cwmp import CWMP_1_0, CWMP_1_2, Download, ScheduleInform
from wire_schema import VIOLATIONS, guarded_build


def test_every_builder_goes_through_the_guard() -> None:
    # The ACS session core, the simulated CPE's client, and the public name tests import.
    for module in (knock.cwmp.session, knock.cpe.acs_client, knock.cwmp, knock.cwmp.envelope):
        assert module.build_envelope is guarded_build, module.__name__


def test_an_off_schema_message_is_recorded_against_the_test() -> None:
    knock.cwmp.build_envelope(ScheduleInform(60, "k"), cwmp_ns=CWMP_1_2, id="1")
    assert VIOLATIONS == []
    # A CommandKey over Annex A's 32 characters, and a FileType of no allowed form.
    knock.cwmp.build_envelope(Download("k" * 33, "firmware", "http://f/"), cwmp_ns=CWMP_1_0, id="1")
    found = list(VIOLATIONS)
    VIOLATIONS.clear()  # recorded on purpose: not this test's failure
    assert len(found) == 1
    assert "Download built off-schema" in found[0]
    assert "CommandKey" in found[0] and "FileType" in found[0]
