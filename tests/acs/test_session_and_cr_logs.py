"""`knock serve --log-format json`: a real process, one JSON line per session and per
connection-request attempt, and no secret in any line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from cr_endpoint import CrEndpoint
from scripted_cpe import ScriptedCpe

from knock.nbi.client import NbiClient

MS = "Device.ManagementServer."


async def test_json_lines_for_sessions_and_connection_requests(tmp_path: Path) -> None:
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "knock", "serve",
        "--cwmp-host", "127.0.0.1", "--cwmp-port", "0", "--nbi-port", "0",
        "--store-url", f"sqlite:///{tmp_path / 'knock.db'}", "--data-dir", str(tmp_path),
        "--no-stun-enable", "--no-xmpp-enable", "--no-files-enable", "--cr-provision", "random",
        "--cr-session-wait", "5", "--log-format", "json", "--log-level", "info",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert serve.stdout is not None and serve.stderr is not None
    try:
        acs_url = (await asyncio.wait_for(serve.stdout.readline(), 20)).decode().split()[-1]
        nbi_url = (await asyncio.wait_for(serve.stdout.readline(), 5)).decode().split()[-1]
        endpoint = await CrEndpoint().start()
        async with ScriptedCpe(acs_url) as cpe:
            cpe.params[f"{MS}ConnectionRequestURL"] = (endpoint.url, "xsd:string")
            await cpe.inform("0 BOOTSTRAP", "1 BOOT")
            sent, last = await cpe.accept_provisioning(await cpe.empty())
            assert last.status == 204
            endpoint.username = sent[f"{MS}ConnectionRequestUsername"]
            endpoint.password = sent[f"{MS}ConnectionRequestPassword"]

            async def session() -> None:
                await cpe.inform("6 CONNECTION REQUEST")
                assert (await cpe.empty()).status == 204

            endpoint.on_accepted = session
            async with NbiClient(nbi_url.rstrip("/")) as nbi:
                result = await nbi.connection_request(cpe.device_id, "http", 5)
            assert result["outcome"] == "delivered", result
            await endpoint.close()
    finally:
        serve.terminate()
        _, err = await serve.communicate()
    lines = [json.loads(line) for line in err.decode().splitlines()]
    assert endpoint.password not in err.decode()
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    sessions = [line for line in lines if line.get("event") == "session"]
    assert [(s["device_id"], s["outcome"], s["rpcs"]) for s in sessions] == [
        # Inform, GetParameterValues and SetParameterValues; then the Inform alone.
        (cpe.device_id, "ok", 3),
        (cpe.device_id, "ok", 1),
    ]
    assert all(s["level"] == "info" and s["duration_s"] >= 0 for s in sessions)
    [cr] = [line for line in lines if line.get("event") == "connection-request"]
    expected: dict[str, Any] = {"device_id": cpe.device_id, "method": "http"}
    assert {k: cr[k] for k in expected} == expected
    assert cr["outcome"] == "delivered" and 0 < cr["latency_s"] < 5
    assert cr["logger"] == "knock.connreq" and cr["msg"].startswith(f"device {cpe.device_id}")
