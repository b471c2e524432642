"""The northbound REST API, shaped like GenieACS's NBI so that scripts written for it carry over."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from knock.connreq.dispatcher import CrResult
from knock.metrics import CONTENT_TYPE, Metrics
from knock.nbi.dashboard import add_dashboard
from knock.nbi.documents import cr_result_document, device_document, parameters_to_fetch
from knock.nbi.errors import ApiError
from knock.nbi.openapi import OPENAPI
from knock.nbi.origin import AllowedHosts, origin_guard
from knock.nbi.query import (
    QueryError,
    device_filter,
    device_order,
    parse_projection,
    parse_task_id,
    task_filter,
)
from knock.nbi.tasks import TaskError, parse_task, task_document
from knock.notify import Announcement, Arrival, Hub, Subscription, TaskFinished
from knock.store import Store
from knock.store.rows import TaskRow
from knock.vocab import CrMethod, TaskStatus

log = logging.getLogger(__name__)

ConnectionRequest = Callable[[str, float], Awaitable[str | None]]
"""Asks a device to open a session: (device id, seconds allowed) -> None once delivered, else
why not, e.g. "bad-credentials: 401 twice"."""

Reach = Callable[[str, float, CrMethod | None], Awaitable[CrResult]]
"""Knock's own connection request: (device id, seconds allowed, method or None for the device's
order) -> the outcome with its latency and every attempt."""

MAX_BODY = 1 << 20
DEFAULT_TIMEOUT_MS = 3000  # GenieACS's default wait for a task
CR_TIMEOUT_MS = 30_000  # TR-069 gives a device 30 s to start its session
MAX_TIMEOUT_MS = 600_000
_MAX_PAGE = 10**9
NOT_PROCESSED = "Task queued but not processed"
FAULTED = "Task faulted"

_A = TypeVar("_A", Arrival, TaskFinished)


def make_nbi_app(
    store: Store,
    hub: Hub,
    *,
    token: str | None = None,
    connection_request: ConnectionRequest | None = None,
    reach: Reach | None = None,
    metrics: Metrics | None = None,
    allowed_hosts: AllowedHosts | None = None,
) -> web.Application:
    """The NBI. With `token`, every request must carry `Authorization: Bearer <token>`.
    Without `connection_request`, ?connection_request only waits for the device's next session.
    Requests must name one of `allowed_hosts` (default: loopback's) or an IP address as their
    Host, and browsers may change nothing from another site's page (knock.nbi.origin)."""
    public: set[web.AbstractResource] = set()  # the dashboard's pages: they hold no data
    guard = origin_guard(allowed_hosts or AllowedHosts.of())
    app = web.Application(
        client_max_size=MAX_BODY, middlewares=[_json_errors, guard, _auth(token, public)]
    )
    nbi = _Nbi(store, hub, connection_request, reach)
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/devices", nbi.list_devices),
        ("DELETE", "/devices/{device_id}", nbi.delete_device),
        ("POST", "/devices/{device_id}/tasks", nbi.post_task),
        ("POST", "/devices/{device_id}/connection-request", nbi.post_connection_request),
        ("GET", "/tasks", nbi.list_tasks),
        ("DELETE", "/tasks/{task_id}", nbi.delete_task),
    ]
    for method, path, handler in routes:
        # GenieACS answers with and without the trailing slash; scripts use both.
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)
    app.router.add_get("/openapi.json", _openapi)
    if metrics is not None:
        app.router.add_get("/metrics", _metrics_handler(metrics))
    public.update(add_dashboard(app, store))
    return app


def make_metrics_app(
    metrics: Metrics, *, token: str | None = None, allowed_hosts: AllowedHosts | None = None
) -> web.Application:
    """One worker's own listener with /metrics alone (settings.metrics_port), guarded like the
    NBI: the same token and Host names."""
    guard = origin_guard(allowed_hosts or AllowedHosts.of())
    app = web.Application(middlewares=[_json_errors, guard, _auth(token, set())])
    app.router.add_get("/metrics", _metrics_handler(metrics))
    return app


