"""One HTTP connection-request listener for many simulated devices, each at its own URL path.

A fleet of thousands cannot give every device a port: descriptors are limited (LAB-NOTES), so
one listener per process serves them all and tells them apart by a random path, which the
device reports as ManagementServer.ConnectionRequestURL. The decisions are `CrGate`'s; this
module reads requests off the socket, writes the answers, and wakes the device.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from aiohttp import web

from knock.cpe.cr_http import CrDecision, CrGate, CrRequest, DeviceFacts
from knock.cpe.datamodel import ModelError, ModelSchema, template_of
from knock.cpe.defects import Defect
from knock.cpe.device import CpeError, SimulatedCpe
from knock.hosts import authority
from knock.vocab import Event

CR_PARAMETERS = ("ConnectionRequestURL", "ConnectionRequestUsername", "ConnectionRequestPassword")
# An ACS that got its challenge answers it at once; a connection left idle longer only holds a
# descriptor the fleet needs for its devices.
KEEPALIVE_TIMEOUT = 5.0


def check_cr_support(schema: ModelSchema) -> None:
    """Raise `ModelError` unless devices of *schema* can take HTTP connection requests."""
    missing = [
        leaf for leaf in CR_PARAMETERS if template_of(schema.management(leaf)) not in schema.params
    ]
    if missing:
        raise ModelError(
            f"model {schema.name} lacks {', '.join(schema.management(m) for m in missing)}, "
            "which HTTP connection requests need; add them to its ManagementServer object"
        )


class CrListener:
    """Use `start`, then `attach` each device; `close` when done."""

    def __init__(
        self,
        gate: CrGate | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gate = gate or CrGate()
        self._host = host
        self._port = port
        self._clock = clock
        self._devices: dict[str, SimulatedCpe] = {}
        # The device with the CR_URL_ANY_PATH defect answers the paths no device has.
        self._any_path: SimulatedCpe | None = None
        self._runner: web.ServerRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        # The low-level server: every path is a device's, so a router would only add work.
        self._runner = web.ServerRunner(
            web.Server(self._handle), access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{authority(host, port)}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def attach(self, cpe: SimulatedCpe) -> str:
        """Serve *cpe* at a new random path and make it report that URL; returns the URL."""
        if not self.base_url:
            raise RuntimeError("start the listener before attaching devices")
        try:
            check_cr_support(cpe.model.schema)
        except ModelError as exc:
            raise CpeError(f"device {cpe.serial}: {exc}") from None
        path = "/" + secrets.token_urlsafe(18)
        self._devices[path] = cpe
        if Defect.CR_URL_ANY_PATH in cpe.defects:
            self._any_path = cpe
        url = self.base_url + path
        if Defect.HTTPS_CR_URL in cpe.defects:
            url = "https" + url.removeprefix("http")
        cpe.set_fact(cpe.model.schema.management("ConnectionRequestURL"), url)
        return url

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        cpe = self._devices.get(request.rel_url.raw_path, self._any_path)
        decision = self.gate.decide(
            CrRequest(request.method, request.raw_path, request.headers.get("Authorization")),
            None if cpe is None else _facts(cpe),
            self._clock(),
        )
        response = _response(decision)
        # The answer leaves before the session starts, as TR-069 §3.2.2 asks.
        await response.prepare(request)
        await response.write_eof()
        if cpe is not None and decision.answer.opens_session:
            cpe.request_session(Event.CONNECTION_REQUEST)
        return response


def _facts(cpe: SimulatedCpe) -> DeviceFacts:
    # Read at every request: credentials the ACS just set by SetParameterValues apply at once.
    model = cpe.model
    management = model.schema.management
    return DeviceFacts(
        serial=cpe.serial,
        username=model.get(management("ConnectionRequestUsername")),
        password=model.get(management("ConnectionRequestPassword")),
        in_session=cpe.in_session,
        sessions_started=cpe.counts.started,
        defects=cpe.defects,
    )


def _response(decision: CrDecision) -> web.Response:
    response = web.Response(status=decision.status)
    for name, value in decision.headers:
        response.headers.add(name, value)
    if not decision.keep_alive:
        response.force_close()
    return response
