"""Settings for `knock serve`: defaults, then a TOML file, then KNOCK_* variables, then flags.

Every setting has one name used three ways: `cwmp_port` is `port` in the `[cwmp]` table of the
TOML file, `KNOCK_CWMP_PORT` in the environment and `--cwmp-port` on the command line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from knock.connreq.order import MethodOrder
from knock.hosts import PortInUse
from knock.nbi.origin import AllowedHosts
from knock.store.retry import TaskRetry
from knock.xmpp.client import TlsPolicy
from knock.xmpp.jid import JidError, parse_jid

ENV_PREFIX = "KNOCK_"


class ConfigError(ValueError):
    """A setting is unknown or has a value of the wrong kind; the message names it."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class Settings:
    cwmp_host: str = field(
        default="0.0.0.0",
        metadata=_help(
            "Address the CWMP (CPE-facing) listener binds."
            " One address or several, comma-separated; :: alone listens on IPv4 and IPv6."
        ),
    )
    cwmp_port: int = field(default=7547, metadata=_help("Port of the CWMP listener."))
    cwmp_auth: str = field(
        default="none",
        metadata=_help("How CPEs authenticate to the ACS: none, basic or digest."),
    )
    cwmp_username: str = field(default="", metadata=_help("Shared CPE username (basic/digest)."))
    cwmp_password: str = field(default="", metadata=_help("Shared CPE password (basic/digest)."))
    cwmp_credentials: Mapping[str, str] = field(
        default_factory=dict,
        metadata=_help(
            "Per-device credentials (TOML table [cwmp.credentials], username = password); "
            "the username must be the device id or its serial number."
        ),
    )
    cwmp_session_timeout: float = field(
        default=30.0, metadata=_help("Seconds of silence after which a CWMP session is dropped.")
    )
    cwmp_task_attempts: int = field(
        default=3,
        metadata=_help(
            "Sessions a task may run in: when the device's session dies (closed connection, "
            "timeout, a new Inform) while it runs, it is retried until then, then faulted."
        ),
    )
    cwmp_task_retry_delay: float = field(
        default=60.0,
        metadata=_help(
            "Seconds a task waits before its second retry, doubled for each later one (the "
            "first is at once); the device's other tasks run meanwhile."
        ),
    )
    cwmp_max_body: int = field(
        default=2 * 1024 * 1024,
        metadata=_help("Largest SOAP body accepted, in bytes (413 beyond)."),
    )
    cwmp_url: str = field(
        default="",
        metadata=_help("The ACS URL CPEs are told to use; derived from host and port when empty."),
    )
    cr_provision: str = field(
        default="random",
        metadata=_help(
            "Connection-request credentials Knock sets on each device at bootstrap or when "
            "missing: random (per device), fixed (--cr-username/--cr-password) or off."
        ),
    )
    cr_username: str = field(
        default="", metadata=_help("Connection-request username for cr_provision fixed or off.")
    )
    cr_password: str = field(
        default="", metadata=_help("Connection-request password for cr_provision fixed or off.")
    )
    cr_order: str = field(
        default="xmpp,udp,http",
        metadata=_help(
            "Connection-request methods in the order they are tried; others are never used."
        ),
    )
    cr_order_groups: Mapping[str, str] = field(
        default_factory=dict,
        metadata=_help(
            'Per device group (TOML table [cr.order_groups], device-id prefix = "http,udp"): '
            "the order for devices whose id starts with the prefix."
        ),
    )
    cr_allow_basic: bool = field(
        default=False,
        metadata=_help(
            "Answer a device's Basic challenge on connection requests (Digest only by default)."
        ),
    )
    cr_timeout: float = field(
        default=5.0, metadata=_help("Seconds one connection-request attempt may take.")
    )
    cr_session_wait: float = field(
        default=30.0,
        metadata=_help("Seconds to wait for the Inform with 6 CONNECTION REQUEST after a request."),
    )
    cr_rate_limit_pause: float = field(
        default=1.0,
        metadata=_help(
            "Seconds to wait before asking again a device that refused a connection request "
            "as rate-limited without saying how long (an HTTP 503 without Retry-After, an XMPP "
            "service-unavailable from a device whose ConnReqAllowedJabberIDs admit the ACS); it "
            "asks again until cr_session_wait runs out. 0: give up at once."
        ),
    )
    stun_enable: bool = field(
        default=True,
        metadata=_help(
            "Run the STUN server (TR-111) and send UDP connection requests from its socket."
        ),
    )
    stun_host: str = field(
        default="0.0.0.0",
        metadata=_help(
            "Address the STUN server binds."
            " One address or several, comma-separated; :: alone listens on IPv4 and IPv6."
        ),
    )
    stun_port: int = field(default=3478, metadata=_help("UDP port of the STUN server."))
    stun_require_auth: bool = field(
        default=True,
        metadata=_help(
            "Answer 401 to Binding Requests without MESSAGE-INTEGRITY, so that no one can move "
            "another device's binding."
        ),
    )
    stun_advertise: str = field(
        default="",
        metadata=_help("STUNServerAddress set on devices; the ACS URL's host when empty."),
    )
    stun_keepalive_min: int = field(
        default=20, metadata=_help("STUNMinimumKeepAlivePeriod set on devices, seconds.")
    )
    stun_keepalive_max: int = field(
        default=60, metadata=_help("STUNMaximumKeepAlivePeriod set on devices, seconds.")
    )
    udp_cr_repeat: int = field(
        default=3, metadata=_help("Copies of each UDP connection request (UDP may be lost).")
    )
    udp_cr_interval: float = field(
        default=0.2, metadata=_help("Seconds between the copies of a UDP connection request.")
    )
    udp_cr_resend: float = field(
        default=3.0,
        metadata=_help(
            "Seconds after which a UDP connection request that opened no session is sent anew "
            "(a new id and ts), until cr_session_wait runs out: a device drops one its rate "
            "limit refuses without an answer. 0: send once."
        ),
    )
    xmpp_enable: bool = field(
        default=True,
        metadata=_help("Run the built-in XMPP server for XMPP connection requests (Annex K)."),
    )
    xmpp_host: str = field(
        default="0.0.0.0",
        metadata=_help(
            "Address the XMPP server binds."
            " One address or several, comma-separated; :: alone listens on IPv4 and IPv6."
        ),
    )
    xmpp_port: int = field(default=5222, metadata=_help("XMPP client port (STARTTLS offered)."))
    xmpp_tls_port: int = field(
        default=5223, metadata=_help("XMPP direct-TLS port; 0 picks a free one.")
    )
    xmpp_domain: str = field(
        default="knock.lab", metadata=_help("The XMPP domain: JIDs are user@domain.")
    )
    xmpp_lab_plaintext: bool = field(
        default=False,
        metadata=_help(
            "Lab only: accept XMPP logins without TLS and provision devices with UseTLS false, "
            "so their passwords cross the network in clear. Off: TLS is required (STARTTLS or "
            "the direct-TLS port) and devices get UseTLS true."
        ),
    )
    xmpp_tls_cert: str = field(
        default="",
        metadata=_help(
            "PEM certificate chain of the built-in XMPP server, naming xmpp_domain; empty: one "
            "the lab CA in data_dir signs. Re-read on SIGHUP or when the file changes."
        ),
    )
    xmpp_tls_key: str = field(default="", metadata=_help("PEM private key for xmpp_tls_cert."))
    xmpp_allow_plain: bool = field(
        default=False, metadata=_help("Allow SASL PLAIN without TLS (SCRAM-SHA-1 is always on).")
    )
    xmpp_acs_jid: str = field(
        default="",
        metadata=_help(
            "The ACS's account on an external XMPP server (Prosody, ejabberd), user@domain "
            "or user@domain/resource; when set, the built-in server is not started (whatever "
            "xmpp_enable says)."
        ),
    )
    xmpp_acs_password: str = field(default="", metadata=_help("Password of xmpp_acs_jid."))
    xmpp_acs_server: str = field(
        default="",
        metadata=_help(
            "Host of the external XMPP server; empty: the JID domain's DNS SRV records, "
            "or the domain itself."
        ),
    )
    xmpp_acs_port: int = field(
        default=5222,
        metadata=_help("Its port; with no xmpp_acs_server, the port if the domain has no SRV."),
    )
    xmpp_acs_tls: str = field(
        default="required",
        metadata=_help("STARTTLS to the external server: required, if-offered or never."),
    )
    xmpp_acs_ca: str = field(
        default="",
        metadata=_help("PEM CA bundle the external server must chain to; empty: the system's."),
    )
    tls_cert: str = field(default="", metadata=_help("PEM certificate: CWMP is served over HTTPS."))
    tls_key: str = field(default="", metadata=_help("PEM private key for --tls-cert."))
    tls_self_signed: bool = field(
        default=False,
        metadata=_help(
            "Serve CWMP over HTTPS with a certificate the lab CA in data_dir signs (devices "
            "must trust that CA: GET /ca.pem on the NBI)."
        ),
    )
    tls_client_ca: str = field(
        default="", metadata=_help("PEM CA bundle: CPEs must present a certificate it signed.")
    )
    files_enable: bool = field(
        default=True,
        metadata=_help("Run the file server CPEs download stored files from (PUT /files/)."),
    )
    files_host: str = field(
        default="0.0.0.0",
        metadata=_help(
            "Address the file server (CPE-facing) binds."
            " One address or several, comma-separated; :: alone listens on IPv4 and IPv6."
        ),
    )
    files_port: int = field(
        default=7567, metadata=_help("Port of the file server (GenieACS's); 0 picks a free one.")
    )
    files_url: str = field(
        default="",
        metadata=_help(
            "The file server's URL as CPEs reach it, ending in /; derived from the ACS URL's "
            "host and the port when empty."
        ),
    )
    files_dir: str = field(
        default="",
        metadata=_help(
            "Keep stored files' bytes in this directory (one file per upload) instead of the "
            "database; their names and metadata stay in the database. Several processes or "
            "machines must share it. Files stored before it was set are not moved: upload "
            "them again."
        ),
    )
    files_username: str = field(
        default="",
        metadata=_help("With files_password: HTTP Basic on the file server, sent in Download."),
    )
    files_password: str = field(default="", metadata=_help("See files_username."))
    files_device_auth: bool = field(
        default=False,
        metadata=_help(
            "The file server asks each device for its own CWMP credentials, by cwmp_auth's "
            "scheme (Digest or Basic), and Download carries them; instead of files_username."
        ),
    )
    files_tls: bool = field(
        default=False,
        metadata=_help(
            "Serve files over HTTPS with the CWMP port's certificate (tls_cert or "
            "tls_self_signed; tls_client_ca applies too)."
        ),
    )
    files_idle_timeout: float = field(
        default=30.0,
        metadata=_help(
            "Seconds the file server waits for a request's headers (on a new or a keep-alive "
            "connection) or for a client to read what it sends, before dropping the connection."
        ),
    )
    nbi_host: str = field(
        default="127.0.0.1",
        metadata=_help(
            "Address the NBI (REST API) binds."
            " One address or several, comma-separated; :: alone listens on IPv4 and IPv6."
        ),
    )
    nbi_port: int = field(default=7557, metadata=_help("Port of the NBI."))
    nbi_token: str = field(default="", metadata=_help("Bearer token the NBI requires when set."))
    nbi_allowed_hosts: str = field(
        default="",
        metadata=_help(
            "Host names the NBI is reached by besides localhost and IP addresses, "
            "comma-separated (others are refused: DNS rebinding)."
        ),
    )
    nbi_allow_open: bool = field(
        default=False,
        metadata=_help("Let the NBI bind beyond loopback without a token (not recommended)."),
    )
    nbi_query_timeout: float = field(
        default=10.0,
        metadata=_help(
            "Seconds an NBI query may run in the database before it is stopped (answered 503)."
        ),
    )
    nbi_query_slots: int = field(
        default=2,
        metadata=_help(
            "NBI queries run at once, on database connections of their own: CWMP sessions "
            "never wait for them."
        ),
    )
    metrics_port: int = field(
        default=0,
        metadata=_help(
            "Each worker also serves GET /metrics alone on nbi_host at this port plus its "
            "index (worker 0 on the port itself), so Prometheus scrapes every worker; 0: none. "
            "The NBI's own /metrics answers for whichever worker takes the connection."
        ),
    )
    store_url: str = field(
        default="sqlite:///knock.db",
        metadata=_help("Database URL: sqlite:///file.db or postgresql://user:pw@host/db."),
    )
    workers: int = field(
        default=1,
        metadata=_help(
            "ACS processes sharing the CWMP, NBI and STUN ports (SO_REUSEPORT); needs PostgreSQL."
        ),
    )
    data_dir: str = field(
        default=".knock",
        metadata=_help(
            "Folder for generated files: the lab CA (ca.pem) and the certificates it signs."
        ),
    )
    log_level: str = field(default="info", metadata=_help("debug, info, warning or error."))
    log_format: str = field(
        default="text",
        metadata=_help("text, or json: one object a line with ts, level, logger, msg and fields."),
    )
    listen_idle_timeout: float = field(
        default=30.0,
        metadata=_help(
            "HTTP listeners (CWMP, NBI): seconds a connection may go without a complete "
            "request header, from connecting or from the last response (slow headers and idle "
            "keep-alive connections alike); also bounds the TLS handshake."
        ),
    )
    listen_body_timeout: float = field(
        default=60.0,
        metadata=_help("HTTP listeners: seconds a request body may take to arrive (408 beyond)."),
    )
    listen_fd_reserve: int = field(
        default=64,
        metadata=_help(
            "Open files kept free for the store, connection requests and logs: a listener "
            "closes new connections at once beyond the open-files limit less this."
        ),
    )
    xmpp_login_timeout: float = field(
        default=30.0,
        metadata=_help("Seconds an XMPP client has from connecting to a bound resource."),
    )
    xmpp_ping_interval: float = field(
        default=300.0,
        metadata=_help("Seconds of silence after which the XMPP server pings a client."),
    )
    xmpp_ping_timeout: float = field(
        default=60.0,
        metadata=_help("Seconds a pinged XMPP client has to say anything before it is cut off."),
    )
    xmpp_auth_tries_account: int = field(
        default=5,
        metadata=_help(
            "Failed XMPP logins one account may take at once; it regains them over "
            "xmpp_auth_window (then temporary-auth-failure until it does)."
        ),
    )
    xmpp_auth_tries_address: int = field(
        default=20,
        metadata=_help("Failed XMPP logins one source address (IPv6: /64) may make at once."),
    )
    xmpp_auth_window: float = field(
        default=60.0,
        metadata=_help("Seconds over which an account or address regains all its login tries."),
    )
    xmpp_stanza_rate: float = field(
        default=50.0,
        metadata=_help("Stanzas per second one device connection may send (reading pauses)."),
    )
    xmpp_byte_rate: int = field(
        default=65536,
        metadata=_help("Bytes per second one device connection may send (reading pauses)."),
    )
    xmpp_max_sessions: int = field(
        default=4,
        metadata=_help("Connected resources one device account may have at once."),
    )

    def with_updates(self, updates: Mapping[str, Any]) -> Settings:
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in updates.items():
            if name in _GONE:
                raise ConfigError(f"{name} is gone: {_GONE[name]}")
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}; `knock serve --help` lists them")
            clean[name] = _coerce(name, value, type(getattr(self, name)))
        merged = replace(self, **clean)
        merged.validate()
        return merged

    def port_option(self, port: int, transport: str) -> str | None:
        """The command-line option that sets *port* for *transport* ("tcp", "udp"): what to
        change when it is in use; None for a port no setting names (0 picks a free one)."""
        if transport == "udp":
            names = ["stun_port"]
        else:
            names = ["cwmp_port", "nbi_port", "files_port", "xmpp_port", "xmpp_tls_port"]
        for name in names:
            if port and getattr(self, name) == port:
                return "--" + name.replace("_", "-")
        if transport == "tcp" and port in self.metrics_ports():
            return "--metrics-port"
        return None

    def listen_error(self, exc: OSError) -> str:
        """What to tell a person whose listener could not start: a port in use names the
        option that moves it."""
        if isinstance(exc, PortInUse):
            option = self.port_option(exc.port, exc.transport)
            move = f" with {option}" if option else ""
            return (
                f"{exc.strerror} by another program (another knock serve or knock check?): "
                f"stop it or give another port{move}"
            )
        return f"cannot listen: {exc}"

    def metrics_ports(self) -> list[int]:
        """Each worker's own metrics port, by worker index (none when metrics_port is 0)."""
        return [self.metrics_port + i for i in range(self.workers)] if self.metrics_port else []

    def task_retry(self) -> TaskRetry:
        return TaskRetry(self.cwmp_task_attempts, self.cwmp_task_retry_delay)

    def validate(self) -> None:
        if self.cwmp_auth not in ("none", "basic", "digest"):
            raise ConfigError(f"cwmp_auth is {self.cwmp_auth!r}; use none, basic or digest")
        if self.cwmp_auth != "none" and not (self.cwmp_password or self.cwmp_credentials):
            raise ConfigError(
                f"cwmp_auth is {self.cwmp_auth} but no credentials are set: give "
                "--cwmp-username/--cwmp-password or a [cwmp.credentials] table"
            )
        if self.cwmp_password and self.cwmp_username in self.cwmp_credentials:
            raise ConfigError(
                f"cwmp_username {self.cwmp_username!r} is also a per-device username in "
                "[cwmp.credentials]: the shared pair speaks for every device, so give it a name "
                "no device has"
            )
        try:
            MethodOrder.parse(self.cr_order, self.cr_order_groups)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.cr_provision not in ("random", "fixed", "off"):
            raise ConfigError(f"cr_provision is {self.cr_provision!r}; use random, fixed or off")
        if self.cr_provision == "fixed" and not self.cr_password:
            raise ConfigError("cr_provision fixed needs --cr-username and --cr-password")
        try:
            self.task_retry()
        except ValueError as exc:
            raise ConfigError(f"cwmp_{exc}") from None
        if not 0 < self.stun_keepalive_min <= self.stun_keepalive_max:
            raise ConfigError("stun_keepalive_min must be positive and at most stun_keepalive_max")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together: give both or neither")
        if bool(self.xmpp_tls_cert) != bool(self.xmpp_tls_key):
            raise ConfigError("xmpp_tls_cert and xmpp_tls_key go together: give both or neither")
        self._validate_xmpp_acs()
        try:
            AllowedHosts.of(self.nbi_host, self.nbi_allowed_hosts)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not self.nbi_query_timeout > 0:
            raise ConfigError(f"nbi_query_timeout is {self.nbi_query_timeout}; give seconds > 0")
        if self.nbi_query_slots < 1:
            raise ConfigError(f"nbi_query_slots is {self.nbi_query_slots}; give 1 or more")
        if self.workers < 1:
            raise ConfigError(f"workers is {self.workers}; give 1 or more")
        if self.workers > 1 and not self.store_url.startswith(("postgresql", "postgres:")):
            raise ConfigError(
                "SQLite serves one process: --workers needs --store-url postgresql://..."
            )
        if self.files_device_auth and self.cwmp_auth == "none":
            raise ConfigError(
                "files_device_auth asks devices for their CWMP credentials: set cwmp_auth "
                "to digest or basic"
            )
        if self.files_device_auth and self.files_password:
            raise ConfigError("files_device_auth and files_password exclude each other: pick one")
        if self.files_tls and not (self.tls_cert or self.tls_self_signed):
            raise ConfigError(
                "files_tls serves the CWMP certificate: give tls_cert/tls_key or tls_self_signed"
            )
        if self.files_url and not self.files_url.endswith("/"):
            raise ConfigError(f"files_url {self.files_url!r} must end in /")
        shared = [self.cwmp_port, self.nbi_port]
        shared += [self.files_port] if self.files_enable else []
        shared += [self.stun_port] if self.stun_enable else []
        shared += [self.xmpp_port] if self.xmpp_enable else []  # worker 0's, for every client
        if self.workers > 1 and 0 in shared:
            raise ConfigError("--workers needs fixed ports: each worker would pick its own for 0")
        if self.metrics_port and not 0 < self.metrics_port <= 65536 - self.workers:
            raise ConfigError(
                f"metrics_port {self.metrics_port} leaves no room for {self.workers} workers' "
                "ports (it is the first of metrics_port + worker index)"
            )
        if self.metrics_port and {self.cwmp_port, self.nbi_port} & set(self.metrics_ports()):
            raise ConfigError("metrics_port + worker index must not hit cwmp_port or nbi_port")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log_level is {self.log_level!r}; use debug, info, warning or error")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format is {self.log_format!r}; use text or json")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} is {getattr(self, name)}; give a positive number")

    def _validate_xmpp_acs(self) -> None:
        if self.xmpp_acs_tls not in _XMPP_TLS:
            raise ConfigError(
                f"xmpp_acs_tls is {self.xmpp_acs_tls!r}; use {', '.join(sorted(_XMPP_TLS))}"
            )
        if not self.xmpp_acs_jid:
            return
        try:
            jid = parse_jid(self.xmpp_acs_jid)
        except JidError as exc:
            raise ConfigError(f"xmpp_acs_jid {self.xmpp_acs_jid!r}: {exc}") from None
        if not jid.local:
            raise ConfigError(f"xmpp_acs_jid {self.xmpp_acs_jid!r} needs a user: user@domain")
        if not self.xmpp_acs_password:
            raise ConfigError("xmpp_acs_jid needs xmpp_acs_password (KNOCK_XMPP_ACS_PASSWORD)")
        if not 0 < self.xmpp_acs_port < 65536:
            raise ConfigError(f"xmpp_acs_port {self.xmpp_acs_port} is not a TCP port")


