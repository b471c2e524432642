"""XMPP connection requests (TR-069 Annex K) as the ACS sends them: a connectionRequest IQ from
the ACS's own XMPP connection to the device's ConnReqJabberID.

The transport only says whether the device accepted the request; the dispatcher then waits for
the Inform that proves it.

`service-unavailable` means three things. A device answers it to an ACS whose JID is not in its
ConnReqAllowedJabberIDs (refused), or that it rate-limits (rate-limited: told apart by the list
the device reported, when it admits the ACS); a server answers it for a device that is not
online (unreachable). The 'from' of the error does not tell them apart: servers
(Knock's, Prosody, ejabberd) answer on behalf of an offline full JID from that very JID, as
RFC 6120 §8.3.1 has them do. So unless the error names the server ('from' or 'by' is the
domain or the bare JID), the device is asked for an XEP-0199 ping: an offline device gets the
server's service-unavailable again, an online one answers (or refuses pings some other way).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

from lxml import etree

from knock.connreq.http import Sent
from knock.vocab import CrOutcome
from knock.xmpp import ns
from knock.xmpp.client import ClientConfig, IqResult, NotOnline, StanzaError, TlsPolicy
from knock.xmpp.client_conn import ConnectionLost, ConnState, ServerRetry, Status, XmppClient
from knock.xmpp.jid import Jid, JidError, allowed_sender, parse_jid
from knock.xmpp.srv import SYSTEM_RESOLVER, SrvResolver

CONN_REQ_NS: Final = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"
# The ACS is a server-side service: it reconnects sooner than TR-181's CPE defaults (60 s
# doubling up to 8.5 hours) so that connection requests are back within seconds.
ACS_RETRY: Final = ServerRetry(initial_interval=2.0, interval_multiplier=2000, max_interval=60.0)
MISSPELLED_NOT_AUTHORIZED: Final = "not-autorized"


def connection_request(username: str, password: str) -> etree._Element:
    """The connectionRequest payload (cwmp-xmppConnReq-1-0.xsd)."""
    tag = ns.qname(CONN_REQ_NS, "connectionRequest")
    request = etree.Element(tag, nsmap=ns.default(CONN_REQ_NS))
    etree.SubElement(request, ns.qname(CONN_REQ_NS, "username")).text = username
    etree.SubElement(request, ns.qname(CONN_REQ_NS, "password")).text = password
    return request


class XmppConnectionRequester:
    """The ACS's XMPP connection, kept up with back-off, and the requests sent over it."""

    def __init__(
        self,
        jid: str,
        password: str,
        *,
        host: str | None = None,
        port: int | None = None,
        tls: TlsPolicy = TlsPolicy.REQUIRED,
        direct_tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        allow_plain_without_tls: bool = False,
        retry: ServerRetry = ACS_RETRY,
        timeout: float = 10.0,
        resolver: SrvResolver = SYSTEM_RESOLVER,
    ) -> None:
        """*jid*: the ACS's account with its resource (acs@xmpp.example/knock); *host* None:
        the server is found through DNS SRV (`XmppClient`); *timeout*: how long a device has
        to answer a request (and, after a service-unavailable, a ping)."""
        config = ClientConfig(tls=tls, allow_plain_without_tls=allow_plain_without_tls)
        self._outcomes: list[asyncio.Future[Status]] = []
        self._client = XmppClient(
            jid,
            password,
            host=host,
            port=port,
            direct_tls=direct_tls,
            ssl_context=ssl_context,
            config=config,
            retry=retry,
            resolver=resolver,
            on_status=self._on_status,
        )
        self._timeout = timeout

    def start(self) -> None:
        """Connect now (and again whenever the connection drops) until `close`."""
        self._client.start()

    @property
    def connected(self) -> bool:
        return self._client.online

    @property
    def status(self) -> Status:
        return self._client.status

    async def wait_connected(self) -> Status:
        return await self._client.wait_online()

    async def attempt_outcome(self) -> Status:
        """Once online, or when the connection attempt under way (or the next) failed: the
        status, whose reason says why (an `EndReason` first: auth-failed, timeout, ...)."""
        if self.connected:
            return self.status
        outcome: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
        self._outcomes.append(outcome)
        return await outcome

    def _on_status(self, _client: XmppClient, status: Status) -> None:
        if status.state not in (ConnState.ONLINE, ConnState.DISCONNECTED):
            return
        outcomes, self._outcomes = self._outcomes, []
        for outcome in outcomes:
            if not outcome.done():
                outcome.set_result(status)

    async def close(self) -> None:
        await self._client.close()

    async def iq(
        self,
        jid: str,
        content: etree._Element,
        timeout: float | None = None,  # noqa: ASYNC109 (as XmppClient.request's)
    ) -> IqResult:
        """Send an IQ get carrying *content* to *jid* and return the answer as it came, for a
        caller that reads exact conditions (`knock check`). Raises NotOnline, JidError,
        TimeoutError or ConnectionLost."""
        return await self._client.request(
            jid, content, self._timeout if timeout is None else timeout
        )

    async def send(
        self, jid: str, username: str, password: str, allowed: str | None = None
    ) -> Sent:
        """Ask the device at *jid* (its ConnReqJabberID) to open a session. *allowed*: the
        ConnReqAllowedJabberIDs the device reported, None when unknown."""
        try:
            target = parse_jid(jid)
        except JidError as exc:
            return Sent(CrOutcome.REFUSED, f"ConnReqJabberID {jid!r} is not a JID: {exc}")
        if not target.is_full:
            return Sent(
                CrOutcome.UNREACHABLE,
                f"ConnReqJabberID {target} has no resource: the server answers an IQ to a bare "
                "JID itself, never the device (RFC 6120 §10.5.4)",
            )
        answer = await self._ask(target, connection_request(username, password))
        if isinstance(answer, Sent):
            return answer
        if answer.error is None:
            return Sent(None, f"{target} accepted the XMPP connection request")
        return await self._refusal(target, answer, allowed)

    async def _ask(self, target: Jid, content: etree._Element) -> IqResult | Sent:
        try:
            return await self._client.request(str(target), content, self._timeout)
        except NotOnline:
            return Sent(
                CrOutcome.UNREACHABLE,
                f"the ACS's XMPP connection is not up ({self.status.state}: "
                f"{self.status.reason or 'no reason yet'})",
            )
        except TimeoutError:
            return Sent(CrOutcome.TIMEOUT, f"no answer from {target} within {self._timeout} s")
        except ConnectionLost as exc:
            return Sent(
                CrOutcome.UNREACHABLE, f"the ACS's XMPP connection dropped while waiting: {exc}"
            )

    async def _refusal(self, target: Jid, answer: IqResult, allowed: str | None) -> Sent:
        error = answer.error
        assert error is not None
        said = f"{answer.sender or 'the server'} answered {error.describe()}"
        condition = error.condition  # what the device meant counts, even with a bad type
        if condition == "not-authorized":
            return Sent(CrOutcome.BAD_CREDENTIALS, f"{said}: it refused the credentials")
        if condition == MISSPELLED_NOT_AUTHORIZED:
            return Sent(
                CrOutcome.BAD_CREDENTIALS,
                f"{said}: a device defect, the condition is not-authorized (RFC 6120 §8.3.3.10); "
                "taken as a refusal of the credentials",
            )
        if condition == "recipient-unavailable":
            return Sent(CrOutcome.UNREACHABLE, f"{said}: the device is not online")
        if error.type == "wait":  # RFC 6120 §8.3.2: temporary, retry after waiting
            return Sent(CrOutcome.RATE_LIMITED, f"{said}: a temporary refusal")
        if condition != "service-unavailable":
            kind = "an unexpected" if error.well_formed else "a malformed"
            return Sent(CrOutcome.REFUSED, f"{said}: {kind} error")
        if _from_server(answer.sender, error):
            return Sent(CrOutcome.UNREACHABLE, f"{said}: the server says it is not online")
        return await self._probe(target, said, allowed)

    async def _probe(self, target: Jid, said: str, allowed: str | None) -> Sent:
        ping = etree.Element(ns.qname(ns.PING, "ping"), nsmap=ns.default(ns.PING))
        answer = await self._ask(target, ping)
        if isinstance(answer, Sent):
            if answer.outcome is not CrOutcome.TIMEOUT:
                return answer
            online = "a ping reached it and went unanswered"
        elif answer.error is None:
            online = "it answers a ping"
        elif answer.error.condition == "service-unavailable":
            return Sent(
                CrOutcome.UNREACHABLE,
                f"{said}, and to a ping too: it is not online, as the server answers for it "
                "(or it refuses everything from this ACS)",
            )
        else:
            online = f"a ping got {answer.error.describe()}"
        own = self.status.jid
        if allowed is not None and own and allowed_sender(own, allowed):
            return Sent(
                CrOutcome.RATE_LIMITED,
                f"{said}, though it is online ({online}) and its ConnReqAllowedJabberIDs admit "
                f"{own}: it limits connection requests",
            )
        return Sent(
            CrOutcome.REFUSED,
            f"{said}, though it is online ({online}): the ACS's JID is not in its "
            "ConnReqAllowedJabberIDs, or it limits connection requests",
        )


def _from_server(sender: str, error: StanzaError) -> bool:
    """Whether the error names the server (its domain) or the account (a bare JID), rather than
    a full JID, as its source."""
    if not sender:
        return True
    for name in (sender, error.by):
        try:
            if name and not parse_jid(name).is_full:
                return True
        except JidError:
            continue
    return False
