"""The web dashboard on the NBI's port: its pages, and the JSON routes they read besides the
NBI's own (GET /devices, GET /tasks, POST /devices/<id>/connection-request).

The pages are static files from the package and hold no data, so they are served without the
NBI's token; every JSON route, these included, asks for it as the rest of the NBI does. The
browser keeps the token the user types in sessionStorage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from knock.nbi.dashboard_stats import LATENCY_EDGES_MS, cr_stats, latency_ms
from knock.nbi.documents import iso
from knock.nbi.errors import ApiError
from knock.store import Store
from knock.store.rows import CrAttemptRow, SessionRow, StoredParam

PREFIX = "/dashboard/api"
STATIC = "/dashboard/static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_FILES = ("index.html", "app.js", "charts.js", "style.css")
# The pages load nothing from elsewhere; the browser is told to refuse anything that tries.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
HISTORY_LIMIT = 50  # sessions or attempts a device page shows by default
MAX_HISTORY = 1000
DEFAULT_WINDOW_S = 3600
MAX_WINDOW_S = 90 * 86400
DEFAULT_SLICES = 30
MAX_SLICES = 500


def add_dashboard(app: web.Application, store: Store) -> list[web.AbstractResource]:
    """Add the dashboard's routes to the NBI app; returns the resources anyone may read."""
    pages = _Pages()
    data = _Data(store)
    public = [
        app.router.add_get("/", pages.index).resource,
        app.router.add_get(STATIC + "/{name}", pages.static).resource,
    ]
    app.router.add_get(PREFIX + "/devices/{device_id}/sessions", data.sessions)
    app.router.add_get(PREFIX + "/devices/{device_id}/cr-attempts", data.cr_attempts)
    app.router.add_get(PREFIX + "/devices/{device_id}/parameters", data.parameters)
    app.router.add_get(PREFIX + "/cr-stats", data.stats)
    return [r for r in public if r is not None]


class _Pages:
    def __init__(self) -> None:
        folder = resources.files("knock.nbi").joinpath("static")
        # Read once: a fixed set of names, so no request path ever reaches the file system.
        self.files = {name: folder.joinpath(name).read_bytes() for name in _FILES}

    def _file(self, name: str) -> web.Response:
        suffix = name[name.rindex(".") :]
        return web.Response(
            body=self.files[name], content_type=_TYPES[suffix], charset="utf-8", headers=_HEADERS
        )

    async def index(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            raise ApiError(404, f"no dashboard file {name!r}; open / for the dashboard")
        return self._file(name)


def _whole(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name)
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= maximum:
        raise ApiError(400, f"{name} is a whole number from 1 to {maximum}, not {text!r}")
    return int(text)


class _Data:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _device(self, request: web.Request) -> str:
        device_id = request.match_info["device_id"]
        if await self.store.get_device(device_id) is None:
            raise ApiError(404, f"no device {device_id!r}; GET /devices/ lists them")
        return device_id

    async def sessions(self, request: web.Request) -> web.Response:
        """The device's latest sessions, newest first (?limit, default 50)."""
        device_id = await self._device(request)
        limit = _whole(request, "limit", HISTORY_LIMIT, MAX_HISTORY)
        rows = await self.store.list_sessions(device_id, limit)
        return web.json_response([session_document(row) for row in rows])

    async def cr_attempts(self, request: web.Request) -> web.Response:
        """The device's latest connection-request attempts, newest first (?limit)."""
        device_id = await self._device(request)
        limit = _whole(request, "limit", HISTORY_LIMIT, MAX_HISTORY)
        rows = await self.store.list_cr_attempts(device_id, limit)
        return web.json_response([attempt_document(row) for row in rows])

    async def parameters(self, request: web.Request) -> web.Response:
        """The device's stored parameters by path, object nodes included, each with whether
        the device reported it writable (GetParameterNames) or null where it never said."""
        device_id = await self._device(request)
        found = await self.store.get_parameters([device_id], nbi=True)
        return web.json_response([parameter_document(p) for p in found[device_id]])

    async def stats(self, request: web.Request) -> web.Response:
        """Every device's attempts of the last ?window seconds, in ?slices slices of time from
        the first slice that holds any (the answer's since) to now."""
        window = _whole(request, "window", DEFAULT_WINDOW_S, MAX_WINDOW_S)
        slices = _whole(request, "slices", DEFAULT_SLICES, MAX_SLICES)
        until = datetime.now(UTC)
        since = until - timedelta(seconds=window)
        counts = await self.store.cr_attempt_counts(since, until, slices, LATENCY_EDGES_MS)
        first = min((count.slice for count in counts.counts), default=0)
        if first:
            # Every attempt began in the window's last part (a lab started minutes ago): its
            # slices are spread over that part, now still at the right edge, instead of the
            # series sitting squeezed against it. None is left out: the slices are cut where
            # the store cuts them, in whole microseconds.
            width_us = (until - since) // timedelta(microseconds=1)
            since += timedelta(microseconds=width_us * first // slices)
            counts = await self.store.cr_attempt_counts(since, until, slices, LATENCY_EDGES_MS)
        return web.json_response(cr_stats(counts, since, until, slices))


def _moment(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def session_document(row: SessionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "started": iso(row.started),
        "ended": _moment(row.ended),
        "events": row.events,
        "cwmpVersion": row.cwmp_version,
        "outcome": row.outcome,
    }


def parameter_document(param: StoredParam) -> dict[str, Any]:
    return {
        "path": param.path,
        "value": param.value,
        "type": param.type,
        "writable": param.writable,
        "timestamp": iso(param.timestamp),
    }


def attempt_document(row: CrAttemptRow) -> dict[str, Any]:
    ms = latency_ms(row)
    return {
        "id": row.id,
        "method": row.method,
        "started": iso(row.started),
        "ended": _moment(row.ended),
        "outcome": row.outcome,
        "detail": row.detail,
        "latencyMs": None if ms is None else round(ms, 1),
    }
