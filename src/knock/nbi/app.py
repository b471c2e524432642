"""The northbound REST API, shaped like GenieACS's NBI so that scripts written for it carry over."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from knock.connreq.dispatcher import CrResult
from knock.files.links import stored_file_name
from knock.metrics import CONTENT_TYPE, Metrics
from knock.nbi.dashboard import add_dashboard
from knock.nbi.documents import (
    cr_result_document,
    device_document,
    parameters_to_fetch,
    selects,
)
from knock.nbi.errors import ApiError
from knock.nbi.faults import fault_document
from knock.nbi.files import check_file_name, file_document, file_meta
from knock.nbi.openapi import OPENAPI
from knock.nbi.origin import AllowedHosts, origin_guard
from knock.nbi.presets import (
    PROVISIONS_NOT_SUPPORTED,
    check_preset_name,
    check_tag,
    parse_preset,
)
from knock.nbi.query import (
    QueryError,
    check_text,
    device_filter,
    device_order,
    fault_filter,
    file_filter,
    parse_fault_id,
    parse_projection,
    parse_task_id,
    preset_filter,
    task_filter,
)
from knock.nbi.tasks import TaskError, parse_task, task_document
from knock.notify import Announcement, Arrival, Hub, Subscription, TaskFinished
from knock.store import Store
from knock.store.errors import IdempotencyKeyReusedError, QueryTimeoutError, ReadsStoppedError
from knock.store.files import MAX_FILE_SIZE, FileTooLarge
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
UPLOAD_IDLE_S = 30.0  # an upload that sends nothing for this long is dropped
DEFAULT_TIMEOUT_MS = 4000  # GenieACS's default wait for a task
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
    ca_pem: bytes | None = None,
) -> web.Application:
    """The NBI. With `token`, every request must carry `Authorization: Bearer <token>`.
    Without `connection_request`, ?connection_request only waits for the device's next session.
    Requests must name one of `allowed_hosts` (default: loopback's) or an IP address as their
    Host, and browsers may change nothing from another site's page (knock.nbi.origin).
    `ca_pem`, the lab CA's certificate, is served to anyone at /ca.pem: devices must trust it,
    and it is no secret."""
    public: set[web.AbstractResource] = set()  # the dashboard's pages: they hold no data
    guard = origin_guard(allowed_hosts or AllowedHosts.of())
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[_json_errors, guard, _auth(token, public), _text_in_path],
    )
    nbi = _Nbi(store, hub, connection_request, reach)
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/devices", nbi.list_devices),
        ("HEAD", "/devices", nbi.list_devices),
        ("DELETE", "/devices/{device_id}", nbi.delete_device),
        ("POST", "/devices/{device_id}/tasks", nbi.post_task),
        ("POST", "/devices/{device_id}/connection-request", nbi.post_connection_request),
        ("GET", "/tasks", nbi.list_tasks),
        ("HEAD", "/tasks", nbi.list_tasks),
        ("DELETE", "/tasks/{task_id}", nbi.delete_task),
        ("GET", "/files", nbi.list_files),
        ("HEAD", "/files", nbi.list_files),
        ("GET", "/presets", nbi.list_presets),
        ("HEAD", "/presets", nbi.list_presets),
        ("GET", "/faults", nbi.list_faults),
        ("HEAD", "/faults", nbi.list_faults),
        ("DELETE", "/faults/{fault_id}", nbi.retry_fault),
    ]
    for method, path, handler in routes:
        # GenieACS answers with and without the trailing slash; scripts use both.
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)
    app.router.add_route("PUT", "/presets/{name}", nbi.put_preset)
    app.router.add_route("DELETE", "/presets/{name}", nbi.delete_preset)
    app.router.add_route("PUT", "/provisions/{name}", _no_provisions)
    app.router.add_route("POST", "/devices/{device_id}/tags/{tag}", nbi.add_tag)
    app.router.add_route("DELETE", "/devices/{device_id}/tags/{tag}", nbi.delete_tag)
    app.router.add_route("PUT", "/files/{name}", nbi.put_file)
    app.router.add_route("DELETE", "/files/{name}", nbi.delete_file)
    app.router.add_get("/openapi.json", _openapi)
    if metrics is not None:
        app.router.add_get("/metrics", _metrics_handler(metrics))
    if ca_pem is not None:
        resource = app.router.add_get("/ca.pem", _ca_handler(ca_pem)).resource
        assert resource is not None
        public.add(resource)
    public.update(add_dashboard(app, store))
    return app


def _ca_handler(pem: bytes) -> Handler:
    async def ca(request: web.Request) -> web.Response:
        return web.Response(
            body=pem,
            headers={
                "Content-Type": "application/x-pem-file",
                "Content-Disposition": 'attachment; filename="knock-lab-ca.pem"',
            },
        )

    return ca


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


async def _no_provisions(request: web.Request) -> web.Response:
    raise ApiError(501, PROVISIONS_NOT_SUPPORTED)


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
    except (QueryTimeoutError, ReadsStoppedError) as exc:
        return _error(503, str(exc))
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


@web.middleware
async def _text_in_path(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A device or task id in the URL path is text a database can hold (no %00), or 400."""
    for name, value in request.match_info.items():
        check_text(value, f"the {name} in the URL path")
    return await handler(request)


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


_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")


def _idempotency_key(request: web.Request) -> str | None:
    """The client's Idempotency-Key header: a retried task POST carrying the same key gets the
    task the first one queued (whatever became of the first answer) instead of a second task."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400,
            "the Idempotency-Key header is 1 to 128 visible ASCII characters, e.g. a UUID; "
            "send the same key when retrying a POST, a new one for each new task",
        )
    return key


def _int_param(request: web.Request, name: str, maximum: int) -> int | None:
    text = request.query.get(name)
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > maximum:
        raise ApiError(400, f"{name} is a whole number from 0 to {maximum}, not {text!r}")
    return int(text)


def _flag(request: web.Request, name: str) -> bool:
    """A switch in the query string: present (`?history`, `?history=true`) or not;
    `?history=false` is off, as a script that builds its URLs from booleans means it."""
    text = request.query.get(name)
    if text is None:
        return False
    if text.lower() not in ("", "true", "1", "false", "0"):
        raise ApiError(400, f"{name} is a switch: leave it out, or give ?{name} or ?{name}=true")
    return text.lower() in ("", "true", "1")


def _page(request: web.Request) -> tuple[int, int | None]:
    """skip and limit of a listing."""
    return _int_param(request, "skip", _MAX_PAGE) or 0, _int_param(request, "limit", _MAX_PAGE)


async def _listing(
    request: web.Request,
    total: Awaitable[int],
    documents: Callable[[], Awaitable[list[dict[str, Any]]]],
) -> web.Response:
    """A collection as GenieACS answers for one: the `total` header counts every match, skip
    and limit aside; HEAD sends it alone, GET with the page of documents."""
    headers = {"total": str(await total)}
    if request.method == "HEAD":
        return web.Response(headers=headers, content_type="application/json")
    return web.json_response(await documents(), headers=headers)


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
        skip, limit = _page(request)

        async def documents() -> list[dict[str, Any]]:
            rows = await self.store.find_devices(where, order, skip, limit)
            prefixes = parameters_to_fetch(projection)
            ids = [row.id for row in rows]
            params = {}
            if rows and prefixes is not None:
                params = await self.store.get_parameters(ids, prefixes, nbi=True)
            tags = await self.store.tags_of(ids) if rows and selects(projection, "_tags") else {}
            return [
                device_document(row, params.get(row.id, []), projection, tags.get(row.id, ()))
                for row in rows
            ]

        return await _listing(request, self.store.count_devices(where), documents)

    async def delete_device(self, request: web.Request) -> web.Response:
        """As GenieACS: 200 whether or not the device was there, so that a script may delete
        again; the log says which."""
        device_id = request.match_info["device_id"]
        if not await self.store.delete_device(device_id):
            log.info("DELETE /devices/%s: no such device, nothing deleted", device_id)
        return web.json_response({"deleted": device_id})

    async def list_tasks(self, request: web.Request) -> web.Response:
        history = _flag(request, "history")
        where = task_filter(_json_param(request, "query"), history=history)
        skip, limit = _page(request)

        async def documents() -> list[dict[str, Any]]:
            return [task_document(row) for row in await self.store.find_tasks(where, skip, limit)]

        return await _listing(request, self.store.count_tasks(where), documents)

    async def delete_task(self, request: web.Request) -> web.Response:
        text = request.match_info["task_id"]
        task_id = parse_task_id(text)
        if task_id is None or not await self.store.delete_task(task_id):
            raise ApiError(404, f"no task {text!r}; GET /tasks/ lists the tasks and their ids")
        return web.json_response({"deleted": text})

    async def list_presets(self, request: web.Request) -> web.Response:
        where = preset_filter(_json_param(request, "query"))
        skip, limit = _page(request)

        async def documents() -> list[dict[str, Any]]:
            rows = await self.store.find_presets(where, skip, limit)
            return [{"_id": row.name, **row.doc} for row in rows]

        return await _listing(request, self.store.count_presets(where), documents)

    async def put_preset(self, request: web.Request) -> web.Response:
        name = check_preset_name(request.match_info["name"])
        doc = _load_json(await request.read(), "the preset")
        weight = parse_preset(doc)
        given = {k: v for k, v in doc.items() if k != "_id"}
        await self.store.put_preset(name, weight, given)
        return web.json_response({"_id": name, **given})

    async def delete_preset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not await self.store.delete_preset(name):
            raise ApiError(404, f"no preset {name!r}; GET /presets/ lists them")
        return web.json_response({"deleted": name})

    async def add_tag(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        tag = check_tag(request.match_info["tag"])
        if await self.store.get_device(device_id) is None:
            raise self._no_device(device_id)
        await self.store.add_tags(device_id, [tag])
        return web.json_response({"device": device_id, "tag": tag})

    async def delete_tag(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        tag = request.match_info["tag"]
        if not await self.store.delete_tags(device_id, [tag]):
            raise ApiError(404, f"{device_id!r} has no tag {tag!r}")
        return web.json_response({"deleted": tag})

    async def list_faults(self, request: web.Request) -> web.Response:
        """GenieACS's faults: Knock's faulted tasks."""
        where = fault_filter(_json_param(request, "query"))
        skip, limit = _page(request)

        async def documents() -> list[dict[str, Any]]:
            return [fault_document(row) for row in await self.store.find_tasks(where, skip, limit)]

        return await _listing(request, self.store.count_tasks(where), documents)

    async def retry_fault(self, request: web.Request) -> web.Response:
        """GenieACS's DELETE /faults/<id>: the faulted task is queued again, to run at the
        device's next session."""
        text = request.match_info["fault_id"]
        task_id = parse_fault_id(text)
        row = None if task_id is None else await self.store.requeue_faulted_task(task_id)
        if row is None:
            raise ApiError(
                404, f"no fault {text!r}; GET /faults/ lists them, as <device>:task_<id>"
            )
        log.info("device %s: faulted task %s queued again", row.device_id, row.public_id)
        return web.json_response(task_document(row))

    async def list_files(self, request: web.Request) -> web.Response:
        where = file_filter(_json_param(request, "query"))
        projection = parse_projection(request.query.get("projection"))
        skip, limit = _page(request)

        async def documents() -> list[dict[str, Any]]:
            rows = await self.store.find_files(where, skip, limit)
            return [file_document(row, projection) for row in rows]

        return await _listing(request, self.store.count_files(where), documents)

    async def put_file(self, request: web.Request) -> web.Response:
        """GenieACS's upload: the body is the file, the headers its metadata."""
        name = check_file_name(request.match_info["name"])
        meta = file_meta(request.headers)
        if (request.content_length or 0) > MAX_FILE_SIZE:
            raise ApiError(413, f"a file holds at most {MAX_FILE_SIZE} bytes (TR-069 FileSize)")

        async def body() -> AsyncIterator[bytes]:
            while True:
                async with asyncio.timeout(UPLOAD_IDLE_S):
                    data = await request.content.readany()
                if not data:
                    return
                yield data

        try:
            row = await self.store.put_file(name, meta, body(), _now())
        except FileTooLarge as exc:
            raise ApiError(413, str(exc)) from None
        except TimeoutError:
            raise ApiError(408, f"the upload sent nothing for {UPLOAD_IDLE_S:.0f} s") from None
        log.info("file %r stored: %d bytes, md5 %s", row.name, row.length, row.md5)
        return web.json_response(file_document(row), status=201)

    async def delete_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not await self.store.delete_file(name):
            raise ApiError(404, f"no file {name!r}; GET /files/ lists the stored files")
        return web.json_response({"deleted": name})

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
        key = _idempotency_key(request)
        await self._check_stored_file(spec)
        if not wait:
            row = await self._add_task(device_id, spec, key)
            return _task_response(row, 202, NOT_PROCESSED)
        # Subscribed before the task exists: a device that runs it at once is not missed.
        with self.hub.subscribe(device_id) as sub:
            row = await self._add_task(device_id, spec, key)
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
        if final.status in (TaskStatus.FAULTED, TaskStatus.UNKNOWN):
            # GenieACS's answer too: scripts take 200 to mean the task succeeded. An `unknown`
            # task carries a fault too (code "unknown": it may or may not have run).
            return _task_response(final, 202, FAULTED)
        return _task_response(final, 200, None)

    async def _add_task(self, device_id: str, spec: dict[str, Any], key: str | None) -> TaskRow:
        try:
            return await self.store.add_task(device_id, spec["name"], spec, _now(), key)
        except IdempotencyKeyReusedError as exc:
            raise ApiError(409, str(exc)) from None

    async def _check_stored_file(self, spec: dict[str, Any]) -> None:
        """A download naming a stored file: refused unless the device could fetch it."""
        name = stored_file_name(spec)
        if name is None:
            return
        row = await self.store.get_file(name)
        if row is None:
            field = "file" if "file" in spec else "fileName"
            raise ApiError(
                400,
                f"{field} {name!r} names no stored file, so the device would get no URL it can "
                f"fetch: upload it first (PUT /files/{name}, or knock files put), or give url "
                "and fileType for a file served elsewhere",
            )
        if not (spec.get("fileType") or row.file_type):
            raise ApiError(
                400,
                f"file {name!r} was stored without a fileType header: give fileType in the "
                'task, e.g. "1 Firmware Upgrade Image", or upload it again with the header',
            )

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
