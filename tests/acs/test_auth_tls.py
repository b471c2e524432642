"""CPE authentication (Basic, Digest, per-device) and CWMP over HTTPS."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from scripted_cpe import ScriptedCpe

from knock.cpe.acs_client import AcsRefused
from knock.server import Running
from tls_support import make_client_ca


async def test_digest_shared_credentials(start_acs: Any) -> None:
    acs: Running = await start_acs(cwmp_auth="digest", cwmp_username="cpe", cwmp_password="s3cret")
    async with ScriptedCpe(acs.acs_url) as anonymous:
        status, _ = await anonymous.client.post_raw(b"")
        assert status == 401
    async with ScriptedCpe(acs.acs_url, username="cpe", password="s3cret") as cpe:
        await cpe.inform("0 BOOTSTRAP")
        assert (await cpe.empty()).status == 204
    assert await acs.store.get_device(cpe.device_id) is not None


async def test_digest_wrong_password_never_opens_a_session(start_acs: Any) -> None:
    acs: Running = await start_acs(cwmp_auth="digest", cwmp_username="cpe", cwmp_password="s3cret")
    async with ScriptedCpe(acs.acs_url, username="cpe", password="guess") as cpe:
        with pytest.raises(AcsRefused) as refused:
            await cpe.inform("0 BOOTSTRAP")
    assert refused.value.status == 401
    assert await acs.store.find_devices(None) == []


async def test_basic_auth_and_its_challenge(start_acs: Any) -> None:
    acs: Running = await start_acs(cwmp_auth="basic", cwmp_username="cpe", cwmp_password="pw")
    async with ScriptedCpe(acs.acs_url, username="cpe", password="pw", allow_basic=True) as cpe:
        await cpe.inform("1 BOOT")
        assert (await cpe.empty()).status == 204
    async with ScriptedCpe(acs.acs_url, username="cpe", password="no", allow_basic=True) as bad:
        with pytest.raises(AcsRefused):
            await bad.inform("1 BOOT")


async def bootstrap(url: str, **cpe: Any) -> str:
    """A whole first session of a ScriptedCpe made with `cpe`; returns its device id."""
    async with ScriptedCpe(url, **cpe) as device:
        await device.inform("0 BOOTSTRAP")
        assert (await device.empty()).status == 204
        return device.device_id


async def refusal(url: str, **cpe: Any) -> int:
    """The HTTP status the ACS refuses a ScriptedCpe's Inform with."""
    async with ScriptedCpe(url, **cpe) as device:
        with pytest.raises(AcsRefused) as refused:
            await device.inform("0 BOOTSTRAP")
    return refused.value.status


async def test_per_device_credentials_speak_only_for_their_device(start_acs: Any) -> None:
    acs: Running = await start_acs(
        cwmp_auth="digest", cwmp_credentials={"SN-A": "pw-a", "SN-B": "pw-b"}
    )
    await bootstrap(acs.acs_url, serial="SN-A", username="SN-A", password="pw-a")
    assert await refusal(acs.acs_url, serial="SN-B", username="SN-A", password="pw-a") == 403
    assert [d.serial_number for d in await acs.store.find_devices(None)] == ["SN-A"]


async def test_a_shared_credential_works_beside_per_device_ones(start_acs: Any) -> None:
    acs: Running = await start_acs(
        cwmp_auth="digest",
        cwmp_username="cpe",
        cwmp_password="shared-pw",
        cwmp_credentials={"SN-A": "pw-a"},
    )
    for serial in ("SN-A", "SN-Z"):  # the shared pair speaks for any device
        await bootstrap(acs.acs_url, serial=serial, username="cpe", password="shared-pw")
    assert await refusal(acs.acs_url, serial="SN-B", username="SN-A", password="pw-a") == 403
    assert sorted(d.serial_number for d in await acs.store.find_devices(None)) == ["SN-A", "SN-Z"]


async def test_a_serial_number_username_speaks_for_the_first_device_only(
    start_acs: Any,
) -> None:
    settings = {"cwmp_auth": "digest", "cwmp_credentials": {"SN-A": "pw-a"}}
    acs: Running = await start_acs(**settings)
    owner = {"serial": "SN-A", "username": "SN-A", "password": "pw-a"}
    device_id = await bootstrap(acs.acs_url, **owner)
    assert await bootstrap(acs.acs_url, **owner) == device_id  # the same device again
    # The binding is stored: another ACS process on the database refuses the same serial
    # number under another ProductClass too.
    other: Running = await start_acs(**settings)
    assert await refusal(other.acs_url, **owner, product_class="OtherBox") == 403
    assert [d.id for d in await acs.store.find_devices(None)] == [device_id]


async def test_session_over_https_with_a_certificate_the_lab_ca_signed(
    start_acs: Any, tmp_path: Path
) -> None:
    acs: Running = await start_acs(tls_self_signed=True)
    assert acs.acs_url.startswith("https://127.0.0.1:")
    trust = ssl.create_default_context(cafile=str(tmp_path / "data" / "ca.pem"))
    async with ScriptedCpe(acs.acs_url, ssl_context=trust) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        assert (await cpe.empty()).status == 204
    assert await acs.store.get_device(cpe.device_id) is not None


async def test_client_certificates_are_checked_when_a_client_ca_is_set(
    start_acs: Any, tmp_path: Path
) -> None:
    ca, member, rogue = make_client_ca(tmp_path)
    acs: Running = await start_acs(tls_self_signed=True, tls_client_ca=str(ca))
    trust = str(tmp_path / "data" / "ca.pem")

    insider = ssl.create_default_context(cafile=trust)
    insider.load_cert_chain(*member)
    async with ScriptedCpe(acs.acs_url, ssl_context=insider) as cpe:
        await cpe.inform("0 BOOTSTRAP")
        assert (await cpe.empty()).status == 204

    outsider = ssl.create_default_context(cafile=trust)
    outsider.load_cert_chain(*rogue)
    for context in (ssl.create_default_context(cafile=trust), outsider):
        async with ScriptedCpe(acs.acs_url, serial="NOCERT", ssl_context=context) as cpe:
            with pytest.raises(aiohttp.ClientError):
                await cpe.inform("0 BOOTSTRAP")
    assert await acs.store.get_device("00D09E-ScriptBox-NOCERT") is None