_XMPP_TLS = frozenset(policy.value for policy in TlsPolicy)
# Limits that mean nothing at zero or below (docs/security.md lists them all).
_POSITIVE = (
    "listen_idle_timeout",
    "listen_body_timeout",
    "listen_fd_reserve",
    "xmpp_login_timeout",
    "xmpp_ping_interval",
    "xmpp_ping_timeout",
    "xmpp_auth_tries_account",
    "xmpp_auth_tries_address",
    "xmpp_auth_window",
    "xmpp_stanza_rate",
    "xmpp_byte_rate",
    "xmpp_max_sessions",
)

# Settings of earlier versions, and what to write instead.
_GONE = {
    "xmpp_require_tls": "TLS is required by default now; xmpp_lab_plaintext = true turns it off "
    "in a lab",
}


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if kind is str:
        if not isinstance(value, str | int | float):
            raise ConfigError(f"{name} must be a string, not {value!r}")
        return str(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a table of username = password")
    return {str(k): str(v) for k, v in value.items()}


def _flatten_toml(doc: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, table in doc.items():
        if not isinstance(table, Mapping):
            flat[section] = table
            continue
        for key, value in table.items():
            flat[f"{section}_{key}"] = value
    return flat


# Settings that are tables: the TOML file is their only source.
_TABLES = frozenset(f.name for f in fields(Settings) if f.type == "Mapping[str, str]")


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    names = {f.name for f in fields(Settings)}
    found: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in names and name not in _TABLES:
                found[name] = value
    return found


def load_settings(
    config_file: Path | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults < TOML file < KNOCK_* environment < command-line flags (None means not given)."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        try:
            doc = tomllib.loads(config_file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except OSError as exc:  # unreadable: a configuration error, not a listener's
            raise ConfigError(f"config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        merged.update(_flatten_toml(doc))
    merged.update(from_env(os.environ if environ is None else environ))
    merged.update({k: v for k, v in flags.items() if v is not None})
    # Checked once, merged: a file may leave a secret (cwmp_password) to the environment.
    return Settings().with_updates(merged)
