"""A small async client of the knock NBI (and of GenieACS's, whose routes it shares)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

DEFAULT_URL = "http://127.0.0.1:7557"
# Beyond the time the NBI itself waits for the device, so that its answer is what we report.
_ANSWER_MARGIN_S = 10.0


class NbiError(Exception):
    """The NBI could not be reached or refused the request; the message says what to do."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a POST with ?connection_request ended: status 200 means the task is done."""

    status: int
    reason: str
    task: dict[str, Any]
    connection_request_error: str | None = None


class NbiClient:
    """Use as `async with NbiClient(url) as nbi:`. `timeout_s` bounds each plain request."""

    def __init__(self, url: str = DEFAULT_URL, *, token: str | None = None, timeout_s: float = 30):
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NbiClient:
        self._session = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def devices(
        self, query: Any = None, *, projection: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        params = {"query": json.dumps(query)} if query is not None else {}
        if projection is not None:
            params["projection"] = projection
        if limit is not None:
            params["limit"] = str(limit)
        _, _, body = await self._call("GET", "/devices/", params, None, self._timeout_s)
        return list(body)

    async def tasks(self, query: Any = None, *, history: bool = False) -> list[dict[str, Any]]:
        """Pending and faulted tasks, as GenieACS lists them; with `history`, done ones too."""
        params = {"query": json.dumps(query)} if query is not None else {}
        if history:
            params["history"] = "true"
        _, _, body = await self._call("GET", "/tasks/", params, None, self._timeout_s)
        return list(body)

    async def files(self, query: Any = None) -> list[dict[str, Any]]:
        params = {"query": json.dumps(query)} if query is not None else {}
        _, _, body = await self._call("GET", "/files/", params, None, self._timeout_s)
        return list(body)

    async def put_file(self, name: str, path: Path, metadata: dict[str, str]) -> dict[str, Any]:
        """Upload the file at *path* as *name*, streamed from disk, with GenieACS's metadata
        headers (fileType, oui, productClass, version)."""
        with path.open("rb") as contents:
            _, _, body = await self._call(
                "PUT",
                f"/files/{quote(name, safe='')}",
                {},
                None,
                None,
                data=contents,
                headers=metadata,
            )
        return dict(body)

    async def delete_file(self, name: str) -> None:
        path = f"/files/{quote(name, safe='')}"
        await self._call("DELETE", path, {}, None, self._timeout_s)

    async def run_task(self, device_id: str, task: dict[str, Any], wait_s: float) -> TaskOutcome:
        """Queue `task`, ask the device to connect, and wait up to `wait_s` for it to finish."""
        params = {"connection_request": "", "timeout": str(round(wait_s * 1000))}
        path = f"/devices/{quote(device_id, safe='')}/tasks"
        status, reason, body = await self._call(
            "POST", path, params, task, wait_s + _ANSWER_MARGIN_S
        )
        if "connectionRequestError" in body:
            return TaskOutcome(status, reason, body["task"], body["connectionRequestError"])
        return TaskOutcome(status, reason, body)

    async def connection_request(
        self, device_id: str, via: str | None, wait_s: float
    ) -> dict[str, Any]:
        """Send a connection request now; the answer says whether it was delivered, and how."""
        params = {"timeout": str(round(wait_s * 1000))}
        if via is not None:
            params["via"] = via
        path = f"/devices/{quote(device_id, safe='')}/connection-request"
        # 502 carries the outcome of a request that was not delivered: a result, not an error.
        _, _, body = await self._call(
            "POST", path, params, None, wait_s + _ANSWER_MARGIN_S, results=(502,)
        )
        return dict(body)

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: Any,
        timeout_s: float | None,
        results: tuple[int, ...] = (),
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, Any]:
        """*body* is sent as JSON; *data* (a file, streamed) instead, with *headers*. Without
        *timeout_s*, only silence of the NBI for as long ends the request (an upload)."""
        if self._session is None:
            raise RuntimeError("use NbiClient as an async context manager")
        url = URL(self.url + path, encoded=True).update_query(params)
        try:
            timeout = (
                aiohttp.ClientTimeout(total=timeout_s)
                if timeout_s is not None
                else aiohttp.ClientTimeout(sock_read=self._timeout_s)
            )
            sent: dict[str, Any] = {"json": body} if data is None else {"data": data}
            async with self._session.request(
                method, url, headers=headers, timeout=timeout, **sent
            ) as response:
                text = await response.text()
                status, reason = response.status, response.reason or ""
        except aiohttp.ClientError as exc:
            raise NbiError(
                f"cannot reach the NBI at {self.url} ({exc}); start it with `knock serve`, "
                "or point --nbi (or KNOCK_NBI_URL) at the right address"
            ) from exc
        except TimeoutError as exc:
            waited = timeout_s if timeout_s is not None else self._timeout_s
            raise NbiError(f"the NBI at {self.url} did not answer within {waited:g} s") from exc
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise NbiError(
                f"{self.url} answered {status} with something other than JSON; is it a knock NBI?"
            ) from exc
        if status == 401:
            raise NbiError("the NBI needs a token: pass --token or set KNOCK_NBI_TOKEN")
        if status >= 400 and status not in results:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise NbiError(f"the NBI answered {status} {reason}: {message or text}")
        return status, reason, answer


def parameter_values(doc: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """(path, value, xsd type) of every parameter with a value in a device document."""
    for key, node in doc.items():
        if key.startswith("_") or not isinstance(node, dict):
            continue
        path = prefix + key
        if "_value" in node:
            yield path, node["_value"], node.get("_type", "")
        yield from parameter_values(node, path + ".")
