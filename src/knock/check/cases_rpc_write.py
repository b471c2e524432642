"""The CPE's writing RPCs (TR-069 Annex A), each in a session a connection request by each method
the device offers opened: SetParameterValues (status, ParameterKey, the faults of a bad value or
a read-only parameter, all or nothing), AddObject and DeleteObject."""

from __future__ import annotations

import secrets
from typing import Any, Final

from knock.check.cases_rpc import INVALID_PARAMETER_NAME, fault_of, gpn, ok, rpc
from knock.check.context import CheckContext, gpv
from knock.store.rows import TaskRow
from knock.vocab import TaskStatus

INVALID_ARGUMENTS: Final = "9003"
INVALID_TYPE: Final = "9006"
INVALID_VALUE: Final = "9007"
NON_WRITABLE: Final = "9008"
# A writable table to add a row to and delete it from, by data model: a disabled row of each
# harms nothing for the moment it lives.
TABLES: Final = {
    "Device.": "Device.IP.Interface.",
    "InternetGatewayDevice.": "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1."
    "WANIPConnection.",
}


def key(ctx: CheckContext) -> str:
    """A new ParameterKey (at most 32 characters, TR-069 Annex A)."""
    return f"knock-{ctx.via}-{secrets.token_hex(4)}"


def spv(values: list[list[str]], parameter_key: str = "") -> dict[str, Any]:
    return {"name": "setParameterValues", "parameterValues": values, "parameterKey": parameter_key}


def provisioning_code(ctx: CheckContext) -> str:
    return f"{ctx.dut.root}DeviceInfo.ProvisioningCode"


def values_of(done: TaskRow) -> dict[str, str]:
    return {str(name): str(value) for name, value, _type in done.result}


def refused(ctx: CheckContext, done: TaskRow, name: str, code: str, what: str) -> None:
    """Fail unless *done* faulted 9003 (or *code* itself) naming *name* with *code*."""
    if done.status != TaskStatus.FAULTED:
        ctx.fail(f"SetParameterValues of {what} was accepted: {done.result}")
    ctx.expect(
        done.fault_code in (INVALID_ARGUMENTS, code),
        f"SetParameterValues of {what} faulted {done.fault_code} ({done.fault_string}), "
        f"not {INVALID_ARGUMENTS} with {code} for {name}",
    )
    named = {(str(d.get("parameter")), str(d.get("code"))) for d in done.fault_detail or ()}
    ctx.expect(
        (name, code) in named or done.fault_code == code,
        f"SetParameterValues of {what} faulted {done.fault_code} without a "
        f"SetParameterValuesFault {code} for {name} (it named {sorted(named)})",
    )


@rpc(
    "spv-status",
    "TR-069 Annex A.3.2.1",
    "SetParameterValues of a writable parameter is answered with Status 0 or 1, and the "
    "parameter then reads the new value",
    shares_session=True,
)
async def spv_status(ctx: CheckContext) -> None:
    name, value = provisioning_code(ctx), f"knock-check-{secrets.token_hex(4)}"
    done, read = await ctx.run_tasks([spv([[name, value]]), gpv(name)])
    ok(ctx, done)
    status = done.result.get("status")
    ctx.expect(status in (0, 1), f"SetParameterValues was answered with Status {status}")
    got = values_of(read).get(name)
    ctx.expect(got == value, f"{name} reads {got!r} after it was set to {value!r}")


@rpc(
    "spv-parameter-key",
    "TR-069 Annex A.3.2.1, ManagementServer.ParameterKey",
    "A successful SetParameterValues sets ManagementServer.ParameterKey to its ParameterKey",
    shares_session=True,
)
async def spv_parameter_key(ctx: CheckContext) -> None:
    new = key(ctx)
    name = ctx.ms("ParameterKey")
    done, read = await ctx.run_tasks(
        [spv([[provisioning_code(ctx), f"knock-check-{new}"]], new), gpv(name)]
    )
    ok(ctx, done)
    got = values_of(read).get(name)
    ctx.expect(got == new, f"{name} reads {got!r} after a SetParameterValues with key {new!r}")


@rpc(
    "spv-invalid-value",
    "TR-069 Annex A.3.2.1, A.5.1 (fault 9007)",
    "SetParameterValues of a value outside the parameter's range is refused with 9007 for it",
    shares_session=True,
)
async def spv_invalid_value(ctx: CheckContext) -> None:
    name = ctx.ms("PeriodicInformInterval")
    done = await ctx.run_task(spv([[name, "0", "xsd:unsignedInt"]]))
    refused(ctx, done, name, INVALID_VALUE, f"{name} = 0 (unsignedInt[1:])")


