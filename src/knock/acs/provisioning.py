"""Connection-request credentials: which ones a device should have, and the RPC that sets them.

Pure: the service asks `plan_cr_credentials` at the start of the ACS's turn and, when it returns a
plan, sends its RPC first and stores the credentials once the device accepted them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from knock.cwmp.rpcs import ParameterValueStruct, SetParameterValues


class CrPolicy(StrEnum):
    RANDOM = "random"  # a fresh random username and password per device (the default)
    FIXED = "fixed"  # the configured pair, on every device
    OFF = "off"  # leave devices as they are; connection requests use the configured pair


@dataclass(frozen=True, slots=True)
class CrCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # secrets never reach a log through a repr
        return f"CrCredentials(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class CrPlan:
    credentials: CrCredentials
    rpc: SetParameterValues


def random_credentials() -> CrCredentials:
    return CrCredentials("knock-" + secrets.token_hex(6), secrets.token_urlsafe(24))


def data_model_root(parameter_names: list[str]) -> str:
    """ "InternetGatewayDevice." for TR-098 devices, "Device." for TR-181 ones."""
    if any(name.startswith("InternetGatewayDevice.") for name in parameter_names):
        return "InternetGatewayDevice."
    return "Device."


def plan_cr_credentials(
    policy: CrPolicy,
    root: str,
    fixed: CrCredentials,
    new_credentials: Callable[[], CrCredentials] = random_credentials,
) -> CrPlan | None:
    """The credentials to set on a device that has none Knock knows of, or None to leave it."""
    if policy is CrPolicy.OFF:
        return None
    creds = fixed if policy is CrPolicy.FIXED else new_credentials()
    prefix = f"{root}ManagementServer."
    return CrPlan(
        creds,
        SetParameterValues(
            [
                ParameterValueStruct(f"{prefix}ConnectionRequestUsername", creds.username),
                ParameterValueStruct(f"{prefix}ConnectionRequestPassword", creds.password),
            ],
            parameter_key="",
        ),
    )
