"""An Inform whose device gave up on it before the ACS read it is dropped, not replayed.

Seen in a 10,000-device run with the ACS overloaded: a device's first Inform timed out on its
side, it retried, bootstrapped and was provisioned, and only then did the ACS read the first
POST from its socket. Taken as a new session, its stale `0 BOOTSTRAP` made the ACS forget the
credentials it had just set (and that session timed out, as nobody was there)."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from scripted_cpe import NS_10, ScriptedCpe

from knock.cwmp.envelope import build_envelope
from knock.cwmp.rpcs import (
    EventStruct,
    GetParameterValuesResponse,
    Inform,
    ParameterValueStruct,
    SetParameterValuesResponse,
)
from knock.server import Running

MS = "Device.ManagementServer."


def abandoned_post(url: str, body: bytes) -> None:
    """POST *body* and close at once, as a CPE whose request timed out: the request and the
    end of the connection are both waiting in the ACS's socket when it reads them."""
    target = urlsplit(url)
    assert target.hostname is not None and target.port is not None
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: {target.hostname}\r\n"
        f'Content-Type: text/xml\r\nSOAPAction: ""\r\nContent-Length: {len(body)}\r\n\r\n'
    )
    with socket.create_connection((target.hostname, target.port)) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)


class Dropped(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "whose connection had closed" in record.getMessage():
            self.seen.set()


async def test_a_stale_bootstrap_inform_does_not_forget_the_credentials(start_acs: Any) -> None:
    acs: Running = await start_acs(cr_provision="random")
    async with ScriptedCpe(acs.acs_url) as cpe:
        await cpe.inform("0 BOOTSTRAP", "1 BOOT")
        step = await cpe.empty()  # provisioning: the read, then the credentials
        values = [ParameterValueStruct(n, v, t) for n, (v, t) in cpe.params.items() if MS in n]
        step = await cpe.answer(step, GetParameterValuesResponse(values))
        assert (await cpe.answer(step, SetParameterValuesResponse(0))).status == 204
        provisioned = await acs.store.get_cr_target(cpe.device_id)
        assert provisioned is not None and provisioned.password

        stale = Inform(
            device_id=cpe.ident,
            events=[EventStruct("0 BOOTSTRAP"), EventStruct("1 BOOT")],
            max_envelopes=1,
            current_time="2026-01-01T00:00:00Z",
            retry_count=0,
            parameter_list=[ParameterValueStruct(n, v, t) for n, (v, t) in cpe.params.items()],
        )
        dropped = Dropped()
        logging.getLogger("knock").addHandler(dropped)
        try:
            with acs.hub.subscribe(cpe.device_id) as announcements:
                abandoned_post(acs.acs_url, build_envelope(stale, cwmp_ns=NS_10, id="stale"))
                arrival = asyncio.create_task(announcements.next())
                dropping = asyncio.create_task(dropped.seen.wait())
                done, pending = await asyncio.wait(
                    {arrival, dropping}, timeout=5, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
        finally:
            logging.getLogger("knock").removeHandler(dropped)
        assert dropping in done and arrival not in done  # no Arrival: no session opened
    sessions = await acs.store.list_sessions(cpe.device_id)
    assert [s.events for s in sessions] == [["0 BOOTSTRAP", "1 BOOT"]]
    kept = await acs.store.get_cr_target(cpe.device_id)
    assert kept is not None and kept.password == provisioned.password
