"""`knock serve`: the store, the CWMP service and the NBI in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from knock.acs.auth import CpeAuthenticator, SharedNonces
from knock.acs.provisioning import (
    Credentials,
    CrPolicy,
    StunOffer,
    XmppAccountOffer,
    XmppOffer,
)
from knock.acs.service import AcsService
from knock.acs.stun_outcomes import StunOutcomes
from knock.acs.stun_passwords import StunPasswords
from knock.acs.xmpp_accounts import put_account, store_lookup
from knock.acs.xmpp_logins import XmppLogins
from knock.certcheck import CertificateError
from knock.config import ConfigError, Settings
from knock.connreq.dispatcher import CrSettings, Dispatcher
from knock.connreq.http import HttpConnectionRequester
from knock.connreq.order import MethodOrder
from knock.connreq.udp_sender import LiveBinding, UdpConnectionRequester
from knock.connreq.xmpp import XmppConnectionRequester
from knock.files.links import FileLinks
from knock.files.server import start_file_server
from knock.hosts import WILDCARDS, authority, dial_host, reachable_hosts, split_hosts
from knock.http_listen import HttpLimits, listeners, serve_app
from knock.labca import LabCa, listen_names
from knock.listener import raise_open_files_limit
from knock.metrics import Metrics
from knock.nbi.app import ConnectionRequest, make_metrics_app, make_nbi_app
from knock.nbi.origin import AllowedHosts
from knock.notify import Hub
from knock.ratelog import RepeatedLog
from knock.store import Store
from knock.store.database import ReadLimits
from knock.store.relay import Relay
from knock.stun.server import StunServer, start_stun_server
from knock.stun.service import BindingLearned, StunSettings
from knock.tlsutil import server_context, trusting
from knock.vocab import NOT_RESENT
from knock.xmpp.c2s import Policy
from knock.xmpp.client import EndReason, TlsPolicy
from knock.xmpp.client_conn import ConnState, Status
from knock.xmpp.jid import Jid, parse_jid
from knock.xmpp.limits import Limits
from knock.xmpp.server import Listen, XmppServer

log = logging.getLogger("knock.serve")

ACS_XMPP_USER = "acs"  # the ACS's own account on the built-in XMPP server


def is_loopback(hosts: str) -> bool:
    """Whether every address of a host option is loopback."""
    return all(_loopback(host) for host in split_hosts(hosts))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lab_names(settings: Settings) -> list[str]:
    """What the lab CA's certificates name: the XMPP domain, the host devices are told to
    reach (the ACS URL's), and every address CWMP and XMPP (and files over HTTPS) listen on."""
    return [
        settings.xmpp_domain,
        _acs_host(settings),
        *listen_names(settings.cwmp_host),
        *listen_names(settings.xmpp_host),
        *(listen_names(settings.files_host) if settings.files_tls else []),
    ]


def _cwmp_pair(settings: Settings) -> tuple[Path, Path] | None:
    if settings.tls_cert:
        return Path(settings.tls_cert), Path(settings.tls_key)
    if not settings.tls_self_signed:
        return None
    folder = Path(settings.data_dir)
    cert, key = folder / "cwmp-cert.pem", folder / "cwmp-key.pem"
    LabCa.ensure(folder).ensure_leaf(cert, key, lab_names(settings))
    return cert, key


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    pair = _cwmp_pair(settings)
    if pair is None:
        if settings.tls_client_ca:
            raise ConfigError(
                "tls_client_ca needs HTTPS: give --tls-cert/--tls-key or --tls-self-signed"
            )
        return None
    client_ca = Path(settings.tls_client_ca) if settings.tls_client_ca else None
    return server_context(*pair, client_ca)


def lab_ca(settings: Settings) -> LabCa | None:
    """The lab CA, when some certificate Knock serves is its own (none given)."""
    own_xmpp = settings.xmpp_enable and not settings.xmpp_acs_jid and not settings.xmpp_tls_cert
    own_cwmp = settings.tls_self_signed and not settings.tls_cert
    return LabCa.ensure(Path(settings.data_dir)) if own_xmpp or own_cwmp else None


def acs_url(settings: Settings, tls: bool, port: int) -> str:
    if settings.cwmp_url:
        return settings.cwmp_url
    host = split_hosts(settings.cwmp_host)[0]
    if host in WILDCARDS:
        host = "127.0.0.1"  # a wildcard, `::` included, serves IPv4 loopback
    return f"{'https' if tls else 'http'}://{authority(host, port)}/"


def check_exposure(settings: Settings) -> list[str]:
    """Refuse an open NBI beyond loopback; return warnings to print loudly."""
    if (
        not is_loopback(settings.nbi_host)
        and not settings.nbi_token
        and not settings.nbi_allow_open
    ):
        raise ConfigError(
            f"the NBI would listen on {settings.nbi_host} with no token: anyone reaching it could "
            "reconfigure every device. Set --nbi-token (or KNOCK_NBI_TOKEN), bind it to 127.0.0.1, "
            "or pass --nbi-allow-open if you really mean it"
        )
    warnings = []
    if settings.cwmp_auth == "none" and not is_loopback(settings.cwmp_host):
        warnings.append(
            f"CWMP listens on {settings.cwmp_host} with authentication OFF: any host that reaches "
            "it can pose as a device. Use --cwmp-auth digest with credentials in production."
        )
    if settings.nbi_allow_open and not settings.nbi_token and not is_loopback(settings.nbi_host):
        warnings.append(f"the NBI listens on {settings.nbi_host} with no token (--nbi-allow-open)")
    return warnings


async def _start_stun(
    settings: Settings, store: Store, accounts: dict[str, str], reuse_port: bool
) -> StunServer:
    pending: set[asyncio.Task[None]] = set()
    outcomes = StunOutcomes(store)

    def record(event: BindingLearned) -> None:
        outcomes.binding(event)
        # Keep-alives that change nothing cost no store write; a new or moved binding does.
        if not (event.changed or event.binding_change_flag):
            return
        host, port = event.address
        seen = datetime.fromtimestamp(event.at, UTC)
        task = asyncio.create_task(store.record_binding(event.username, host, port, seen))
        pending.add(task)
        task.add_done_callback(pending.discard)

    return await start_stun_server(
        settings.stun_host,
        settings.stun_port,
        passwords=StunPasswords(store, accounts).get,
        settings=StunSettings(require_auth=settings.stun_require_auth),
        on_binding=record,
        on_refused=outcomes.refused,
        # Every worker binds the STUN port: a CPE's keep-alives reach one of them, and any of
        # them sends its UDP connection request from the port its NAT binding expects.
        reuse_port=reuse_port,
    )


async def _start_xmpp(settings: Settings, store: Store, logins: XmppLogins) -> XmppServer:
    policy = Policy(
        settings.xmpp_domain,
        require_tls=not settings.xmpp_lab_plaintext,
        allow_plain_without_tls=settings.xmpp_allow_plain,
        login_timeout=settings.xmpp_login_timeout,
        ping_interval=settings.xmpp_ping_interval,
        ping_timeout=settings.xmpp_ping_timeout,
        limits=Limits(
            auth_tries_account=settings.xmpp_auth_tries_account,
            auth_tries_address=settings.xmpp_auth_tries_address,
            auth_window=settings.xmpp_auth_window,
            stanza_rate=settings.xmpp_stanza_rate,
            byte_rate=settings.xmpp_byte_rate,
            max_sessions=settings.xmpp_max_sessions,
            service_accounts=frozenset({ACS_XMPP_USER}),
        ),
    )
    listen = Listen(
        settings.xmpp_host,
        settings.xmpp_port,
        settings.xmpp_tls_port,
        cert=Path(settings.xmpp_tls_cert) if settings.xmpp_tls_cert else None,
        key=Path(settings.xmpp_tls_key) if settings.xmpp_tls_key else None,
        data_dir=Path(settings.data_dir),
        fd_reserve=settings.listen_fd_reserve,
        names=tuple(lab_names(settings)),
    )
    server = XmppServer(policy, store_lookup(store), listen, on_login=logins.event)
    try:
        await server.start()
    except CertificateError as exc:
        raise ConfigError(str(exc)) from None
    return server


def _acs_trust(settings: Settings, ca: LabCa | None) -> ssl.SSLContext:
    """What the ACS's own XMPP client trusts: the system's CAs, the lab CA, and the
    operator's certificate file itself (a private CA's leaf: partial chains are accepted)."""
    operator = Path(settings.xmpp_tls_cert) if settings.xmpp_tls_cert else None
    return trusting(ca.cert_path if ca is not None else None, operator)


async def _acs_xmpp_client(
    settings: Settings, store: Store, port: int, trust: ssl.SSLContext, worker: int
) -> XmppConnectionRequester:
    """The ACS's own connection to the built-in server, as acs@<domain>/knock-<host>-<pid>-<n>:
    one resource per ACS process, all logging in to the one account with the password the first
    process on the database made, so that none locks the others out."""
    password = await store.shared_secret("acs_xmpp_password", lambda: secrets.token_urlsafe(24))
    await put_account(store, ACS_XMPP_USER, password)
    requester = XmppConnectionRequester(
        f"{ACS_XMPP_USER}@{settings.xmpp_domain}/{_process_resource(worker)}",
        password,
        host=dial_host(settings.xmpp_host),
        port=port,
        tls=TlsPolicy.NEVER if settings.xmpp_lab_plaintext else TlsPolicy.REQUIRED,
        ssl_context=trust,
        timeout=settings.cr_timeout,
    )
    await _log_in(requester)
    return requester


def _process_resource(worker: int) -> str:
    """The ACS's XMPP resource: one per process, so that the processes sharing a database (or
    an account on an external server) do not push each other off."""
    return f"knock-{socket.gethostname()}-{os.getpid()}-{worker}"


async def _acs_xmpp_external(settings: Settings, worker: int) -> XmppConnectionRequester:
    """The ACS's connection to an external server (Prosody, ejabberd), as xmpp_acs_jid (with a
    resource of its own per process unless the JID names one). Raises `ConfigError` when the
    server refuses the login: retrying cannot mend that."""
    jid = parse_jid(settings.xmpp_acs_jid)
    full = str(jid) if jid.resource else f"{jid}/{_process_resource(worker)}"
    requester = XmppConnectionRequester(
        full,
        settings.xmpp_acs_password,
        host=settings.xmpp_acs_server or None,
        port=settings.xmpp_acs_port,
        tls=TlsPolicy(settings.xmpp_acs_tls),
        ssl_context=ssl.create_default_context(cafile=settings.xmpp_acs_ca or None),
        timeout=settings.cr_timeout,
    )
    status = await _log_in(requester)
    remedy = _external_remedy(status.reason, jid)
    if remedy:
        await requester.close()
        raise ConfigError(
            f"the ACS cannot log in to its XMPP server as {jid.bare} ({status.reason}): {remedy}"
        )
    return requester


def _external_remedy(reason: str, jid: Jid) -> str:
    """What to change for a login that failed for good (retrying cannot mend it), or ""."""
    if reason.startswith(EndReason.AUTH_FAILED):
        return (
            "check xmpp_acs_jid and xmpp_acs_password, and that the account exists on the "
            f"server (Prosody: prosodyctl register {jid.local} {jid.domain} PASSWORD; "
            f"ejabberd: ejabberdctl register {jid.local} {jid.domain} PASSWORD)"
        )
    if reason.startswith(("TLS failed", EndReason.TLS_UNAVAILABLE)):
        return (
            f"give xmpp_acs_ca the CA that signed the server's certificate for {jid.domain} "
            "(a self-signed one: the certificate itself), or set xmpp_acs_tls to if-offered "
            "or never where the network between them is trusted"
        )
    return ""


async def _log_in(requester: XmppConnectionRequester) -> Status:
    """Start *requester* and wait for its first attempt: the first connection requests should
    not find the ACS still logging in. A server that is down is retried with back-off."""
    requester.start()
    try:
        status = await asyncio.wait_for(requester.attempt_outcome(), 15)
    except TimeoutError:
        status = requester.status
    if status.state is not ConnState.ONLINE:
        log.warning("the ACS is not logged in to its XMPP server yet: %s", status.reason)
    return status


def _live_binding(stun: StunServer) -> LiveBinding:
    def lookup(username: str) -> tuple[str, int] | None:
        binding = stun.bindings.get(username)
        return None if binding is None else binding.address

    return lookup


def _acs_host(settings: Settings) -> str:
    """The host devices reach the ACS at, which by default also serves STUN and XMPP."""
    return urlsplit(acs_url(settings, False, 1)).hostname or ""


def _xmpp_offer(settings: Settings, port: int | None) -> XmppOffer | None:
    if settings.xmpp_acs_jid:
        # An external server: devices' accounts are configured out of band (docs/configuration.md).
        return XmppOffer(str(parse_jid(settings.xmpp_acs_jid).bare))
    if port is None:
        return None
    account = XmppAccountOffer(
        domain=settings.xmpp_domain,
        server_address=_acs_host(settings),
        port=port,
        use_tls=not settings.xmpp_lab_plaintext,
    )
    return XmppOffer(f"{ACS_XMPP_USER}@{settings.xmpp_domain}", account)


def _stun_offer(settings: Settings, stun: StunServer | None) -> StunOffer | None:
    if stun is None:
        return None
    advertised = settings.stun_advertise or _acs_host(settings)
    return StunOffer(
        advertised,
        stun.address[1],
        settings.stun_keepalive_min,
        settings.stun_keepalive_max,
    )


@dataclass
class Running:
    """A started server: its real ports (0 in the settings means any free port)."""

    store: Store
    hub: Hub
    acs: AcsService
    dispatcher: Dispatcher
    cr_http: HttpConnectionRequester
    stun: StunServer | None
    xmpp: XmppServer | None
    xmpp_requester: XmppConnectionRequester | None
    runner_cwmp: web.AppRunner
    runner_nbi: web.AppRunner
    runner_files: web.AppRunner | None
    cwmp_port: int
    nbi_port: int
    acs_url: str
    metrics: Metrics
    xmpp_logins: XmppLogins
    cwmp_tls: ssl.SSLContext | None = None
    ca: LabCa | None = None  # the lab CA, when a certificate served is its own
    files_url: str | None = None  # where CPEs fetch stored files; None: no file server
    relay: Relay | None = None  # announcements to and from other processes on the database
    runner_metrics: web.AppRunner | None = None  # this worker's own /metrics (metrics_port)
    # Connection requests to the devices whose tasks a crash left running (SQLite).
    recovery: asyncio.Task[None] | None = None

    def reload_certificates(self, settings: Settings) -> None:
        """SIGHUP: serve renewed certificate files to new connections; the connections up
        keep theirs, so no device drops."""
        if self.xmpp is not None:
            self.xmpp.reload()
        pair = _cwmp_pair(settings)
        if self.cwmp_tls is not None and pair is not None:
            try:
                self.cwmp_tls.load_cert_chain(*pair)
            except (OSError, ssl.SSLError) as exc:
                log.error("CWMP certificate not reloaded, still serving the previous one: %s", exc)
            else:
                log.info("CWMP certificate reloaded from %s for new connections", pair[0])

    cwmp_sockets: list[socket.socket] = field(default_factory=list)
    nbi_sockets: list[socket.socket] = field(default_factory=list)

    async def close(self) -> None:
        if self.runner_metrics is not None:
            await self.runner_metrics.cleanup()
        # A slow NBI query would hold the NBI's shutdown (it waits for requests in flight).
        self.store.stop_reads()
        if self.recovery is not None:
            self.recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.recovery
        await self.runner_nbi.cleanup()
        if self.runner_files is not None:
            await self.runner_files.cleanup()
        await self.runner_cwmp.cleanup()
        if self.relay is not None:
            await self.relay.close()
        await self.cr_http.close()
        if self.stun is not None:
            await self.stun.close()
        if self.xmpp_requester is not None:
            await self.xmpp_requester.close()
        if self.xmpp is not None:
            await self.xmpp.close()
        await self.xmpp_logins.close()
        await self.store.close()


def _bound_port(runner: web.AppRunner) -> int:
    server = runner.addresses[0]
    return int(server[1])


async def start(
    settings: Settings, connection_request: ConnectionRequest | None = None, worker: int = 0
) -> Running:
    """Start every service. With several workers (knock.workers) every one shares the CWMP, NBI
    and STUN ports (SO_REUSEPORT); the built-in XMPP server runs in worker 0 alone, since a
    connection request must go through the server the device is connected to, and every
    worker's ACS client connects to it."""
    shared_ports = settings.workers > 1
    ca = lab_ca(settings)
    tls = _tls_context(settings)
    # First, so that a refused login stops the start before anything else is open.
    external = await _acs_xmpp_external(settings, worker) if settings.xmpp_acs_jid else None
    store = await Store.open(
        settings.store_url,
        settings.task_retry(),
        ReadLimits(settings.nbi_query_timeout, settings.nbi_query_slots),
        Path(settings.files_dir) if settings.files_dir else None,
    )
    # SQLite serves one process, so tasks it finds running were left by a crash; on PostgreSQL
    # other processes may be running them, and the device's next Inform settles them.
    requeued = (
        await store.recover_after_crash(datetime.now(UTC)) if store.dialect_name == "sqlite" else []
    )
    metrics = Metrics()
    hub = Hub()
    # PostgreSQL may be shared with other processes or machines: their announcements count.
    relay = (
        await Relay.start(settings.store_url, hub) if store.dialect_name == "postgresql" else None
    )
    stun_accounts = await store.stun_passwords()
    stun = (
        await _start_stun(settings, store, stun_accounts, shared_ports)
        if settings.stun_enable
        else None
    )
    builtin = settings.xmpp_enable and external is None
    logins = XmppLogins(store)
    xmpp = await _start_xmpp(settings, store, logins) if builtin and worker == 0 else None
    xmpp_port: int | None = None
    if xmpp is not None:
        xmpp_port = xmpp.port
    elif builtin:
        xmpp_port = settings.xmpp_port
    authenticator = CpeAuthenticator.from_settings(
        settings,
        store.bind_cwmp_user,
        # PostgreSQL may be shared by several processes; SQLite by this one alone.
        await SharedNonces.of(store) if store.dialect_name == "postgresql" else None,
    )
    limits = http_limits(settings)
    runner_files, links = await _start_files(
        settings, store, limits, tls if settings.files_tls else None, authenticator
    )
    acs = AcsService(
        store,
        hub,
        authenticator=authenticator,
        cr_policy=CrPolicy(settings.cr_provision),
        cr_fixed=Credentials(settings.cr_username, settings.cr_password),
        stun_offer=_stun_offer(settings, stun),
        xmpp_offer=_xmpp_offer(settings, xmpp_port),
        stun_accounts=stun_accounts,
        session_timeout=settings.cwmp_session_timeout,
        max_body=settings.cwmp_max_body,
        metrics=metrics,
        seen_at=logins.seen_at if xmpp is not None else None,
        file_links=links,
    )
    xmpp_requester = external
    if xmpp_port is not None:
        trust = _acs_trust(settings, ca)
        if xmpp is not None:
            # A renewed operator certificate is one more the ACS's own client must accept.
            xmpp.on_certificate = lambda path: trust.load_verify_locations(cafile=str(path))
        xmpp_requester = await _acs_xmpp_client(settings, store, xmpp_port, trust, worker)
    _watch(metrics, acs, stun, xmpp, xmpp_requester)
    cr_http = HttpConnectionRequester(
        allow_basic=settings.cr_allow_basic, timeout=settings.cr_timeout
    )
    # With the random policy every device gets its own pair; otherwise the configured pair is
    # what a device holds until (or instead of) Knock setting it.
    shared = settings.cr_provision != "random" and bool(settings.cr_password)
    dispatcher = Dispatcher(
        store,
        hub,
        cr_http,
        CrSettings(
            session_wait=settings.cr_session_wait,
            rate_limit_pause=settings.cr_rate_limit_pause,
            udp_resend=settings.udp_cr_resend,
            order=MethodOrder.parse(settings.cr_order, settings.cr_order_groups),
            username=settings.cr_username if shared else None,
            password=settings.cr_password if shared else None,
        ),
        udp=None
        if stun is None
        else UdpConnectionRequester(
            stun.send_to,
            _live_binding(stun),
            repeat=settings.udp_cr_repeat,
            interval=settings.udp_cr_interval,
        ),
        xmpp=xmpp_requester,
        in_session=acs.in_session,
        metrics=metrics,
    )
    runner_cwmp = await serve_app(
        acs.app(),
        "CWMP",
        settings.cwmp_host,
        settings.cwmp_port,
        limits,
        ssl_context=tls,
        reuse_port=shared_ports,
    )
    nbi = make_nbi_app(
        store,
        hub,
        token=settings.nbi_token or None,
        connection_request=connection_request or dispatcher.nbi_hook,
        reach=dispatcher.reach,
        metrics=metrics,
        allowed_hosts=AllowedHosts.of(settings.nbi_host, settings.nbi_allowed_hosts),
        ca_pem=ca.pem if ca is not None else None,
    )
    runner_nbi = await serve_app(
        nbi, "NBI", settings.nbi_host, settings.nbi_port, limits, reuse_port=shared_ports
    )
    runner_metrics = await _start_metrics(settings, metrics, worker, limits)
    cwmp_port = _bound_port(runner_cwmp)
    metrics.watch_listeners(
        lambda: [
            *listeners(runner_cwmp),
            *listeners(runner_nbi),
            *(listeners(runner_files) if runner_files is not None else []),
            *(xmpp.listeners if xmpp is not None else []),
        ]
    )
    recovery = asyncio.create_task(_reach_requeued(dispatcher, requeued)) if requeued else None
    return Running(
        store=store,
        hub=hub,
        acs=acs,
        dispatcher=dispatcher,
        cr_http=cr_http,
        stun=stun,
        xmpp=xmpp,
        xmpp_requester=xmpp_requester,
        runner_cwmp=runner_cwmp,
        runner_nbi=runner_nbi,
        runner_files=runner_files,
        cwmp_port=cwmp_port,
        nbi_port=_bound_port(runner_nbi),
        acs_url=acs_url(settings, tls is not None, cwmp_port),
        metrics=metrics,
        xmpp_logins=logins,
        cwmp_tls=tls,
        ca=ca,
        files_url=None if links is None else links.base_url,
        relay=relay,
        recovery=recovery,
        cwmp_sockets=[s for site in listeners(runner_cwmp) for s in site.sockets],
        nbi_sockets=[s for site in listeners(runner_nbi) for s in site.sockets],
        runner_metrics=runner_metrics,
    )


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        idle_timeout=settings.listen_idle_timeout,
        body_timeout=settings.listen_body_timeout,
        fd_reserve=settings.listen_fd_reserve,
    )


