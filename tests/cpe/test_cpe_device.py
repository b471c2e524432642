"""Simulated devices in whole sessions against a scripted ACS on a real socket, on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from cpe_support import T0, FakeAcs, FakeClock, MakeCpe, RunCpe

from knock.auth import DigestServer
from knock.cpe.defects import Defect
from knock.cpe.device import CpeError, SimulatedCpe, retry_wait_range
from knock.cpe.transfer import Received
from knock.cwmp import (
    CWMP_1_2,
    AddObject,
    AddObjectResponse,
    DeviceIdStruct,
    Download,
    DownloadResponse,
    EventStruct,
    FactoryReset,
    FactoryResetResponse,
    Fault,
    GetAllQueuedTransfers,
    GetAllQueuedTransfersResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    Inform,
    ParameterValueStruct,
    Reboot,
    RebootResponse,
    ScheduleInform,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    SetParameterAttributesStruct,
    SetParameterValues,
    SetParameterValuesResponse,
    TransferComplete,
)

MS = "Device.ManagementServer."
T0_TEXT = "2025-06-15T15:06:40Z"


def codes(inform: Inform) -> list[str]:
    return [event.event_code for event in inform.events]


def params(inform: Inform) -> dict[str, str]:
    return {p.name: p.value for p in inform.parameter_list}


def notify(name: str, level: int) -> SetParameterAttributesStruct:
    return SetParameterAttributesStruct(name, True, level, False)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_bad_parameters_name_the_device(make_cpe: MakeCpe) -> None:
    with pytest.raises(CpeError) as caught:
        make_cpe("SN20", values={"Device.Nope": "1"})
    assert str(caught.value) == (
        "device SN20: bad factory value (Device.Nope does not exist); give parameters of model"
        " tr181 values of their types"
    )
    cpe = make_cpe("SN21")
    with pytest.raises(CpeError, match=r"^device SN21: cannot set .*NATDetected to 'maybe' \("):
        cpe.set_value(MS + "NATDetected", "maybe")
    with pytest.raises(CpeError, match="model tr181"):
        cpe.set_value("Device.Nope", "1")


def test_retry_wait_ranges_follow_tr069_table() -> None:
    expected = [(5 * 2**n, 5 * 2 ** (n + 1)) for n in range(10)]
    assert [retry_wait_range(failures) for failures in range(1, 11)] == expected
    assert retry_wait_range(10) == retry_wait_range(25) == (2560, 5120)
    assert retry_wait_range(3, minimum_wait=10, multiplier=1500) == (22.5, 33.75)


async def test_bootstrap_then_periodic(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN1")
    run_cpe(cpe)
    first = await acs.next_session()
    assert codes(first.inform) == ["0 BOOTSTRAP", "1 BOOT"]
    assert first.inform.device_id == DeviceIdStruct("Knock Labs", "00D09E", "KnockBox", "SN1")
    assert (first.inform.retry_count, first.inform.max_envelopes) == (0, 1)
    assert first.inform.current_time == T0_TEXT
    assert first.cwmp_ns == CWMP_1_2
    assert first.cookie_echoed
    assert params(first.inform) == {
        "Device.RootDataModelVersion": "2.17",
        "Device.DeviceInfo.HardwareVersion": "1.0",
        "Device.DeviceInfo.SoftwareVersion": "1.0.0",
        "Device.DeviceInfo.ProvisioningCode": "",
        MS + "ParameterKey": "",
        MS + "ConnectionRequestURL": "",
        MS + "AliasBasedAddressing": "false",
        "Device.IP.Interface.1.IPv4Address.1.IPAddress": "203.0.113.10",
    }
    assert cpe.state.bootstrapped
    assert cpe.state.events == []

    due = await clock.next_timer()
    assert due == T0 + 300
    clock.advance_to(due)
    second = await acs.next_session()
    assert codes(second.inform) == ["2 PERIODIC"]
    assert second.inform.current_time == "2025-06-15T15:11:40Z"
    assert await clock.next_timer() == T0 + 600


async def test_a_tr098_device(make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs) -> None:
    run_cpe(make_cpe("IGD1", "tr098"))
    session = await acs.next_session()
    assert codes(session.inform) == ["0 BOOTSTRAP", "1 BOOT"]
    assert session.inform.device_id.serial_number == "IGD1"
    informed = params(session.inform)
    assert informed["InternetGatewayDevice.DeviceSummary"].startswith("InternetGatewayDevice:1.4")
    external = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
    assert informed[external + "ExternalIPAddress"] == "203.0.113.10"


async def test_scripted_session_then_reboot(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    acs.scripts.append(
        [
            GetParameterValues(
                ["Device.DeviceInfo.SerialNumber", MS + "ConnectionRequestUsername"]
            ),
            SetParameterValues(
                [ParameterValueStruct(MS + "PeriodicInformInterval", "600", "xsd:unsignedInt")],
                "cfg-1",
            ),
            AddObject("Device.IP.Interface.", "cfg-2"),
            SetParameterValues([ParameterValueStruct(MS + "NATDetected", "1")], "bad"),
            Reboot("reboot-1"),
        ]
    )
    cpe = make_cpe("SN2")
    run_cpe(cpe)
    first = await acs.next_session()
    *answers, refused, rebooted = first.responses
    assert answers == [
        GetParameterValuesResponse(
            [
                ParameterValueStruct("Device.DeviceInfo.SerialNumber", "SN2"),
                ParameterValueStruct(MS + "ConnectionRequestUsername", "SN2"),
            ]
        ),
        SetParameterValuesResponse(0),
        AddObjectResponse(3, 0),
    ]
    assert isinstance(refused, Fault)
    assert (refused.fault_code, refused.set_parameter_values_faults[0].fault_code) == (9003, 9008)
    assert rebooted == RebootResponse()
    assert first.response_ids == ["acs-1", "acs-2", "acs-3", "acs-4", "acs-5"]
    assert first.cookie_echoed

    second = await acs.next_session()
    assert second.inform.events == [EventStruct("M Reboot", "reboot-1"), EventStruct("1 BOOT")]
    assert params(second.inform)[MS + "ParameterKey"] == "cfg-2"
    assert cpe.model.get("Device.IP.InterfaceNumberOfEntries") == "3"
    # The new interval counts from the reboot.
    assert await clock.next_timer() == T0 + 600


async def test_back_off_between_failed_sessions(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    clock: FakeClock,
    uniform_low: list[tuple[float, float]],
) -> None:
    acs.fail_informs = 3
    run_cpe(make_cpe("SN3"))
    for retry, wait in enumerate([(5, 10), (10, 20), (20, 40)]):
        inform = await acs.next_inform()
        assert (inform.retry_count, codes(inform)) == (retry, ["0 BOOTSTRAP", "1 BOOT"])
        failed_at = clock.now
        due = await clock.next_timer()
        assert uniform_low[-1] == wait
        assert due == failed_at + wait[0]
        clock.advance_to(due)
    assert (await acs.next_inform()).retry_count == 3
    assert codes((await acs.next_session()).inform) == ["0 BOOTSTRAP", "1 BOOT"]
    assert len(uniform_low) == 3
    # Success resets the count; periodic informs keep their cadence from boot.
    due = await clock.next_timer()
    assert due == T0 + 300
    clock.advance_to(due)
    assert (await acs.next_session()).inform.retry_count == 0


async def test_back_off_follows_the_retry_parameters(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    clock: FakeClock,
    uniform_low: list[tuple[float, float]],
) -> None:
    acs.fail_informs = 2
    values = {MS + "CWMPRetryMinimumWaitInterval": "10", MS + "CWMPRetryIntervalMultiplier": "3000"}
    run_cpe(make_cpe("SN4", values=values))
    for _ in range(2):
        await acs.next_inform()
        clock.advance_to(await clock.next_timer())
    await acs.next_session()
    assert uniform_low == [(10, 30), (30, 90)]


async def test_a_connection_request_cuts_the_retry_wait_short(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    clock: FakeClock,
    uniform_low: list[tuple[float, float]],
) -> None:
    acs.fail_informs = 2
    cpe = make_cpe("SN18")
    run_cpe(cpe)
    await acs.next_inform()
    assert await clock.next_timer() == T0 + 5
    cpe.request_session()
    inform = await acs.next_inform()
    assert codes(inform) == ["0 BOOTSTRAP", "1 BOOT", "6 CONNECTION REQUEST"]
    assert inform.retry_count == 1
    assert await clock.next_timer() == T0 + 10  # the second failure waits 10-20 s
    assert uniform_low == [(5, 10), (10, 20)]
    # A failed session does not retry a connection request.
    assert [e.event_code for e in cpe.state.events] == ["0 BOOTSTRAP", "1 BOOT"]


async def test_periodic_informs_keep_the_phase_of_periodic_inform_time(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    phase = {MS + "PeriodicInformTime": "2025-06-15T15:08:20Z"}  # T0 + 100
    run_cpe(make_cpe("SN19", values=phase))
    await acs.next_session()
    assert await clock.next_timer() == T0 + 100
    clock.advance_to(T0 + 100)
    assert codes((await acs.next_session()).inform) == ["2 PERIODIC"]
    assert await clock.next_timer() == T0 + 400


async def test_a_new_periodic_schedule_counts_from_when_it_was_set(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN20")
    run_cpe(cpe)
    await acs.next_session()
    assert await clock.next_timer() == T0 + 300
    # At T0 + 250 the ACS asks for every 60 s from T0: T0 + 240 passed before it asked, so
    # the next Inform is at T0 + 300, not at once for a moment the old schedule held.
    clock.advance_to(T0 + 250)
    acs.scripts.append(
        [
            SetParameterValues(
                [
                    ParameterValueStruct(MS + "PeriodicInformInterval", "60", "xsd:unsignedInt"),
                    ParameterValueStruct(MS + "PeriodicInformTime", T0_TEXT, "xsd:dateTime"),
                ],
                "periodic",
            )
        ]
    )
    cpe.request_session()
    assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]
    assert await clock.next_timer() == T0 + 300
    clock.advance_to(T0 + 300)
    periodic = (await acs.next_session()).inform
    assert (codes(periodic), periodic.current_time) == (["2 PERIODIC"], "2025-06-15T15:11:40Z")
    assert await clock.next_timer() == T0 + 360


async def test_an_unreachable_acs_is_retried(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    acs: FakeAcs,
    clock: FakeClock,
    uniform_low: list[tuple[float, float]],
) -> None:
    cpe = make_cpe("SN5", acs_url="http://127.0.0.1:9/acs")
    run_cpe(cpe)
    assert await clock.next_timer() == T0 + 5
    assert uniform_low == [(5, 10)]
    assert [e.event_code for e in cpe.state.events] == ["0 BOOTSTRAP", "1 BOOT"]


@pytest.fixture
async def digest_acs() -> AsyncIterator[FakeAcs]:
    server = FakeAcs(DigestServer("knock-test"), password="pw")
    await server.start()
    yield server
    await server.close()


async def test_digest_authentication_to_the_acs(
    make_cpe: MakeCpe, run_cpe: RunCpe, digest_acs: FakeAcs
) -> None:
    digest_acs.scripts.append([GetRPCMethods(), GetRPCMethods()])
    run_cpe(make_cpe("SN6", acs_url=digest_acs.url, acs_username="cpe", acs_password="pw"))
    session = await digest_acs.next_session()
    assert codes(session.inform) == ["0 BOOTSTRAP", "1 BOOT"]
    assert len(session.responses) == 2
    assert digest_acs.challenges == 1  # later requests of the session reuse the nonce


async def test_wrong_acs_password_fails_the_session(
    make_cpe: MakeCpe,
    run_cpe: RunCpe,
    digest_acs: FakeAcs,
    clock: FakeClock,
    uniform_low: list[tuple[float, float]],
) -> None:
    cpe = make_cpe("SN7", acs_url=digest_acs.url, acs_username="cpe", acs_password="nope")
    run_cpe(cpe)
    assert await clock.next_timer() == T0 + 5
    assert uniform_low == [(5, 10)]
    assert digest_acs.challenges == 2  # the first POST, then the wrong answer to the challenge
    assert digest_acs.informs.empty()
    assert not cpe.state.bootstrapped


async def test_a_request_during_a_session_makes_one_more_session(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN8")
    seen_in_session: list[bool] = []

    def during(request: object) -> None:
        seen_in_session.append(cpe.in_session)
        cpe.request_session()
        cpe.request_session()

    acs.scripts.append([GetRPCMethods(), GetRPCMethods()])
    acs.on_request = during
    run_cpe(cpe)
    await acs.next_session()
    acs.on_request = None
    second = await acs.next_session()
    assert codes(second.inform) == ["6 CONNECTION REQUEST"]
    assert seen_in_session == [True, True]
    assert await clock.next_timer() == T0 + 300  # idle: no third session
    assert not cpe.in_session

    cpe.request_session()
    assert codes((await acs.next_session()).inform) == ["6 CONNECTION REQUEST"]


async def test_value_changes_are_notified(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    address, nat = MS + "UDPConnectionRequestAddress", MS + "NATDetected"
    acs.scripts.append([SetParameterAttributes([notify(address, 2), notify(nat, 1)])])
    cpe = make_cpe("SN9")
    run_cpe(cpe)
    assert (await acs.next_session()).responses == [SetParameterAttributesResponse()]
    await clock.next_timer()

    cpe.set_value(address, "198.51.100.7:40000")  # active: a session now
    second = await acs.next_session()
    assert codes(second.inform) == ["4 VALUE CHANGE"]
    assert params(second.inform)[address] == "198.51.100.7:40000"

    cpe.set_value(nat, "true")  # passive: waits for the next Inform
    due = await clock.next_timer()
    assert due == T0 + 300
    clock.advance_to(due)
    third = await acs.next_session()
    assert codes(third.inform) == ["2 PERIODIC", "4 VALUE CHANGE"]
    assert params(third.inform)[nat] == "true"
    assert address not in params(third.inform)
    assert cpe.model.changes() == {}


async def test_a_value_changed_during_a_session_makes_one_more_session(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    address = MS + "UDPConnectionRequestAddress"
    acs.scripts.append([SetParameterAttributes([notify(address, 2)])])
    cpe = make_cpe("SN10")
    run_cpe(cpe)
    await acs.next_session()
    await clock.next_timer()

    def moved_back(inform: object) -> None:  # as a STUN mapping that moved comes back
        cpe.set_value(address, "198.51.100.7:40001")

    acs.on_inform = moved_back  # while the Inform reporting the first change is on its way
    cpe.set_value(address, "198.51.100.7:40000")
    first = await acs.next_session()
    acs.on_inform = None
    assert params(first.inform)[address] == "198.51.100.7:40000"
    second = await acs.next_session()  # its acknowledged Inform does not swallow the change
    assert codes(second.inform) == ["4 VALUE CHANGE"]
    assert params(second.inform)[address] == "198.51.100.7:40001"


UPTIME, THROTTLE = "Device.DeviceInfo.UpTime", MS + "DefaultActiveNotificationThrottle"


async def active_uptime(cpe: SimulatedCpe, acs: FakeAcs, run_cpe: RunCpe, throttle: str) -> None:
    """Run *cpe*; in its boot session (at T0) the ACS sets the throttle and turns active
    notification on UpTime on."""
    acs.scripts.append(
        [
            SetParameterValues([ParameterValueStruct(THROTTLE, throttle)], "t"),
            SetParameterAttributes([notify(UPTIME, 2)]),
        ]
    )
    run_cpe(cpe)
    await acs.next_session()


async def tick_until(clock: FakeClock, moment: float) -> None:
    """Let the device wake at each of its timers up to *moment*."""
    while (due := await clock.next_timer()) < moment:
        clock.advance_to(due)
    clock.advance_to(moment)


async def test_active_uptime_opens_a_session_once_the_throttle_passed(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN11")
    await active_uptime(cpe, acs, run_cpe, "5")
    assert await clock.next_timer() == T0 + 1  # UpTime's next second
    await tick_until(clock, T0 + 4)
    assert acs.sessions.empty()  # changed at T0 + 1, but throttled
    await tick_until(clock, T0 + 5)
    session = await acs.next_session()
    assert codes(session.inform) == ["4 VALUE CHANGE"]
    assert params(session.inform)[UPTIME] == "5"
    # Turned off, it changes each second without a session.
    acs.scripts.append([SetParameterAttributes([notify(UPTIME, 0)])])
    await tick_until(clock, T0 + 10)
    assert (await acs.next_session()).responses == [SetParameterAttributesResponse()]
    assert await clock.next_timer() == T0 + 300  # the periodic Inform, nothing before


async def test_without_a_throttle_active_uptime_informs_each_second(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN12")
    await active_uptime(cpe, acs, run_cpe, "0")
    for second in (1, 2):
        await tick_until(clock, T0 + second)
        session = await acs.next_session()
        assert codes(session.inform) == ["4 VALUE CHANGE"]
        assert params(session.inform)[UPTIME] == str(second)


async def test_no_active_notify_leaves_the_change_for_the_next_session(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN13", defects=frozenset({Defect.NO_ACTIVE_NOTIFY}))
    await active_uptime(cpe, acs, run_cpe, "0")
    await tick_until(clock, T0 + 5)
    assert acs.sessions.empty()
    cpe.request_session()
    session = await acs.next_session()
    assert codes(session.inform) == ["6 CONNECTION REQUEST", "4 VALUE CHANGE"]
    assert params(session.inform)[UPTIME] == "5"
    # Forced active notification is not the ACS's to set: it still opens a session.
    cpe.set_value(MS + "UDPConnectionRequestAddress", "198.51.100.7:40000")
    assert codes((await acs.next_session()).inform) == ["4 VALUE CHANGE"]


CONFIG = b"# vendor configuration\n" * 50
FIRMWARE = bytes(range(256)) * 1000


@pytest.fixture
async def files() -> AsyncIterator[str]:
    """A file server on loopback: /cfg and /fw.bin; the base URL."""
    stored = {"cfg": CONFIG, "fw.bin": FIRMWARE}

    async def serve(request: web.Request) -> web.Response:
        body = stored.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_download_ends_with_transfer_complete(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock, files: str
) -> None:
    later = Download("later", "3 Vendor Configuration File", files + "cfg", delay_seconds=3600)
    acs.scripts.append(
        [
            Download("dl-1", "3 Vendor Configuration File", files + "cfg"),
            later,
            GetAllQueuedTransfers(),
        ]
    )
    cpe = make_cpe("SN10")
    run_cpe(cpe)
    first = await acs.next_session()
    assert first.responses[:2] == [DownloadResponse(1), DownloadResponse(1)]
    queued = first.responses[2]
    assert isinstance(queued, GetAllQueuedTransfersResponse)
    assert [t.command_key for t in queued.transfer_list] == ["dl-1", "later"]

    second = await acs.next_session()
    assert second.inform.events == [
        EventStruct("7 TRANSFER COMPLETE"),
        EventStruct("M Download", "dl-1"),
    ]
    assert second.cpe_requests == [
        TransferComplete("dl-1", start_time=T0_TEXT, complete_time=T0_TEXT)
    ]
    assert cpe.received == [
        Received("dl-1", files + "cfg", len(CONFIG), hashlib.sha256(CONFIG).hexdigest())
    ]
    assert (cpe.state.events, cpe.state.completions) == ([], [])
    assert [t.command_key for t in cpe.state.transfers] == ["later"]
    assert await clock.next_timer() == T0 + 300


async def test_firmware_download_reboots(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, files: str
) -> None:
    acs.scripts.append([Download("fw", "1 Firmware Upgrade Image", files + "fw.bin")])
    cpe = make_cpe("SN11")
    run_cpe(cpe)
    await acs.next_session()
    second = await acs.next_session()
    assert codes(second.inform) == ["7 TRANSFER COMPLETE", "M Download", "1 BOOT"]
    assert [type(r).__name__ for r in second.cpe_requests] == ["TransferComplete"]
    assert [r.sha256 for r in cpe.received] == [hashlib.sha256(FIRMWARE).hexdigest()]


@pytest.mark.parametrize(
    ("path", "size", "code"),
    [
        ("missing.bin", 0, 9016),  # 404: unable to access the file
        ("fw.bin", len(FIRMWARE) + 1, 9018),  # not the size the Download announced
    ],
)
async def test_a_failed_download_reports_its_fault_and_does_not_reboot(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, files: str, path: str, size: int, code: int
) -> None:
    firmware = Download("fw", "1 Firmware Upgrade Image", files + path, file_size=size)
    acs.scripts.append([firmware])
    cpe = make_cpe("SN12")
    run_cpe(cpe)
    await acs.next_session()
    second = await acs.next_session()
    assert codes(second.inform) == ["7 TRANSFER COMPLETE", "M Download"]  # no 1 BOOT
    [report] = second.cpe_requests
    assert isinstance(report, TransferComplete)
    assert report.fault_struct.fault_code == code
    assert cpe.received == []


async def test_a_download_from_a_closed_port_faults_9015(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs
) -> None:
    acs.scripts.append([Download("cfg", "3 Vendor Configuration File", "http://127.0.0.1:9/c")])
    run_cpe(make_cpe("SN13"))
    await acs.next_session()
    second = await acs.next_session()
    [report] = second.cpe_requests
    assert isinstance(report, TransferComplete) and report.fault_struct.fault_code == 9015


async def test_schedule_inform(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    acs.scripts.append([ScheduleInform(120, "sched-1")])
    run_cpe(make_cpe("SN12"))
    await acs.next_session()
    due = await clock.next_timer()
    assert due == T0 + 120
    clock.advance_to(due)
    session = await acs.next_session()
    assert session.inform.events == [
        EventStruct("3 SCHEDULED"),
        EventStruct("M ScheduleInform", "sched-1"),
    ]


async def test_factory_reset(make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs) -> None:
    acs.scripts.append(
        [
            SetParameterValues([ParameterValueStruct(MS + "PeriodicInformInterval", "60")], "k"),
            FactoryReset(),
        ]
    )
    cpe = make_cpe("SN13")
    password = cpe.model.get(MS + "ConnectionRequestPassword")
    run_cpe(cpe)
    assert (await acs.next_session()).responses[1] == FactoryResetResponse()
    second = await acs.next_session()
    assert codes(second.inform) == ["0 BOOTSTRAP", "1 BOOT"]
    assert params(second.inform)[MS + "ParameterKey"] == ""
    assert cpe.model.get(MS + "PeriodicInformInterval") == "300"
    assert cpe.model.get(MS + "ConnectionRequestPassword") == password


async def test_a_new_acs_url_is_bootstrapped(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs
) -> None:
    other = FakeAcs()
    await other.start()
    try:
        acs.scripts.append([SetParameterValues([ParameterValueStruct(MS + "URL", other.url)])])
        run_cpe(make_cpe("SN14"))
        await acs.next_session()
        moved = await other.next_session()
        assert codes(moved.inform) == ["0 BOOTSTRAP"]
        assert acs.sessions.empty()
    finally:
        await other.close()


BOGUS = (
    b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap-env:Header>'
    b'<cwmp:ID soap-env:mustUnderstand="1">x-1</cwmp:ID></soap-env:Header>'
    b"<soap-env:Body><cwmp:%s/></soap-env:Body></soap-env:Envelope>"
)


async def test_requests_the_cpe_cannot_read_are_refused_with_a_fault(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs
) -> None:
    acs.scripts.append([BOGUS % b"SelfDestruct", BOGUS % b"GetParameterNames", GetRPCMethods()])
    run_cpe(make_cpe("SN15"))
    session = await acs.next_session()
    unknown, invalid, methods = session.responses
    assert isinstance(unknown, Fault) and isinstance(invalid, Fault)
    assert (unknown.faultcode, unknown.fault_code) == ("Server", 9000)
    assert (invalid.faultcode, invalid.fault_code) == ("Client", 9003)
    assert session.response_ids[:2] == ["x-1", "x-1"]
    assert type(methods).__name__ == "GetRPCMethodsResponse"


async def test_restart_keeps_state_and_sends_boot_only(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs
) -> None:
    cpe = make_cpe("SN16")
    task = run_cpe(cpe)
    await acs.next_session()
    password = cpe.model.get(MS + "ConnectionRequestPassword")
    await stop(task)

    again = make_cpe("SN16")
    run_cpe(again)
    session = await acs.next_session()
    assert codes(session.inform) == ["1 BOOT"]
    assert again.model.get(MS + "ConnectionRequestPassword") == password


async def test_undelivered_events_survive_a_restart(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    cpe = make_cpe("SN17")
    task = run_cpe(cpe)
    await acs.next_session()
    await acs.next_inform()
    acs.fail_informs = 1
    clock.advance_to(await clock.next_timer())
    assert codes(await acs.next_inform()) == ["2 PERIODIC"]
    assert await clock.next_timer() == T0 + 305  # waiting to retry
    await stop(task)

    run_cpe(make_cpe("SN17"))
    session = await acs.next_session()
    assert codes(session.inform) == ["2 PERIODIC", "1 BOOT"]


@pytest.mark.parametrize("model", ["tr181", "tr098"])
async def test_many_devices_share_one_loop(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, model: str
) -> None:
    for n in range(20):
        run_cpe(make_cpe(f"FLEET{n}", model))
    serials = {(await acs.next_session()).inform.device_id.serial_number for _ in range(20)}
    assert serials == {f"FLEET{n}" for n in range(20)}


async def test_a_bootstrap_acknowledged_then_a_failed_session_never_bootstraps_again(
    make_cpe: MakeCpe, run_cpe: RunCpe, acs: FakeAcs, clock: FakeClock
) -> None:
    # An overloaded ACS accepts the bootstrap Inform, then loses the session (fault 8001).
    acs.scripts.append([Fault("Server", 8001, "session lost")])
    cpe = make_cpe("SN30")
    task = run_cpe(cpe)
    assert codes(await acs.next_inform()) == ["0 BOOTSTRAP", "1 BOOT"]
    clock.advance_to(await clock.next_timer())  # the periodic inform
    assert "0 BOOTSTRAP" not in codes((await acs.next_session()).inform)
    # Nor after a restart from its saved state.
    await stop(task)
    run_cpe(make_cpe("SN30"))
    assert codes((await acs.next_session()).inform) == ["1 BOOT"]
