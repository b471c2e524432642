"""Answers to the requests a CPE sends the ACS during its turn."""

from __future__ import annotations

from knock.cwmp.faults import AcsFault, acs_fault
from knock.cwmp.rpcs import (
    AutonomousTransferComplete,
    AutonomousTransferCompleteResponse,
    Fault,
    GetRPCMethods,
    GetRPCMethodsResponse,
    Kicked,
    RequestDownload,
    RequestDownloadResponse,
    Rpc,
    TransferComplete,
    TransferCompleteResponse,
)

# What the ACS implements, as TR-069 Annex A names the CPE-to-ACS methods.
ACS_METHODS = [
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "RequestDownload",
]


def answer_cpe_request(rpc: Rpc) -> Rpc | Fault:
    if isinstance(rpc, TransferComplete):
        return TransferCompleteResponse()
    if isinstance(rpc, AutonomousTransferComplete):
        return AutonomousTransferCompleteResponse()
    if isinstance(rpc, GetRPCMethods):
        return GetRPCMethodsResponse(list(ACS_METHODS))
    if isinstance(rpc, RequestDownload):
        # Accepted but not acted on: Knock has no file server of its own yet.
        return RequestDownloadResponse()
    if isinstance(rpc, Kicked):
        return acs_fault(AcsFault.METHOD_NOT_SUPPORTED, "Kicked is not supported by Knock")
    return acs_fault(
        AcsFault.METHOD_NOT_SUPPORTED, f"{type(rpc).__name__} is not a CPE-to-ACS request"
    )
