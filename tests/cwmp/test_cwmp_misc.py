"""Fault codes and device keys."""

from __future__ import annotations

import pytest

from knock.cwmp import AcsFault, CpeFault, DeviceIdStruct, Fault, acs_fault, cpe_fault, device_key
from knock.cwmp.faults import fault_string, is_vendor_fault, soap_faultcode


@pytest.mark.parametrize(
    ("code", "faultcode"),
    [
        (AcsFault.METHOD_NOT_SUPPORTED, "Server"),
        (AcsFault.INVALID_ARGUMENTS, "Client"),
        (AcsFault.RETRY_REQUEST, "Server"),
        (CpeFault.INVALID_PARAMETER_NAME, "Client"),
        (CpeFault.NON_WRITABLE_PARAMETER, "Client"),
        (CpeFault.FILE_TRANSFER_FAILURE, "Server"),
        (CpeFault.CANCELATION_NOT_PERMITTED, "Client"),
        (CpeFault.SYSTEM_RESOURCES_EXCEEDED, "Server"),
        (CpeFault.DU_VERSION_EXISTS, "Client"),
        (9850, "Server"),
    ],
)
def test_soap_faultcode(code: int, faultcode: str) -> None:
    assert soap_faultcode(code) == faultcode


def test_every_standard_code_is_named() -> None:
    assert [int(c) for c in AcsFault] == list(range(8000, 8007))
    assert [int(c) for c in CpeFault] == list(range(9000, 9033))
    assert fault_string(9005) == "Invalid parameter name"
    assert fault_string(9801) == "Vendor fault 9801"
    assert is_vendor_fault(9899) and is_vendor_fault(8800) and not is_vendor_fault(9900)


def test_fault_constructors() -> None:
    assert cpe_fault(9007) == Fault("Client", 9007, "Invalid parameter value", [])
    assert acs_fault(8002, "db down") == Fault("Server", 8002, "db down", [])


@pytest.mark.parametrize(
    ("oui", "product_class", "serial", "key"),
    [
        ("00236A", "Router X", "SN 1", "00236A-Router%20X-SN%201"),
        ("00236A", "", "SN1", "00236A-SN1"),
        ("00236a", "HG8245_H", "48575443-ABCD.1", "00236a-HG8245_H-48575443%2DABCD%2E1"),
        ("001122", "Box\u00e9", "\U0001f600\n", "001122-Box%C3%A9-%F0%9F%98%80%0A"),
    ],
)
def test_device_key(oui: str, product_class: str, serial: str, key: str) -> None:
    assert device_key(DeviceIdStruct("Any Maker", oui, product_class, serial)) == key