def _metrics_handler(metrics: Metrics) -> Handler:
    """Prometheus's scrape; behind the NBI token like every route (a scrape config sends it
    with `authorization: {credentials: ...}`), since the counts show the fleet's activity."""

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    return scrape


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def _error(
    status: int, message: str, *, reason: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": message}, status=status, reason=reason, headers=headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.message, reason=exc.reason, headers=exc.headers)
    except (QueryError, TaskError) as exc:
        return _error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = exc.headers.get("Allow")
        return _error(exc.status, _hint(request, exc), headers={"Allow": allow} if allow else None)
    except Exception:
        log.exception("NBI %s %s failed", request.method, request.path)
        return _error(500, "internal error; the knock log has the details")


def _hint(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no route {request.method} {request.path}; GET /openapi.json lists the routes"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"{request.method} is not allowed on {request.path}; use {allowed}"
    if exc.status == 413:
        return f"the request body is over {MAX_BODY} bytes; send a smaller task"
    return exc.reason


def _auth(token: str | None, public: set[web.AbstractResource]) -> Middleware:
    expected = (token or "").encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.match_info.route.resource not in public:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            valid = hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected)
            if scheme.lower() != "bearer" or not valid:
                raise ApiError(
                    401,
                    "missing or wrong token: send 'Authorization: Bearer <token>' with the token "
                    "the NBI was started with (knock CLI: --token or KNOCK_NBI_TOKEN)",
                    headers={"WWW-Authenticate": 'Bearer realm="knock-nbi"'},
                )
        return await handler(request)

    return check


def _load_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"{what} is not valid JSON: {exc}") from exc


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _json_param(request: web.Request, name: str) -> Any:
    text = request.query.get(name)
    return _load_json(text, f"the {name} parameter (URL-encoded JSON)") if text else None


def _int_param(request: web.Request, name: str, maximum: int) -> int | None:
    text = request.query.get(name)
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > maximum:
        raise ApiError(400, f"{name} is a whole number from 0 to {maximum}, not {text!r}")
    return int(text)


def _phrase(text: str) -> str:
    """Text fit for an HTTP reason phrase: one line, and ASCII to be safe with any client."""
    return " ".join(text.split()).encode("ascii", "replace").decode()[:200]


def _now() -> datetime:
    return datetime.now(UTC)


async def _next(
    sub: Subscription,
    kind: type[_A],
    deadline: float,
    match: Callable[[_A], bool] = lambda _: True,
) -> _A | None:
    """The next announcement of `kind` that matches, or None once `deadline` has passed."""
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                item: Announcement = await sub.next()
                if isinstance(item, kind) and match(item):
                    return item
    except TimeoutError:
        return None


