"""The abuse limits through the real server and real clients: the shaper pauses a flooding
connection without losing what it sent, a device cannot reach another, and a closed session
gives its slot back."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from test_xmpp_server import DOMAIN, PASSWORDS, Client, leave, login, make_server

from knock.xmpp.limits import Limits
from knock.xmpp.server import XmppServer

LIMITS = Limits(stanza_rate=20.0, max_sessions=2, service_accounts=frozenset({"acs"}))
PING = "<iq type='get' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[XmppServer]:
    xmpp = make_server(tmp_path, limits=LIMITS)
    await xmpp.start()
    yield xmpp
    await xmpp.close()


def device(name: str = "cpe-0001", resource: str = "cwmp") -> Client:
    return Client(f"{name}@{DOMAIN}/{resource}", PASSWORDS[name]).plaintext()


async def test_a_flood_is_shaped_and_every_stanza_still_answered(server: XmppServer) -> None:
    cpe = await login(device(), server.port)
    answers = await asyncio.gather(
        *(cpe.Iq(xml=ET.fromstring(PING)).send(timeout=30) for _ in range(120))
    )
    assert [a["type"] for a in answers] == ["result"] * 120
    # 120 pings against a burst of 40 and 20 a second: reading paused at least once.
    assert server.stats.paused >= 1
    await leave(cpe)


async def test_a_device_cannot_reach_another_device(server: XmppServer) -> None:
    one, two = await login(device(), server.port), await login(device("cpe-0002"), server.port)
    iq = one.Iq(xml=ET.fromstring(PING))
    iq["to"] = f"cpe-0002@{DOMAIN}/cwmp"
    with pytest.raises(IqError) as refused:
        await iq.send(timeout=5)
    assert refused.value.iq["error"]["condition"] == "not-allowed"
    assert server.stats.stanzas_routed == 0
    await leave(one, two)


async def test_a_closed_session_gives_its_slot_back(server: XmppServer) -> None:
    first, second = device(resource="a"), device(resource="b")
    await login(first, server.port)
    await login(second, server.port)
    await leave(first)
    third = await login(device(resource="c"), server.port)  # the cap is 2: a's slot is free
    assert sorted(jid.resource for jid in server.sessions) == ["b", "c"]
    await leave(second, third)