async def _reach_requeued(dispatcher: Dispatcher, device_ids: list[str]) -> None:
    """The tasks a crash left running are queued again: ask their devices for a session, as the
    NBI did (or would have) when they were posted."""
    log.warning(
        "%d devices had tasks running when the last process stopped without ending their "
        "sessions; their tasks are queued again, the crash counting as an attempt (%s end "
        "'unknown' instead), and a connection request goes to each",
        len(device_ids),
        ", ".join(sorted(NOT_RESENT)),
    )
    for result in await dispatcher.reach_many(device_ids):
        if not result.delivered:
            log.warning(
                "device %s: the connection request for its requeued tasks failed (%s: %s); "
                "they run at its next session",
                result.device_id,
                result.outcome.value,
                result.detail,
            )


async def _start_files(
    settings: Settings,
    store: Store,
    limits: HttpLimits,
    tls: ssl.SSLContext | None,
    cwmp_auth: CpeAuthenticator,
) -> tuple[web.AppRunner | None, FileLinks | None]:
    """The file server CPEs download stored files from, and how download tasks link to it:
    on the listen limits (its own idle timeout), over HTTPS with the CWMP certificate when
    *tls*, asking each device for its CWMP pair (files_device_auth) or for a shared Basic pair."""
    if not settings.files_enable:
        return None, None
    guard: CpeAuthenticator | None = None
    if settings.files_device_auth:
        guard = cwmp_auth
    elif settings.files_password:
        guard = CpeAuthenticator("basic", {settings.files_username: settings.files_password})
    runner = await start_file_server(
        store,
        settings.files_host,
        settings.files_port,
        replace(limits, idle_timeout=settings.files_idle_timeout),
        guard=None if guard is None else guard.check,
        ssl_context=tls,
        reuse_port=settings.workers > 1,
    )
    base = settings.files_url
    if not base:
        host = split_hosts(settings.files_host)[0]
        if host in WILDCARDS:
            host = _acs_host(settings)
        scheme = "https" if tls is not None else "http"
        base = f"{scheme}://{authority(host, _bound_port(runner))}/"
    links = FileLinks(
        base, settings.files_username, settings.files_password, settings.files_device_auth
    )
    return runner, links


