"""Simulated devices that check certificates, against `knock serve`'s XMPP server on real
sockets: they log in with the lab CA or an operator's CA, and one given neither refuses, which
shows in the log, /metrics and its NBI document."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path

import aiohttp
import pytest
from live_lab import MS, WAIT, lab

from knock.acs.xmpp_accounts import put_account
from knock.config import ConfigError
from knock.cpe.trust import device_tls
from knock.server import Running, start
from knock.xmpp.client_conn import XmppClient
from knock.xmpp.server import LoginEvent, LoginOutcome
from serve_support import loopback_settings
from tls_support import OperatorCa


async def direct_tls_login(acs: Running, trust: ssl.SSLContext) -> bool:
    """Whether an account logs in on the direct-TLS port (XEP-0368) checking with *trust*."""
    assert acs.xmpp is not None and acs.xmpp.tls_port is not None
    await put_account(acs.store, "direct", "direct-pw")
    client = XmppClient(
        "direct@knock.lab/cwmp",
        "direct-pw",
        host="127.0.0.1",
        port=acs.xmpp.tls_port,
        ssl_context=trust,
        direct_tls=True,
    )
    client.start()
    try:
        status = await asyncio.wait_for(client.wait_online(), WAIT)
        return status.tls
    finally:
        await client.close()


async def test_a_device_holding_the_lab_ca_logs_in_over_starttls_and_direct_tls(
    tmp_path: Path,
) -> None:
    async with lab(tmp_path) as running:
        (cpe,) = running.devices
        await running.provisioned(cpe)
        row = cpe.model.get(f"{MS}ConnReqXMPPConnection").rstrip(".") + "."
        assert cpe.model.get(row + "UseTLS") == "1"  # as the ACS set it
        assert cpe.model.get(row + "TLSEstablished") == "true"
        assert running.acs.ca is not None
        assert await direct_tls_login(running.acs, device_tls(str(running.acs.ca.cert_path)))
        assert running.acs.xmpp is not None and not running.acs.xmpp.stats.tls_refusals


async def test_a_device_holding_the_operators_ca_logs_in_to_its_certificate(
    tmp_path: Path,
) -> None:
    operator = OperatorCa(tmp_path)
    cert, key = operator.issue("xmpp", ["knock.lab"])
    trust = device_tls(str(operator.path))
    settings = {"xmpp_tls_cert": str(cert), "xmpp_tls_key": str(key)}
    async with lab(tmp_path, trust=trust, **settings) as running:
        (cpe,) = running.devices
        await running.provisioned(cpe)
        row = cpe.model.get(f"{MS}ConnReqXMPPConnection").rstrip(".") + "."
        assert cpe.model.get(row + "TLSEstablished") == "true"
        assert running.acs.ca is None  # no certificate of the lab CA's is served
        assert running.acs.xmpp is not None and running.acs.xmpp.certificate == cert
        assert await direct_tls_login(running.acs, trust)


async def test_an_operator_certificate_for_another_domain_stops_the_start(
    tmp_path: Path,
) -> None:
    cert, key = OperatorCa(tmp_path).issue("xmpp", ["xmpp.example"])
    settings = loopback_settings(tmp_path, xmpp_tls_cert=str(cert), xmpp_tls_key=str(key))
    with pytest.raises(ConfigError, match=r"does not name knock\.lab .* DNS:knock\.lab"):
        await start(settings)


async def _refusals(events: asyncio.Queue[LoginEvent], count: int) -> list[LoginEvent]:
    seen: list[LoginEvent] = []
    async with asyncio.timeout(WAIT):
        while len(seen) < count:
            event = await events.get()
            if event.outcome is LoginOutcome.TLS_REFUSED:
                seen.append(event)
    return seen


async def test_a_device_without_the_ca_refuses_and_it_shows_in_log_metrics_and_document(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="knock.xmpp")
    async with lab(tmp_path, trust=device_tls()) as running:
        acs = running.acs
        (cpe,) = running.devices
        device_id = running.device_id(cpe)
        with acs.xmpp_logins.watch() as events:
            # The device retries with back-off (1 s first): two refusals, one log line.
            refused = await _refusals(events, 2)
        await acs.xmpp_logins.written()
        assert {e.detail for e in refused} == {"unknown-ca"}
        lines = [r.getMessage() for r in caplog.records if "certificate" in r.getMessage()]
        assert lines == [
            f"device {device_id} at 127.0.0.1 refused the XMPP server's certificate (TLS "
            "alert unknown-ca): give the device the CA that signed it (the lab CA: GET /ca.pem "
            "on the NBI) or set xmpp_tls_cert to one it trusts"
        ]
        row = cpe.model.get(f"{MS}ConnReqXMPPConnection").rstrip(".") + "."
        assert cpe.model.get(f"{MS}ConnReqJabberID") == ""
        assert cpe.model.get(row + "Status") == "ServerNotPresent"
        nbi = f"http://127.0.0.1:{acs.nbi_port}"
        query = json.dumps({"_xmppLogin.outcome": "tls-refused"})
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{nbi}/devices/", params={"query": query}) as answer:
                [doc] = await answer.json()
            async with http.get(f"{nbi}/metrics") as answer:
                metrics = await answer.text()
            async with http.get(f"{nbi}/ca.pem") as answer:
                assert answer.status == 200
                assert acs.ca is not None and await answer.read() == acs.ca.pem
        assert doc["_id"] == device_id
        login = doc["_xmppLogin"]
        assert (login["outcome"], login["detail"], login["source"]) == (
            "tls-refused",
            "unknown-ca",
            "127.0.0.1",
        )
        counted = [
            line
            for line in metrics.splitlines()
            if line.startswith("knock_xmpp_server_tls_refused")
        ]
        assert counted and counted[0].startswith(
            'knock_xmpp_server_tls_refused_total{alert="unknown-ca"} '
        )
        assert float(counted[0].split()[-1]) >= 2
