"""The simulated CPE's file transfers: a Download's file is really fetched over HTTP(S), an
Upload's really sent (HTTP PUT).

The bytes are counted and hashed as they stream in, never held whole (a fleet downloads many
images at once); what arrived is kept as a `Received` record, and the outcome becomes the
TransferComplete the device reports, with the TR-069 fault code a real CPE would send.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from knock.auth import AuthError, answer_challenge, select_challenge
from knock.cpe.defects import NONE, Defect, Defects
from knock.cpe.rpc_handler import QueuedTransfer
from knock.cwmp.faults import CpeFault
from knock.cwmp.rpcs import TransferComplete, TransferCompleteFaultStruct
from knock.cwmp.values import format_datetime

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0  # silence in the middle of a download: unable to complete it


@dataclass(frozen=True, slots=True)
class Received:
    """A file a Download brought to the device."""

    command_key: str
    url: str
    size: int
    sha256: str


class TransferFailed(Exception):
    def __init__(self, code: CpeFault, message: str) -> None:
        super().__init__(message)
        self.code = code


def _status_fault(status: int) -> CpeFault:
    if status in (401, 403, 407):
        return CpeFault.FILE_TRANSFER_AUTHENTICATION_FAILURE
    if status in (404, 410):
        return CpeFault.FILE_ACCESS_FAILURE
    return CpeFault.FILE_TRANSFER_FAILURE


@contextlib.asynccontextmanager
async def _answered(
    transfer: QueuedTransfer, method: str, tls: ssl.SSLContext | None, data: bytes | None = None
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The file server's answer to *method* on the transfer's URL, after answering a Digest (or
    Basic) challenge with the credentials the transfer carries; HTTPS checked with *tls* (None:
    the system's CAs)."""
    timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S)
    headers: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for answered in (False, True):
            async with http.request(
                method, transfer.url, headers=headers, data=data, ssl=tls or True
            ) as response:
                if response.status == 401 and not answered and transfer.username:
                    challenges = response.headers.getall("WWW-Authenticate", [])
                    headers["Authorization"] = _answer(transfer, method, challenges)
                    continue
                yield response
                return


async def fetch(transfer: QueuedTransfer, tls: ssl.SSLContext | None = None) -> Received:
    """GET the transfer's URL (see `_answered`); raises TransferFailed with the fault a CPE
    reports."""
    digest = hashlib.sha256()
    size = 0
    try:
        async with _answered(transfer, "GET", tls) as response:
            if response.status != 200:
                raise TransferFailed(
                    _status_fault(response.status),
                    f"HTTP {response.status} from the file server",
                )
            try:
                async for data in response.content.iter_any():
                    size += len(data)
                    digest.update(data)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransferFailed(
                    CpeFault.DOWNLOAD_INCOMPLETE,
                    f"the download stopped after {size} bytes: {exc}",
                ) from None
    except (aiohttp.ClientConnectionError, TimeoutError, aiohttp.InvalidURL) as exc:
        raise TransferFailed(
            CpeFault.FILE_SERVER_UNREACHABLE, f"cannot reach the file server: {exc}"
        ) from None
    if transfer.file_size and size != transfer.file_size:
        raise TransferFailed(
            CpeFault.FILE_CORRUPTED, f"got {size} bytes, the Download said {transfer.file_size}"
        )
    return Received(transfer.command_key, transfer.url, size, digest.hexdigest())


async def send(transfer: QueuedTransfer, body: bytes, tls: ssl.SSLContext | None = None) -> None:
    """PUT *body* to the Upload's URL (see `_answered`); raises TransferFailed with 9012 when
    the server refuses the credentials, 9011 for any other failure (TR-069 Annex A.5.1)."""
    try:
        async with _answered(transfer, "PUT", tls, body) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransferFailed(CpeFault.UPLOAD_FAILURE, f"the upload failed: {exc}") from None
    if status in (401, 403, 407):
        raise TransferFailed(
            CpeFault.FILE_TRANSFER_AUTHENTICATION_FAILURE, f"HTTP {status} from the file server"
        )
    if status not in (200, 201, 204):
        raise TransferFailed(CpeFault.UPLOAD_FAILURE, f"HTTP {status} from the file server")


def _answer(transfer: QueuedTransfer, method: str, challenges: list[str]) -> str:
    """The Authorization answering the file server's challenge; Basic only when it offers no
    Digest (the credentials came for this server, so Basic is what the ACS agreed to)."""
    try:
        chosen = select_challenge(challenges, allow_basic=True)
    except AuthError as exc:
        raise TransferFailed(
            CpeFault.FILE_TRANSFER_AUTHENTICATION_FAILURE, f"no usable challenge: {exc}"
        ) from None
    uri = URL(transfer.url).raw_path_qs
    return answer_challenge(chosen, method, uri, transfer.username, transfer.password)


async def perform(
    transfer: QueuedTransfer,
    clock: Callable[[], float],
    tls: ssl.SSLContext | None = None,
    upload: bytes = b"",
    defects: Defects = NONE,
) -> tuple[TransferComplete, Received | None]:
    """Carry out a queued transfer: fetch a download, send *upload* for an upload."""
    started = _stamp(clock())
    received = fault = None
    try:
        if transfer.is_download:
            received = await fetch(transfer, tls)
        elif Defect.UPLOAD_NOT_SENT not in defects:
            await send(transfer, upload, tls)
    except TransferFailed as exc:
        log.info("transfer %r with %s failed: %s", transfer.command_key, transfer.url, exc)
        if Defect.TRANSFER_FAULT_DROPPED not in defects:
            fault = TransferCompleteFaultStruct(int(exc.code), str(exc))
    result = TransferComplete(
        transfer.command_key,
        fault or TransferCompleteFaultStruct(),
        start_time=started,
        complete_time=_stamp(clock()),
    )
    return result, received


def _stamp(moment: float) -> str:
    return format_datetime(datetime.fromtimestamp(moment, UTC))