async def _start_metrics(
    settings: Settings, metrics: Metrics, worker: int, limits: HttpLimits
) -> web.AppRunner | None:
    """This worker's own /metrics listener, on a port no other worker shares."""
    if not settings.metrics_port:
        return None
    app = make_metrics_app(
        metrics,
        token=settings.nbi_token or None,
        allowed_hosts=AllowedHosts.of(settings.nbi_host, settings.nbi_allowed_hosts),
    )
    port = settings.metrics_ports()[worker]
    return await serve_app(app, f"metrics-{worker}", settings.nbi_host, port, limits)


def _watch(
    metrics: Metrics,
    acs: AcsService,
    stun: StunServer | None,
    xmpp: XmppServer | None,
    xmpp_requester: XmppConnectionRequester | None,
) -> None:
    """Let the metrics read the counts the services keep anyway, when scraped."""
    metrics.watch_sessions(lambda: acs.live_sessions)
    if stun is not None:
        metrics.watch_stun(stun.counters, lambda: len(stun.bindings), lambda: stun.binding_changes)
    if xmpp is not None:
        metrics.watch_xmpp_server(xmpp.stats)
    if xmpp_requester is not None:
        metrics.watch_xmpp_client(lambda: xmpp_requester.connected)


def serve(settings: Settings) -> None:
    """`knock serve` until SIGINT or SIGTERM: in this process, or in `settings.workers`."""
    if settings.workers == 1:
        asyncio.run(serve_forever(settings))
    else:
        from knock.workers import supervise

        supervise(settings)


