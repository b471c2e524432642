"""The order connection-request methods are tried in, per device group."""

from __future__ import annotations

import pytest

from knock.connreq.order import DEFAULT_ORDER, MethodOrder
from knock.vocab import CrMethod


def test_longest_matching_prefix_wins_and_others_get_the_default() -> None:
    order = MethodOrder.parse("xmpp,udp,http", {"00D09E": "http", "00D09E-KnockBox": "udp, HTTP"})
    assert order.for_device("00D09E-KnockBox-SIM1") == (CrMethod.UDP, CrMethod.HTTP)
    assert order.for_device("00D09E-Other-SN1") == (CrMethod.HTTP,)
    assert order.for_device("ABCDEF-Box-SN1") == DEFAULT_ORDER


@pytest.mark.parametrize("text", ["", "http,http", "http,pigeon", " , "])
def test_bad_orders_are_refused_with_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="list each of http, udp, xmpp at most once"):
        MethodOrder.parse(text, {})