class _Nbi:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        connection_request: ConnectionRequest | None,
        reach: Reach | None,
    ):
        self.store = store
        self.hub = hub
        self.connection_request = connection_request
        self.reach = reach

    async def post_connection_request(self, request: web.Request) -> web.Response:
        """Knock's own: send a connection request now and report how it went."""
        device_id = request.match_info["device_id"]
        if self.reach is None:
            raise ApiError(501, "this NBI has no connection-request dispatcher")
        if await self.store.get_device(device_id) is None:
            raise self._no_device(device_id)
        via_text = request.query.get("via")
        try:
            via = CrMethod(via_text) if via_text else None
        except ValueError:
            methods = ", ".join(m.value for m in CrMethod)
            raise ApiError(400, f"via is one of {methods}, not {via_text!r}") from None
        timeout_ms = _int_param(request, "timeout", MAX_TIMEOUT_MS) or CR_TIMEOUT_MS
        result = await self.reach(device_id, timeout_ms / 1000, via)
        return web.json_response(
            cr_result_document(result), status=200 if result.delivered else 502
        )

    async def list_devices(self, request: web.Request) -> web.Response:
        where = device_filter(_json_param(request, "query"))
        order = device_order(_json_param(request, "sort"))
        projection = parse_projection(request.query.get("projection"))
        skip = _int_param(request, "skip", _MAX_PAGE) or 0
        limit = _int_param(request, "limit", _MAX_PAGE)
        rows = await self.store.find_devices(where, order, skip, limit)
        prefixes = parameters_to_fetch(projection)
        params = {}
        if rows and prefixes is not None:
            params = await self.store.get_parameters([row.id for row in rows], prefixes)
        return web.json_response(
            [device_document(row, params.get(row.id, []), projection) for row in rows]
        )

    async def delete_device(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        if not await self.store.delete_device(device_id):
            raise self._no_device(device_id)
        return web.json_response({"deleted": device_id})

    async def list_tasks(self, request: web.Request) -> web.Response:
        where = task_filter(_json_param(request, "query"))
        skip = _int_param(request, "skip", _MAX_PAGE) or 0
        limit = _int_param(request, "limit", _MAX_PAGE)
        rows = await self.store.find_tasks(where, skip, limit)
        return web.json_response([task_document(row) for row in rows])

    async def delete_task(self, request: web.Request) -> web.Response:
        text = request.match_info["task_id"]
        task_id = parse_task_id(text)
        if task_id is None or not await self.store.delete_task(task_id):
            raise ApiError(404, f"no task {text!r}; GET /tasks/ lists the tasks and their ids")
        return web.json_response({"deleted": text})

    async def post_task(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        if await self.store.get_device(device_id) is None:
            raise self._no_device(device_id)
        body = await request.read()
        wait = "connection_request" in request.query
        timeout_ms = _int_param(request, "timeout", MAX_TIMEOUT_MS)
        if timeout_ms is None:
            timeout_ms = DEFAULT_TIMEOUT_MS
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        if not body.strip():
            if not wait:
                raise ApiError(
                    400,
                    'the body is empty: post a task such as {"name": "reboot"}, or add '
                    "?connection_request to only ask the device to open a session",
                )
            return await self._wake(device_id, deadline, timeout_ms)
        spec = parse_task(_load_json(body, "the task"))
        if not wait:
            row = await self.store.add_task(device_id, spec["name"], spec, _now())
            return _task_response(row, 202, NOT_PROCESSED)
        # Subscribed before the task exists: a device that runs it at once is not missed.
        with self.hub.subscribe(device_id) as sub:
            row = await self.store.add_task(device_id, spec["name"], spec, _now())
            failure = await self._connect(device_id, deadline)
            if failure is not None:
                return web.json_response(
                    {"task": task_document(row), "connectionRequestError": failure},
                    status=202,
                    reason=_phrase(failure),
                )
            finished = await _next(sub, TaskFinished, deadline, lambda f: f.task_id == row.id)
        if finished is None:
            return _task_response(await self.store.get_task(row.id) or row, 202, NOT_PROCESSED)
        final = await self.store.get_task(row.id) or replace(row, status=finished.status)
        if final.status == TaskStatus.FAULTED:
            # GenieACS's answer too: scripts take 200 to mean the task succeeded.
            return _task_response(final, 202, FAULTED)
        return _task_response(final, 200, None)

    async def _wake(self, device_id: str, deadline: float, timeout_ms: int) -> web.Response:
        """GenieACS's empty-body POST: only make the device open a session."""
        with self.hub.subscribe(device_id) as sub:
            failure = await self._connect(device_id, deadline)
            if failure is not None:
                raise ApiError(
                    504,
                    f"the connection request to {device_id} failed: {failure}",
                    reason=_phrase(failure),
                )
            arrival = await _next(sub, Arrival, deadline)
        if arrival is None:
            raise ApiError(
                504,
                f"{device_id} opened no session within {timeout_ms} ms; check that it is online "
                "and reachable, or allow longer with ?timeout=<ms>",
            )
        return web.json_response({"device": device_id, "events": list(arrival.events)})

    async def _connect(self, device_id: str, deadline: float) -> str | None:
        if self.connection_request is None:
            return None
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        return await self.connection_request(device_id, remaining)

    @staticmethod
    def _no_device(device_id: str) -> ApiError:
        return ApiError(
            404,
            f"no device {device_id!r}; GET /devices/ lists them (in a URL path the id is "
            "percent-encoded once, e.g. with encodeURIComponent)",
        )


def _task_response(row: TaskRow, status: int, reason: str | None) -> web.Response:
    return web.json_response(task_document(row), status=status, reason=reason)