async def serve_forever(
    settings: Settings,
    announce: bool = True,
    worker: int = 0,
    ready: Callable[[], None] | None = None,
) -> None:
    before, after = raise_open_files_limit()
    _quiet_loop_errors(asyncio.get_running_loop())
    running = await start(settings, worker=worker)
    if after > before:
        log.info("open-files limit raised from %d to %d (the hard limit)", before, after)
    if announce:
        _banner(settings, running, before, after)
    if ready is not None:
        ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, running.reload_certificates, settings)
    try:
        await stop.wait()
    finally:
        await running.close()


def _quiet_loop_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Errors the event loop reports (a transport that failed, a callback that raised) are
    logged once per interval per kind with a count: a storm of them must not fill the log."""
    by_kind: dict[str, RepeatedLog] = {}

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        message = str(context.get("message", "event loop error"))
        kind = by_kind.get(message)
        if kind is None:
            if len(by_kind) >= 100:  # messages that vary (they name objects): one line each
                by_kind.clear()
            kind = by_kind[message] = RepeatedLog(logging.getLogger("knock.loop"), message)
        exc = context.get("exception")
        error = exc if isinstance(exc, BaseException) else None
        kind.hit(repr(error) if error else "", exc_info=error)

    loop.set_exception_handler(handler)


def _banner(settings: Settings, running: Running, files_before: int, files_after: int) -> None:
    """What `knock serve` prints once listening: the ACS URL first and last on its line (tools
    read it there), then every other URL a CPE can use, IPv6 literals in brackets; the open-files
    line last (tools read the lines before it by position)."""
    scheme = urlsplit(running.acs_url).scheme
    print(f"Knock ACS: point CPEs at {running.acs_url}", flush=True)
    others = [
        url
        for host in reachable_hosts(running.cwmp_sockets)
        if (url := f"{scheme}://{authority(host, running.cwmp_port)}/") != running.acs_url
    ]
    if others and not settings.cwmp_url:
        print(f"  also at {' '.join(others)}", flush=True)
    # The NBI is the operator's: its loopback address where it has one.
    nbi = reachable_hosts(running.nbi_sockets)
    local = next((host for host in nbi if _loopback(host)), nbi[0])
    nbi_url = f"http://{authority(local, running.nbi_port)}/"
    print(f"NBI: {nbi_url}", flush=True)
    if running.files_url is not None:
        print(f"Files: {running.files_url}", flush=True)
    for index, metrics_port in enumerate(settings.metrics_ports()):
        print(
            f"Metrics of worker {index}: http://{authority(local, metrics_port)}/metrics",
            flush=True,
        )
    if running.stun is not None:
        print(f"STUN (TR-111): udp {_listening(running.stun.sockets)}", flush=True)
    if running.xmpp is not None:
        print(
            f"XMPP ({settings.xmpp_domain}): tcp {_listening(running.xmpp.sockets)}, "
            f"direct TLS {running.xmpp.tls_port}",
            flush=True,
        )
        if settings.xmpp_lab_plaintext:
            print("XMPP: TLS not required (xmpp_lab_plaintext): lab use only", flush=True)
    elif running.xmpp_requester is not None:
        status = running.xmpp_requester.status
        print(
            f"XMPP: external server, the ACS is {status.jid or settings.xmpp_acs_jid} "
            f"({status.state})",
            flush=True,
        )
    if running.ca is not None:
        print(
            f"Lab CA (install it on devices so they accept Knock's certificates): "
            f"{running.ca.cert_path.resolve()}, also GET {nbi_url}ca.pem",
            flush=True,
        )
    if files_after > files_before:
        print(
            f"Open files: limit raised from {files_before} to {files_after} (the hard limit)",
            flush=True,
        )
    else:
        print(f"Open files: limit {files_after}", flush=True)


def _listening(sockets: list[socket.socket]) -> str:
    """The bound addresses, as "0.0.0.0:3478, [::]:3478"."""
    return ", ".join(authority(*sock.getsockname()[:2]) for sock in sockets)
