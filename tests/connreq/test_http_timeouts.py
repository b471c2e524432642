"""An HTTP connection request that times out says how far it got: a device that took the TCP
connection and never answered is told apart from a packet dropped on the way (the firewall case
is tested in tests/lab/test_ipv6_firewall.py)."""

from __future__ import annotations

import socket

from knock.connreq.http import HttpConnectionRequester
from knock.vocab import CrOutcome


async def test_a_silent_device_that_took_the_connection_is_no_answer() -> None:
    with socket.socket(socket.AF_INET6) as silent:
        silent.bind(("::1", 0))
        silent.listen()  # the kernel completes the handshake; nothing ever reads or answers
        port = silent.getsockname()[1]
        requester = HttpConnectionRequester(timeout=0.5)
        try:
            sent = await requester.send(f"http://[::1]:{port}/cr", "u", "p")
        finally:
            await requester.close()
    assert sent.outcome is CrOutcome.TIMEOUT
    assert sent.detail == f"no answer from http://[::1]:{port}/cr within 0.5 s"
