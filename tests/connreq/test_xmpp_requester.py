"""XMPP connection requests end to end: the ACS's requester and a simulated device (Knock's XMPP
client) on Knock's built-in server and on a real Prosody, with every answer a device gives."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from lxml import etree

from knock.connreq.http import Sent
from knock.connreq.xmpp import XmppConnectionRequester, connection_request
from knock.vocab import CrOutcome
from knock.xmpp.client import ClientConfig, IqRequest, StanzaError, TlsPolicy
from knock.xmpp.client_conn import ConnState, ServerRetry, XmppClient
from xmpp_servers import KnockXmpp, Prosody, account, running_knock, running_prosody

Server = KnockXmpp | Prosody
CR_USERNAME, CR_PASSWORD = "CR username", "CR password"
# PROTOCOLS.md §5: the payload, exactly.
PAYLOAD = (
    b'<connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">'
    b"<username>CR username</username><password>CR password</password></connectionRequest>"
)
QUICK_RETRY = ServerRetry(initial_interval=0.05, max_interval=0.2)
SILENCE = "silence"


@pytest.fixture(scope="module")
def prosody() -> Iterator[Prosody]:
    with running_prosody() as server:
        yield server


@pytest.fixture(params=["knock", "prosody"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    if request.param == "prosody":
        yield request.getfixturevalue("prosody")
        return
    async with running_knock(tmp_path) as knock:
        yield knock


class Device:
    """A CPE on XMPP that answers connection requests as it is told: a result (None), the error
    given, or nothing (SILENCE)."""

    def __init__(self, server: Server) -> None:
        self.jid, password = account(server)
        self.answer: StanzaError | str | None = None
        self.received: list[IqRequest] = []
        self.client = XmppClient(
            self.jid,
            password,
            host=server.host,
            port=server.port,
            config=ClientConfig(tls=TlsPolicy.NEVER),
            retry=QUICK_RETRY,
            on_request=self._on_request,
        )

    def _on_request(self, client: XmppClient, request: IqRequest) -> None:
        self.received.append(request)
        if not isinstance(self.answer, str):
            client.answer(request, self.answer)


@pytest.fixture
async def device(server: Server) -> AsyncIterator[Device]:
    cpe = Device(server)
    cpe.client.start()
    await asyncio.wait_for(cpe.client.wait_online(), 10)
    yield cpe
    await cpe.client.close()


@pytest.fixture
async def acs(server: Server) -> AsyncIterator[XmppConnectionRequester]:
    jid, password = account(server, "knock")
    requester = XmppConnectionRequester(
        jid,
        password,
        host=server.host,
        port=server.port,
        ssl_context=ssl.create_default_context(cafile=str(server.certificate)),
        retry=QUICK_RETRY,
        timeout=1.0,
    )
    requester.start()
    status = await asyncio.wait_for(requester.wait_connected(), 10)
    assert status.tls  # TLS is required by default, through STARTTLS here
    yield requester
    await requester.close()


def test_the_payload_is_exactly_annex_k_s() -> None:
    assert etree.tostring(connection_request(CR_USERNAME, CR_PASSWORD)) == PAYLOAD


async def test_accepted(acs: XmppConnectionRequester, device: Device) -> None:
    sent = await acs.send(device.jid, CR_USERNAME, CR_PASSWORD)
    assert sent == Sent(None, f"{device.jid} accepted the XMPP connection request")
    (request,) = device.received  # as the server passed it on, with the ACS's real JID
    stanza = request.stanza
    assert (stanza.get("type"), stanza.get("to"), stanza.get("from")) == (
        "get",
        device.jid,
        acs.status.jid,
    )
    assert request.id and len(stanza) == 1 and etree.tostring(request.payload) == PAYLOAD


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (
            StanzaError("cancel", "service-unavailable"),
            CrOutcome.REFUSED,
            "though it is online (it answers a ping): the ACS's JID is not in its "
            "ConnReqAllowedJabberIDs, or it limits connection requests",
        ),
        (
            StanzaError("auth", "not-authorized"),
            CrOutcome.BAD_CREDENTIALS,
            "refused the credentials",
        ),
        (StanzaError("", "not-authorized"), CrOutcome.BAD_CREDENTIALS, "(no type)/not-authorized"),
        (
            StanzaError("auth", "not-autorized"),
            CrOutcome.BAD_CREDENTIALS,
            "answered auth/not-autorized: a device defect, the condition is not-authorized",
        ),
        (
            StanzaError("auth", others=("{jabber:client}not-authorized",)),
            CrOutcome.REFUSED,
            "answered auth/(no condition), other children {jabber:client}not-authorized: "
            "a malformed error",
        ),
        (
            StanzaError("wait", "resource-constraint", text="busy"),
            CrOutcome.RATE_LIMITED,
            "answered wait/resource-constraint, text 'busy': a temporary refusal",
        ),
        (
            StanzaError("modify", "resource-constraint"),
            CrOutcome.REFUSED,
            "answered modify/resource-constraint: an unexpected error",
        ),
        (StanzaError("cancel", "recipient-unavailable"), CrOutcome.UNREACHABLE, "not online"),
        (SILENCE, CrOutcome.TIMEOUT, "no answer from"),
    ],
)
async def test_refusals(
    acs: XmppConnectionRequester,
    device: Device,
    answer: StanzaError,
    outcome: CrOutcome,
    detail: str,
) -> None:
    device.answer = answer
    sent = await acs.send(device.jid, CR_USERNAME, CR_PASSWORD)
    assert sent.outcome is outcome
    assert detail in sent.detail


@pytest.mark.parametrize(
    ("allowed", "outcome"),
    [
        ("", CrOutcome.RATE_LIMITED),  # an empty list admits every sender
        ("someone@else.example, {bare}", CrOutcome.RATE_LIMITED),
        ("{full}", CrOutcome.RATE_LIMITED),
        ("{bare}x", CrOutcome.REFUSED),  # never by prefix
        ("someone@else.example", CrOutcome.REFUSED),
    ],
)
async def test_service_unavailable_from_a_device_that_admits_the_acs_is_its_rate_limit(
    acs: XmppConnectionRequester, device: Device, allowed: str, outcome: CrOutcome
) -> None:
    device.answer = StanzaError("cancel", "service-unavailable")
    full = acs.status.jid
    listed = allowed.format(full=full, bare=full.split("/")[0])
    sent = await acs.send(device.jid, CR_USERNAME, CR_PASSWORD, allowed=listed)
    assert sent.outcome is outcome, sent


async def test_an_offline_device_is_unreachable(
    acs: XmppConnectionRequester, server: Server
) -> None:
    jid, _ = account(server)  # an account nobody is logged in to
    sent = await acs.send(jid, CR_USERNAME, CR_PASSWORD)
    assert sent.outcome is CrOutcome.UNREACHABLE
    assert sent.detail == (
        f"{jid} answered cancel/service-unavailable, and to a ping too: it is not online, as "
        "the server answers for it (or it refuses everything from this ACS)"
    )


async def test_what_is_never_sent(acs: XmppConnectionRequester, device: Device) -> None:
    bare = device.jid.partition("/")[0]
    assert (await acs.send(bare, CR_USERNAME, CR_PASSWORD)).outcome is CrOutcome.UNREACHABLE
    assert (await acs.send("a@b@c/d", "u", "p")).outcome is CrOutcome.REFUSED
    assert device.received == []


async def test_unreachable_while_the_acs_is_not_connected_and_back_after_a_restart(
    acs: XmppConnectionRequester, device: Device, server: Server
) -> None:
    await server.restart()
    assert not acs.connected
    sent = await acs.send(device.jid, CR_USERNAME, CR_PASSWORD)
    assert sent.outcome is CrOutcome.UNREACHABLE
    assert sent.detail.startswith("the ACS's XMPP connection is not up (")
    await asyncio.wait_for(acs.wait_connected(), 10)
    await asyncio.wait_for(device.client.wait_online(), 10)
    assert acs.status.state is ConnState.ONLINE
    assert (await acs.send(device.jid, CR_USERNAME, CR_PASSWORD)).accepted
