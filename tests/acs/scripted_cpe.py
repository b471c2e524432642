"""A scripted CPE for ACS tests: each test says exactly what the device sends and checks what the
ACS answers, over real sockets, through the same `AcsClient` the simulator uses."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from knock.cpe.acs_client import AcsClient, AcsReply
from knock.cwmp.deviceid import device_key
from knock.cwmp.rpcs import (
    DeviceIdStruct,
    EventStruct,
    GetParameterValues,
    GetParameterValuesResponse,
    Inform,
    InformResponse,
    ParameterValueStruct,
    Rpc,
    SetParameterValues,
    SetParameterValuesResponse,
)

NS_10 = "urn:dslforum-org:cwmp-1-0"
NS_12 = "urn:dslforum-org:cwmp-1-2"


@dataclass
class ScriptedCpe:
    url: str
    serial: str = "SN0001"
    product_class: str = "ScriptBox"
    cwmp_ns: str = NS_10
    username: str = ""
    password: str = ""
    allow_basic: bool = False
    ssl_context: ssl.SSLContext | None = None
    params: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "Device.DeviceInfo.SoftwareVersion": ("1.0.0", "xsd:string"),
            "Device.ManagementServer.ConnectionRequestURL": (
                "http://127.0.0.1:1/cr",
                "xsd:string",
            ),
            "Device.ManagementServer.PeriodicInformInterval": ("300", "xsd:unsignedInt"),
        }
    )
    _client: AcsClient | None = None
    _ids: int = 0

    @property
    def device_id(self) -> str:
        return device_key(self.ident)

    @property
    def ident(self) -> DeviceIdStruct:
        return DeviceIdStruct("Knock", "00D09E", self.product_class, self.serial)

    async def __aenter__(self) -> ScriptedCpe:
        self._client = AcsClient(
            self.url,
            username=self.username,
            password=self.password,
            allow_basic=self.allow_basic,
            ssl_context=self.ssl_context,
        )
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        await self._client.close()

    @property
    def client(self) -> AcsClient:
        assert self._client is not None
        return self._client

    async def inform(self, *events: str) -> AcsReply:
        self.client.new_session()
        inform = Inform(
            device_id=self.ident,
            events=[EventStruct(e) for e in events or ("2 PERIODIC",)],
            max_envelopes=1,
            current_time="2026-11-26T12:00:00Z",
            retry_count=0,
            parameter_list=[ParameterValueStruct(n, v, t) for n, (v, t) in self.params.items()],
        )
        reply = await self.send(inform)
        assert reply.status == 200, reply
        assert reply.envelope is not None and reply.envelope.body == InformResponse(1)
        return reply

    async def send(self, rpc: Rpc | None, id: str | None = None) -> AcsReply:
        self._ids += 1
        return await self.client.send(rpc, cwmp_ns=self.cwmp_ns, id=id or f"cpe-{self._ids}")

    async def empty(self) -> AcsReply:
        return await self.client.send(None, cwmp_ns=self.cwmp_ns)

    async def accept_provisioning(self, reply: AcsReply) -> tuple[dict[str, str], AcsReply]:
        """Play along with the ACS's provisioning: report the ManagementServer values asked for,
        accept what it sets; return the values set and the ACS's next reply."""
        assert reply.envelope is not None, f"expected provisioning, got HTTP {reply.status}"
        read = reply.envelope.body
        assert isinstance(read, GetParameterValues), read
        [prefix] = read.parameter_names
        mine = [
            ParameterValueStruct(n, v, t)
            for n, (v, t) in self.params.items()
            if n.startswith(prefix)
        ]
        reply = await self.answer(reply, GetParameterValuesResponse(mine))
        assert reply.envelope is not None
        write = reply.envelope.body
        assert isinstance(write, SetParameterValues), write
        reply = await self.answer(reply, SetParameterValuesResponse(0))
        return {p.name: p.value for p in write.parameter_list}, reply

    async def answer(self, reply: AcsReply, rpc: Rpc) -> AcsReply:
        """Answer the ACS request carried by `reply`, echoing its ID."""
        assert reply.envelope is not None, f"expected an ACS request, got HTTP {reply.status}"
        return await self.send(rpc, id=reply.envelope.id)
