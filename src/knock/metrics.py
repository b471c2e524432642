"""Prometheus metrics of one running ACS, served at the NBI's `/metrics`.

Each `Metrics` has a registry of its own, so that several servers in one process (tests, the
demo) never share counts. The session and connection-request paths increment counters as they
go; the STUN and XMPP servers already count what they see, so their figures are read only when
Prometheus scrapes (`watch_*`), which costs their hot paths nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from knock.listener import Listener
    from knock.stun.service import Counters as StunCounters
    from knock.xmpp.server import Stats as XmppStats

# The *_created series (one more per labelled child) tell a scraper nothing a restart's reset
# does not; process-wide in prometheus_client, and only Knock's metrics live in this process.
disable_created_metrics()  # type: ignore[no-untyped-call]

# What generate_latest writes for Knock's metric names (plain ASCII, so no escaping) is the 0.0.4
# text format every Prometheus reads; newer clients' default header announces 1.0.0.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# From a device woken at once over loopback (a few ms) to the 30 s TR-069 allows.
CR_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric of one server. Labelled children are created on first use and kept by
    prometheus_client, so an increment is a dict look-up and an add."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions_started = Counter(
            "knock_sessions_started", "CWMP sessions opened by an Inform.", registry=r
        )
        self.sessions_ended = Counter(
            "knock_sessions_ended",
            "CWMP sessions ended, by outcome (ok, error, timeout, superseded, aborted).",
            ["outcome"],
            registry=r,
        )
        self.rpcs = Counter(
            "knock_rpcs",
            "CWMP RPCs by name and caller: cpe for the device's requests (Inform, "
            "TransferComplete), acs for those the ACS sends.",
            ["rpc", "caller"],
            registry=r,
        )
        self.faults = Counter(
            "knock_faults",
            "CWMP faults by code and sender: cpe for a device's fault responses, acs for the "
            "faults the ACS answers with.",
            ["code", "sender"],
            registry=r,
        )
        self.cr_attempts = Counter(
            "knock_cr_attempts",
            "Connection-request attempts by method and outcome (delivered only once the Inform "
            "with 6 CONNECTION REQUEST arrived).",
            ["method", "outcome"],
            registry=r,
        )
        self.cr_latency = Histogram(
            "knock_cr_latency_seconds",
            "Seconds from sending a connection request to the device's Inform, delivered ones.",
            ["method"],
            buckets=CR_LATENCY_BUCKETS,
            registry=r,
        )
        self.bad_input = Counter(
            "knock_bad_input_dropped",
            "CWMP requests refused as bad input, by reason: too-large (413), content-type (415), "
            "cwmp-fault (answered with a fault). The STUN and XMPP servers count "
            "theirs in knock_stun_dropped and knock_xmpp_server_*_errors.",
            ["reason"],
            registry=r,
        )

    def watch_sessions(self, in_progress: Callable[[], int]) -> None:
        Gauge(
            "knock_sessions_in_progress", "CWMP sessions open now.", registry=self.registry
        ).set_function(in_progress)

    def watch_stun(
        self,
        counters: StunCounters,
        bindings: Callable[[], int],
        binding_changes: Callable[[], int],
    ) -> None:
        self.registry.register(_StunCollector(counters, bindings, binding_changes))

    def watch_xmpp_server(self, stats: XmppStats) -> None:
        self.registry.register(_XmppServerCollector(stats))

    def watch_listeners(self, listeners: Callable[[], Iterable[Listener]]) -> None:
        self.registry.register(_ListenerCollector(listeners))

    def watch_xmpp_client(self, connected: Callable[[], bool]) -> None:
        Gauge(
            "knock_xmpp_acs_connected",
            "1 while the ACS is logged in to its XMPP server, else 0.",
            registry=self.registry,
        ).set_function(lambda: float(connected()))

    def exposition(self) -> bytes:
        """The text exposition format 0.0.4, as `/metrics` answers."""
        return generate_latest(self.registry)


class _StunCollector(Collector):
    def __init__(
        self,
        counters: StunCounters,
        bindings: Callable[[], int],
        binding_changes: Callable[[], int],
    ) -> None:
        self._counters = counters
        self._bindings = bindings
        self._binding_changes = binding_changes

    def collect(self) -> Iterable[Metric]:
        c = self._counters
        yield GaugeMetricFamily(
            "knock_stun_bindings", "NAT bindings the STUN server knows.", self._bindings()
        )
        yield CounterMetricFamily(
            "knock_stun_requests", "Binding Requests read, whatever the answer.", c.requests
        )
        yield CounterMetricFamily("knock_stun_responses", "Binding Responses sent.", c.responses)
        errors = CounterMetricFamily(
            "knock_stun_error_responses", "Binding Error Responses sent, by code.", labels=["code"]
        )
        for code, n in (
            ("400", c.bad_requests),
            ("401", c.unauthorized),
            ("420", c.unknown_attributes),
            ("500", c.server_errors),
        ):
            errors.add_metric([code], n)
        yield errors
        yield CounterMetricFamily(
            "knock_stun_integrity_failures",
            "Binding Requests whose MESSAGE-INTEGRITY was wrong (each also a 401).",
            c.integrity_failures,
        )
        yield CounterMetricFamily(
            "knock_stun_binding_changes",
            "Binding Requests carrying BINDING-CHANGE (the device saw its binding move).",
            self._binding_changes(),
        )
        yield _by_label(
            "knock_stun_dropped",
            "Datagrams dropped unanswered: malformed (not STUN), ignored (no Binding Request), "
            "withheld (the smallest unsigned answer was larger than the request).",
            "reason",
            {"malformed": c.malformed, "ignored": c.ignored, "withheld": c.withheld},
        )


class _XmppServerCollector(Collector):
    def __init__(self, stats: XmppStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        s = self._stats
        yield GaugeMetricFamily(
            "knock_xmpp_server_connections", "Client connections open now.", s.connections
        )
        yield GaugeMetricFamily(
            "knock_xmpp_server_bound", "Clients logged in with a resource bound now.", s.bound
        )
        yield CounterMetricFamily(
            "knock_xmpp_server_connections_opened",
            "Client connections accepted since start.",
            s.connections_total,
        )
        yield CounterMetricFamily(
            "knock_xmpp_server_stanzas_routed", "Stanzas routed between clients.", s.stanzas_routed
        )
        yield _by_label(
            "knock_xmpp_server_auth_failures",
            "Failed logins, by reason.",
            "reason",
            s.auth_failures,
        )
        yield _by_label(
            "knock_xmpp_server_stream_errors",
            "Stream errors sent (the connection is closed), by condition.",
            "condition",
            s.stream_errors,
        )
        yield _by_label(
            "knock_xmpp_server_stanza_errors",
            "Stanzas answered with an error or dropped, by condition.",
            "condition",
            s.stanza_errors,
        )
        yield CounterMetricFamily(
            "knock_xmpp_server_tls_failures", "TLS handshakes that failed.", s.tls_failures
        )
        yield CounterMetricFamily(
            "knock_xmpp_server_shaped",
            "Times a device connection sent faster than its rate and was not read for a while.",
            s.paused,
        )

        yield _by_label(
            "knock_xmpp_server_tls_refused",
            "TLS handshakes a client aborted over the server's certificate, by the alert it "
            "sent (unknown-ca, bad-certificate, ...): devices that do not trust it.",
            "alert",
            s.tls_refusals,
        )


class _ListenerCollector(Collector):
    def __init__(self, listeners: Callable[[], Iterable[Listener]]) -> None:
        self._listeners = listeners

    def collect(self) -> Iterable[Metric]:
        listeners = list(self._listeners())
        for name, doc, field in (
            ("knock_listen_accepted", "TCP connections accepted, by listener.", "accepted"),
            (
                "knock_listen_shed",
                "Connections closed at once because too few open files were left.",
                "shed",
            ),
            (
                "knock_listen_paused",
                "Times accept() ran out of descriptors or memory and accepting paused.",
                "paused",
            ),
        ):
            yield _by_label(
                name,
                doc,
                "listener",
                {listener.name: getattr(listener.stats, field) for listener in listeners},
            )


def _by_label(name: str, doc: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, n in sorted(counts.items()):
        family.add_metric([str(value)], n)
    return family
