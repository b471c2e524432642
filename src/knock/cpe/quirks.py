"""Quirks on demand: switches that make a simulated CPE take one of the readings that deployed
device stacks make where the standard leaves freedom (`knock sim --quirk NAME`), so a test proves
the ACS copes before a real device finds out. Unlike a defect, a quirk breaks no requirement: the
ACS must work with it, and `knock check` must not fail a device for it.

A device carries its set in `SimulatedCpe.quirks`; the cores that own a behaviour read it from
the facts they are given, as they read defects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from enum import StrEnum
from typing import Final

from knock.cpe.datamodel import ModelSchema
from knock.cpe.switches import parse_switches
from knock.cwmp.faults import CpeFault


class Quirk(StrEnum):
    STUN_USERNAME_SPACE_PAD = "stun-username-space-pad"
    PARTIAL_PATH_FAULT = "partial-path-fault"
    PARTIAL_PATH_DROP = "partial-path-drop"
    XMPP_FIXED_ROWS = "xmpp-fixed-rows"
    XMPP_SERVER_AUTO = "xmpp-server-auto"
    DROP_ON_UNKNOWN_PARAMETER = "drop-on-unknown-parameter"
    NO_UPLOAD_NO_RESET = "no-upload-no-reset"
    DENY_ACTIVE_NOTIFY = "deny-active-notify"

    @property
    def reading(self) -> str:
        """What the device does, where the standard allows it, in one line."""
        return READINGS[self]


READINGS: Final = {
    Quirk.STUN_USERNAME_SPACE_PAD: (
        "RFC 3489 §11.2.6: USERNAME is padded to a multiple of 4 with spaces, not NULs"
    ),
    Quirk.PARTIAL_PATH_FAULT: (
        "GetParameterValues of a partial path (ending in '.') is answered with fault 9005"
    ),
    Quirk.PARTIAL_PATH_DROP: (
        "GetParameterValues of a partial path crashes the CWMP client: the connection closes "
        "unanswered, and the next Inform says 1 BOOT"
    ),
    Quirk.XMPP_FIXED_ROWS: (
        "TR-181: XMPP.Connection.1 and its Server.1 ship with the device; both tables refuse "
        "AddObject and DeleteObject (9001)"
    ),
    Quirk.XMPP_SERVER_AUTO: (
        "TR-181: AddObject of an XMPP.Connection makes its Server.1 too; the Server table is "
        "read-only (AddObject faults 9005)"
    ),
    Quirk.DENY_ACTIVE_NOTIFY: (
        "TR-069 A.3.2.4, TR-181 canDeny: active notification on a transient value "
        "(DeviceInfo.UpTime, ParameterKey) is refused with fault 9009"
    ),
    Quirk.DROP_ON_UNKNOWN_PARAMETER: (
        "TR-069 A.3.2.1/A.3.2.2: a Get/SetParameterValues naming a parameter the device lacks "
        "drops the connection mid-session, as a crashing stack does, instead of fault 9005"
    ),
    Quirk.NO_UPLOAD_NO_RESET: (
        "TR-069 Annex A.3.1 (Table 5): Upload and FactoryReset, both optional, are not offered: "
        "GetRPCMethods lists neither, and each is answered with fault 9000"
    ),
}

Quirks = frozenset[Quirk]
NONE: Final[Quirks] = frozenset()


def parse_quirks(names: Iterable[str]) -> Quirks:
    """The quirks *names* name (each once or more, any letter case); raises `SwitchError`."""
    return parse_switches(Quirk, names, "quirk")


def shaped(schema: ModelSchema, quirks: Quirks) -> ModelSchema:
    """The data model *schema* as a device with *quirks* ships it (the same one, when no quirk
    changes its tables, or it has no XMPP tables)."""
    connection = f"{schema.root}XMPP.Connection.{{i}}."
    server = f"{connection}Server.{{i}}."
    if connection not in schema.objects or server not in schema.objects:
        return schema
    objects = dict(schema.objects)
    instances = schema.instances
    if Quirk.XMPP_FIXED_ROWS in quirks:
        objects[connection] = replace(objects[connection], writable=False)
        objects[server] = replace(objects[server], writable=False)
        first = f"{schema.root}XMPP.Connection.1."
        instances += ((first, {}), (f"{first}Server.1.", {}))
    if Quirk.XMPP_SERVER_AUTO in quirks:
        objects[connection] = replace(objects[connection], rows_with=("Server.",))
        objects[server] = replace(
            objects[server], writable=False, refusal=CpeFault.INVALID_PARAMETER_NAME
        )
    if objects == schema.objects:
        return schema
    tables = {table: objects[definition.name] for table, definition in schema.tables.items()}
    return replace(schema, objects=objects, tables=tables, instances=instances)
