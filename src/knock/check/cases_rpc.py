"""The CPE's RPCs (TR-069 Annex A), each in a session a connection request by each method the
device offers opened (`per_method`): reading the data model (GetRPCMethods, GetParameterNames,
GetParameterValues) and the faults a bad name gets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from knock.check.cases import CaseFn
from knock.check.context import CheckContext, gpv
from knock.check.per_method import per_method
from knock.store.rows import TaskRow
from knock.vocab import TaskStatus

# TR-069 Annex A.3.1, Table 5: the methods a CPE MUST support.
REQUIRED_METHODS: Final = (
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
)
INVALID_PARAMETER_NAME: Final = "9005"
NO_SUCH_LEAF: Final = "KnockCheckNoSuchParameter"


def rpc(
    name: str, requirement: str, title: str, *, shares_session: bool = False
) -> Callable[[CaseFn], CaseFn]:
    return per_method("rpc", name, requirement, title, shares_session=shares_session)


async def answered(ctx: CheckContext, spec: Mapping[str, Any]) -> TaskRow:
    """Run *spec*; fail the case when the device faults it."""
    return ok(ctx, await ctx.run_task(spec))


def ok(ctx: CheckContext, done: TaskRow) -> TaskRow:
    """*done*, unless the device faulted it: then the case fails."""
    if done.status == TaskStatus.FAULTED:
        ctx.fail(f"the device faulted {done.name}: {done.fault_code} {done.fault_string}")
    return done


async def faulted(ctx: CheckContext, spec: Mapping[str, Any], code: str, why: str) -> None:
    """Run *spec*; fail the case unless the device answers it with the fault *code*."""
    fault_of(ctx, await ctx.run_task(spec), code, why)


def fault_of(ctx: CheckContext, done: TaskRow, code: str, why: str) -> None:
    """Fail the case unless the task *done* faulted with *code*."""
    if done.status != TaskStatus.FAULTED:
        ctx.fail(f"{done.name} {why} was answered without a fault: {done.result}")
    ctx.expect(
        done.fault_code == code,
        f"{done.name} {why} was answered with fault {done.fault_code} "
        f"({done.fault_string}), not {code}",
    )


def gpn(path: str, next_level: bool) -> dict[str, Any]:
    return {"name": "getParameterNames", "objectName": path, "nextLevel": next_level}


@rpc(
    "get-rpc-methods",
    "TR-069 Annex A.3.1 (Table 5), A.3.1.1",
    "GetRPCMethods lists every method Annex A requires of a CPE",
    shares_session=True,
)
async def get_rpc_methods(ctx: CheckContext) -> None:
    listed = {str(m) for m in (await answered(ctx, {"name": "getRPCMethods"})).result}
    missing = [m for m in REQUIRED_METHODS if m not in listed]
    ctx.expect(not missing, f"GetRPCMethods leaves out required methods: {', '.join(missing)}")


@rpc(
    "gpn-next-level",
    "TR-069 Annex A.3.2.3",
    "GetParameterNames of the root object with NextLevel true lists its children only, "
    "ManagementServer. among them",
    shares_session=True,
)
async def gpn_next_level(ctx: CheckContext) -> None:
    root = ctx.dut.root
    names = [str(n) for n, _w in (await answered(ctx, gpn(root, True))).result]
    deeper = [n for n in names if not n.startswith(root) or "." in n[len(root) :].rstrip(".")]
    ctx.expect(not deeper, f"NextLevel true on {root} listed more than its children: {deeper[:5]}")
    ctx.expect(ctx.dut.management in names, f"NextLevel true on {root} lacks {ctx.ms('')}")


@rpc(
    "gpn-subtree",
    "TR-069 Annex A.3.2.3",
    "GetParameterNames of a partial path with NextLevel false lists every parameter below it",
    shares_session=True,
)
async def gpn_subtree(ctx: CheckContext) -> None:
    prefix = ctx.ms("")
    names = [str(n) for n, _w in (await answered(ctx, gpn(prefix, False))).result]
    outside = [n for n in names if not n.startswith(prefix)]
    ctx.expect(not outside, f"GetParameterNames of {prefix} listed names outside it: {outside[:5]}")
    for leaf in ("URL", "ConnectionRequestURL", "PeriodicInformInterval"):
        ctx.expect(ctx.ms(leaf) in names, f"GetParameterNames of {prefix} lacks {ctx.ms(leaf)}")


@rpc(
    "gpn-leaf",
    "TR-069 Annex A.3.2.3",
    "GetParameterNames of a parameter's full name with NextLevel false lists that parameter alone",
    shares_session=True,
)
async def gpn_leaf(ctx: CheckContext) -> None:
    name = ctx.ms("ConnectionRequestURL")
    names = [str(n) for n, _w in (await answered(ctx, gpn(name, False))).result]
    ctx.expect(names == [name], f"GetParameterNames of {name} listed {names}")


@rpc(
    "gpn-invalid",
    "TR-069 Annex A.3.2.3, A.5.1 (fault 9005)",
    "GetParameterNames of a path the device lacks is answered with fault 9005",
    shares_session=True,
)
async def gpn_invalid(ctx: CheckContext) -> None:
    path = ctx.ms("KnockCheckNoSuchObject.")
    await faulted(ctx, gpn(path, False), INVALID_PARAMETER_NAME, f"of {path}")


@rpc(
    "gpv-leaf",
    "TR-069 Annex A.3.2.2",
    "GetParameterValues of a parameter gives its value and type",
    shares_session=True,
)
async def gpv_leaf(ctx: CheckContext) -> None:
    name = ctx.ms("ConnectionRequestURL")
    got = (await answered(ctx, gpv(name))).result
    ctx.expect(
        [(n, t) for n, _v, t in got] == [(name, "xsd:string")],
        f"GetParameterValues of {name} gave {got}, not the one string parameter",
    )
    ctx.expect(bool(got[0][1]), f"GetParameterValues gives {name} empty")


@rpc(
    "gpv-partial",
    "TR-069 Annex A.3.2.2",
    "GetParameterValues of a partial path gives every parameter below it, leaves only",
    shares_session=True,
)
async def gpv_partial(ctx: CheckContext) -> None:
    prefix = ctx.ms("")
    names = [str(n) for n, _v, _t in (await answered(ctx, gpv(prefix))).result]
    wrong = [n for n in names if not n.startswith(prefix) or n.endswith(".")]
    ctx.expect(not wrong, f"GetParameterValues of {prefix} gave names that do not belong: {wrong}")
    for leaf in ("URL", "ConnectionRequestURL", "PeriodicInformInterval"):
        ctx.expect(ctx.ms(leaf) in names, f"GetParameterValues of {prefix} lacks {ctx.ms(leaf)}")


@rpc(
    "gpv-invalid",
    "TR-069 Annex A.3.2.2, A.5.1 (fault 9005)",
    "GetParameterValues of a parameter the device lacks is answered with fault 9005",
    shares_session=True,
)
async def gpv_invalid(ctx: CheckContext) -> None:
    name = ctx.ms(NO_SUCH_LEAF)
    await faulted(ctx, gpv(name), INVALID_PARAMETER_NAME, f"of {name}")
