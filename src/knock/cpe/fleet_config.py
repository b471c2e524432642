"""What a fleet of simulated devices is: `knock sim`'s options as one value, checked once in the
parent and sent as JSON to every worker process."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from knock.cpe.cr_listener import check_cr_support
from knock.cpe.cr_rate import DEFAULT_RATE_LIMIT, Busy
from knock.cpe.cr_services import check_support
from knock.cpe.datamodel import ModelError, load_model, template_of
from knock.cpe.defects import Defect
from knock.cpe.quirks import Quirk
from knock.cpe.xmpp_account import ExternalXmpp
from knock.vocab import CrMethod

DEFAULT_START_RATE: Final = 200.0  # devices per second: a fleet boots without flooding the ACS


class FleetError(RuntimeError):
    """A fleet that cannot run as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class FleetConfig:
    acs_url: str
    count: int
    workers: int = 1  # 1: the devices run in the calling process
    serial_prefix: str = "SIM"
    model: str = "tr181"  # a built-in model name or a JSON model file
    state_dir: str = ""  # "": a temporary folder, removed when the fleet stops
    cr_methods: tuple[CrMethod, ...] = (CrMethod.HTTP,)
    periodic_interval: int | None = None  # None: the model's own; 0: no periodic informs
    acs_username: str = ""
    acs_password: str = ""
    cr_busy: Busy = Busy.REFUSE
    cr_rate_limit: float = DEFAULT_RATE_LIMIT
    start_rate: float = DEFAULT_START_RATE
    report_interval: float = 0.5  # seconds between a worker's reports to the parent
    # CA certificates the devices trust besides the system's, for the ACS's HTTPS and the XMPP
    # server (Knock's lab CA, say); "": the system's alone.
    ca_file: str = ""
    # The address the devices' connection-request listeners (HTTP, UDP) bind and report: in a
    # lab, the address of the LAN side, so that what they report is what a NAT would hide.
    cr_host: str = "127.0.0.1"
    defects: tuple[Defect, ...] = ()  # requirements every device breaks on purpose (knock check)
    quirks: tuple[Quirk, ...] = ()  # readings of the spec every device makes, as real stacks do
    # An external XMPP server (HOST:PORT) the devices have accounts on from the start; "": the
    # ACS gives them accounts on its own server.
    xmpp_server: str = ""
    xmpp_domain: str = ""  # "": the host of xmpp_server
    xmpp_password_secret: str = ""
    xmpp_tls: bool = False

    def __repr__(self) -> str:  # the ACS password never reaches a log through a repr
        return f"FleetConfig({self.count} x {self.serial_prefix} -> {self.acs_url})"

    @property
    def cr_text(self) -> str:
        return ",".join(self.cr_methods)

    @property
    def external_xmpp(self) -> ExternalXmpp | None:
        """The external server's settings (validated), or None."""
        if not self.xmpp_server:
            return None
        host, _, port = self.xmpp_server.rpartition(":")
        return ExternalXmpp(
            host.strip("[]"),
            int(port),
            self.xmpp_domain or host.strip("[]"),
            self.xmpp_password_secret,
            self.xmpp_tls,
        )

    def serial(self, number: int) -> str:
        return f"{self.serial_prefix}{number:06d}"

    def slices(self) -> list[range]:
        """The device numbers (from 1) of each worker, as even as they go."""
        size, extra = divmod(self.count, self.workers)
        bounds = [1]
        for index in range(self.workers):
            bounds.append(bounds[-1] + size + (index < extra))
        return [range(low, high) for low, high in itertools.pairwise(bounds)]

    def validate(self) -> None:
        """Raise `FleetError` for options that cannot work, before any device starts."""
        acs = urlsplit(self.acs_url)
        if acs.scheme not in ("http", "https") or not acs.hostname:
            raise FleetError(f"--acs {self.acs_url!r} is not an http(s) URL; give the ACS's URL")
        if self.count < 1:
            raise FleetError(f"--count {self.count}: a fleet needs at least one device")
        if not 1 <= self.workers <= self.count:
            raise FleetError(f"--workers {self.workers}: use 1 to {self.count} worker processes")
        if CrMethod.HTTP not in self.cr_methods:
            # TR-069 §3.2.2: every CPE takes HTTP connection requests; the others come on top.
            raise FleetError("--cr must include http (TR-069 requires it); e.g. --cr http,udp")
        if self.periodic_interval is not None and self.periodic_interval < 0:
            raise FleetError("--periodic-interval must be 0 (off) or a number of seconds")
        if self.start_rate <= 0:
            raise FleetError(f"--start-rate {self.start_rate}: give devices per second, above 0")
        if self.cr_rate_limit < 0:
            raise FleetError("--cr-rate-limit must be 0 (no limit) or a number of seconds")
        if self.report_interval <= 0:
            raise FleetError(f"report_interval {self.report_interval}: give seconds, above 0")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise FleetError(
                f"--ca {self.ca_file}: no such file; give the PEM CA the devices trust (knock "
                "serve's lab CA: its data_dir/ca.pem, or GET /ca.pem on its NBI)"
            )
        self._validate_external_xmpp()
        self._validate_model()

    def _validate_external_xmpp(self) -> None:
        if not self.xmpp_server:
            if self.xmpp_domain or self.xmpp_password_secret:
                raise FleetError(
                    "--xmpp-domain and --xmpp-password-secret go with --xmpp-server HOST:PORT"
                )
            return
        if CrMethod.XMPP not in self.cr_methods:
            raise FleetError("--xmpp-server needs xmpp among --cr; e.g. --cr http,xmpp")
        host, _, port = self.xmpp_server.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise FleetError(
                f"--xmpp-server {self.xmpp_server!r}: give HOST:PORT, e.g. xmpp.example.net:5222"
            )
        if not self.xmpp_password_secret:
            raise FleetError(
                "--xmpp-server needs --xmpp-password-secret (or KNOCK_SIM_XMPP_PASSWORD_SECRET), "
                "the secret the devices' passwords derive from"
            )

    def _validate_model(self) -> None:
        try:
            schema = load_model(self.model)
            check_cr_support(schema)
        except ModelError as exc:
            raise FleetError(f"--model {self.model}: {exc}") from None
        try:
            check_support(schema, self.cr_methods)
        except ModelError as exc:
            raise FleetError(f"--model {self.model} with --cr {self.cr_text}: {exc}") from None
        if self.periodic_interval is None:
            return
        leaves = ["PeriodicInformEnable"]
        if self.periodic_interval:
            leaves.append("PeriodicInformInterval")
        missing = [
            schema.management(leaf)
            for leaf in leaves
            if template_of(schema.management(leaf)) not in schema.params
        ]
        if missing:
            raise FleetError(
                f"--periodic-interval: model {schema.name} lacks {', '.join(missing)}; add "
                "them to the model or leave the option out"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetConfig:
        fields = dict(data)
        fields["cr_methods"] = tuple(CrMethod(m) for m in fields["cr_methods"])
        fields["cr_busy"] = Busy(fields["cr_busy"])
        fields["defects"] = tuple(Defect(d) for d in fields.get("defects", ()))
        fields["quirks"] = tuple(Quirk(q) for q in fields.get("quirks", ()))
        return cls(**fields)
