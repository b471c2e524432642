"""The simulated CPE's file transfers: a Download's file is really fetched over HTTP.

The bytes are counted and hashed as they stream in, never held whole (a fleet downloads many
images at once); what arrived is kept as a `Received` record, and the outcome becomes the
TransferComplete the device reports, with the TR-069 fault code a real CPE would send.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

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


async def fetch(transfer: QueuedTransfer) -> Received:
    """GET the transfer's URL, with Basic credentials when it carries some; raises
    TransferFailed with the fault a CPE reports."""
    headers = (
        {"Authorization": aiohttp.encode_basic_auth(transfer.username, transfer.password)}
        if transfer.username
        else {}
    )
    timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S)
    digest = hashlib.sha256()
    size = 0
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(transfer.url, headers=headers) as response,
        ):
            if response.status != 200:
                raise TransferFailed(
                    _status_fault(response.status), f"HTTP {response.status} from the file server"
                )
            try:
                async for data in response.content.iter_any():
                    size += len(data)
                    digest.update(data)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransferFailed(
                    CpeFault.DOWNLOAD_INCOMPLETE, f"the download stopped after {size} bytes: {exc}"
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


async def perform(
    transfer: QueuedTransfer, clock: Callable[[], float]
) -> tuple[TransferComplete, Received | None]:
    """Carry out a queued download; uploads are not fetched and succeed at once."""
    started = _stamp(clock())
    received = fault = None
    if transfer.is_download:
        try:
            received = await fetch(transfer)
        except TransferFailed as exc:
            log.info("transfer %r from %s failed: %s", transfer.command_key, transfer.url, exc)
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