@rpc(
    "spv-wrong-type",
    "TR-069 Annex A.3.2.1, A.5.1 (fault 9006)",
    "SetParameterValues of an unsignedInt parameter given a word typed xsd:string is refused "
    "with 9006 for it",
    shares_session=True,
)
async def spv_wrong_type(ctx: CheckContext) -> None:
    # Not a boolean: an ACS may write xsd:boolean true as 1, which an unsignedInt takes.
    name, word = ctx.ms("PeriodicInformInterval"), "knock-check"
    done = await ctx.run_task(spv([[name, word, "xsd:string"]]))
    refused(ctx, done, name, INVALID_TYPE, f"{name} = {word} (xsd:string, not unsignedInt)")


@rpc(
    "spv-non-writable",
    "TR-069 Annex A.3.2.1, A.5.1 (fault 9008)",
    "SetParameterValues of a read-only parameter is refused with 9008 for it",
    shares_session=True,
)
async def spv_non_writable(ctx: CheckContext) -> None:
    name = ctx.ms("ConnectionRequestURL")
    done = await ctx.run_task(spv([[name, await ctx.cr_url()]]))
    refused(ctx, done, name, NON_WRITABLE, f"the read-only {name}")


@rpc(
    "spv-all-or-nothing",
    "TR-069 Annex A.3.2.1",
    "A SetParameterValues with one bad value is refused whole: the good value beside it is "
    "not applied",
    shares_session=True,
)
async def spv_all_or_nothing(ctx: CheckContext) -> None:
    good, bad = provisioning_code(ctx), ctx.ms("PeriodicInformInterval")
    value = f"knock-check-{secrets.token_hex(4)}"
    before, done, after = await ctx.run_tasks(
        [gpv(good), spv([[good, value], [bad, "0", "xsd:unsignedInt"]]), gpv(good)]
    )
    refused(ctx, done, bad, INVALID_VALUE, f"{good} and {bad} = 0")
    was, now = values_of(before).get(good), values_of(after).get(good)
    ctx.expect(
        now == was,
        f"{good} reads {now!r} after the refused SetParameterValues (it was {was!r}): the "
        "device applied part of it",
    )


@rpc(
    "object-invalid",
    "TR-069 Annex A.3.2.6, A.3.2.7, A.5.1 (fault 9005)",
    "AddObject of a table and DeleteObject of an instance the device lacks are each refused "
    "with 9005",
    shares_session=True,
)
async def object_invalid(ctx: CheckContext) -> None:
    table = ctx.ms("KnockCheckNoSuchTable.")
    add = {"name": "addObject", "objectName": table}
    row = TABLES.get(ctx.dut.root, table) + "4294967295."
    delete = {"name": "deleteObject", "objectName": row}
    added, deleted = await ctx.run_tasks([add, delete])
    fault_of(ctx, added, INVALID_PARAMETER_NAME, f"of {table}")
    fault_of(ctx, deleted, INVALID_PARAMETER_NAME, f"of {row}")


@rpc(
    "add-delete-object",
    "TR-069 Annex A.3.2.6, A.3.2.7",
    "AddObject gives a new instance number, listed at once, with the ParameterKey set; "
    "DeleteObject removes it and sets its own ParameterKey",
)
async def add_delete_object(ctx: CheckContext) -> None:
    table, name = TABLES.get(ctx.dut.root, ""), ctx.ms("ParameterKey")
    added_key, deleted_key = key(ctx), key(ctx)
    add = {"name": "addObject", "objectName": table, "parameterKey": added_key}
    added, read, listed = await ctx.run_tasks([add, gpv(name), gpn(table, True)])
    if added.status == TaskStatus.FAULTED and added.fault_code == INVALID_PARAMETER_NAME:
        ctx.skip(f"the device has no {table} (AddObject faulted 9005): no table to add to")
    ok(ctx, added)
    number = added.result.get("instanceNumber")
    ctx.expect(isinstance(number, int) and number > 0, f"AddObject gave instance {number!r}")
    row = f"{table}{number}."
    rows = [str(n) for n, _w in listed.result]
    ctx.expect(row in rows, f"{row} is not listed by GetParameterNames after AddObject: {rows}")
    got = values_of(read).get(name)
    ctx.expect(got == added_key, f"{name} reads {got!r} after AddObject with key {added_key!r}")
    delete = {"name": "deleteObject", "objectName": row, "parameterKey": deleted_key}
    deleted, read, listed = await ctx.run_tasks([delete, gpv(name), gpn(table, True)])
    ok(ctx, deleted)
    status = deleted.result.get("status")
    ctx.expect(status in (0, 1), f"DeleteObject was answered with Status {status}")
    rows = [str(n) for n, _w in listed.result]
    ctx.expect(row not in rows, f"{row} is still listed after DeleteObject")
    got = values_of(read).get(name)
    ctx.expect(got == deleted_key, f"{name} reads {got!r} after DeleteObject with {deleted_key!r}")
