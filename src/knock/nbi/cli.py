"""`knock devices|get|set|tasks`: the NBI from a shell, for a person at a terminal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from knock.nbi.client import DEFAULT_URL, NbiClient, NbiError, TaskOutcome, parameter_values
from knock.nbi.tasks import XSD_TYPES

NbiUrl = Annotated[
    str,
    typer.Option("--nbi", envvar="KNOCK_NBI_URL", help="Base URL of the knock NBI."),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="KNOCK_NBI_TOKEN", help="Bearer token, if the NBI was started with one."
    ),
]
RequestTimeout = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the NBI to answer.")
]
DeviceTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        help="Seconds to wait for the device to connect and run the task. After that the task "
        "stays queued and runs at the device's next session.",
    ),
]
Device = Annotated[str, typer.Argument(help="Device id, as `knock devices` lists it.")]

# One line per paragraph: the help formatter keeps line breaks as they are.
SET_HELP = (
    "Set parameters on a device now: each ASSIGNMENT is PATH=VALUE, or PATH=VALUE:xsd:TYPE to "
    "give the type.\n\n"
    'The value is everything after the first "=", so it may hold ":" and "=" (URLs do). Only a '
    "final :xsd:TYPE naming an xsd type (string, int, unsignedInt, long, unsignedLong, boolean, "
    "dateTime, base64, hexBinary) is read as the type; a value that itself ends like one gets a "
    "further :xsd:string. Without a type the parameter keeps the type the device reported.\n\n"
    "Example: knock set DEVICE Device.WiFi.SSID.1.SSID=home "
    "Device.ManagementServer.PeriodicInformInterval=300:xsd:unsignedInt"
)


def register(app: typer.Typer) -> None:
    """Add the NBI client commands to the `knock` command line."""
    app.command("devices")(devices)
    app.command("get")(get)
    app.command("set", help=SET_HELP)(set_parameters)
    app.command("tasks")(tasks)
    app.command("cr")(connection_request)
    files = typer.Typer(
        help="Files CPEs download (firmware, configuration): stored in Knock's database and "
        "served on the file server's port (7567), as GenieACS does.",
        no_args_is_help=True,
    )
    files.command("put")(put_file)
    files.command("ls")(list_files)
    files.command("rm")(remove_file)
    app.add_typer(files, name="files")


def put_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The file to upload.")],
    name: Annotated[
        str | None, typer.Option(help="Name to store it under (default: the file's own).")
    ] = None,
    file_type: Annotated[
        str,
        typer.Option(
            "--file-type",
            help='TR-069 FileType a download task sends, e.g. "1 Firmware Upgrade Image", '
            '"3 Vendor Configuration File".',
        ),
    ] = "1 Firmware Upgrade Image",
    oui: Annotated[str, typer.Option(help="OUI of the devices it is for.")] = "",
    product_class: Annotated[
        str, typer.Option("--product-class", help="Product class it is for.")
    ] = "",
    version: Annotated[str, typer.Option(help="Version it installs.")] = "",
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
    timeout: RequestTimeout = 30,
) -> None:
    """Upload a file (PUT /files/<name>); a download task then names it:
    {"name": "download", "file": NAME}."""
    metadata = {
        "fileType": file_type,
        "oui": oui,
        "productClass": product_class,
        "version": version,
    }

    async def work(client: NbiClient) -> None:
        stored = await client.put_file(name or path.name, path, metadata)
        _out().print(f"stored {stored['_id']}: {stored['length']} bytes, md5 {stored['md5']}")

    _run(NbiClient(nbi, token=token, timeout_s=timeout), work)


def list_files(
    nbi: NbiUrl = DEFAULT_URL, token: Token = None, timeout: RequestTimeout = 30
) -> None:
    """List stored files: name, size, type, OUI, product class, version, upload date."""

    async def work(client: NbiClient) -> None:
        found = await client.files()
        rows = []
        for doc in found:
            meta = doc.get("metadata", {})
            rows.append(
                [
                    doc["_id"],
                    str(doc["length"]),
                    meta.get("fileType", ""),
                    meta.get("oui", ""),
                    meta.get("productClass", ""),
                    meta.get("version", ""),
                    doc["uploadDate"],
                ]
            )
        headers = ["Name", "Bytes", "File type", "OUI", "Product class", "Version", "Uploaded"]
        _print_table(headers, rows, 0, 1, 6)

    _run(NbiClient(nbi, token=token, timeout_s=timeout), work)


def remove_file(
    name: Annotated[
        str, typer.Argument(help="The stored file's name, as `knock files ls` shows it.")
    ],
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
    timeout: RequestTimeout = 30,
) -> None:
    """Delete a stored file; download tasks naming it fault at their next session."""

    async def work(client: NbiClient) -> None:
        await client.delete_file(name)
        _out().print(f"deleted {name}")

    _run(NbiClient(nbi, token=token, timeout_s=timeout), work)


def devices(
    query: Annotated[
        str | None,
        typer.Option(help='GenieACS query (JSON), e.g. \'{"_deviceId._ProductClass": "HG8245"}\'.'),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many devices.")] = 100,
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
    timeout: RequestTimeout = 30,
) -> None:
    """List devices: id, manufacturer, product class, serial number, last inform."""
    try:
        parsed = json.loads(query) if query is not None else None
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--query") from exc

    async def work(client: NbiClient) -> None:
        found = await client.devices(parsed, projection="_id,_deviceId,_lastInform", limit=limit)
        rows = [
            [
                doc["_id"],
                doc.get("_deviceId", {}).get("_Manufacturer", ""),
                doc.get("_deviceId", {}).get("_ProductClass", ""),
                doc.get("_deviceId", {}).get("_SerialNumber", ""),
                doc.get("_lastInform", "never"),
            ]
            for doc in found
        ]
        _print_table(["ID", "Manufacturer", "Product class", "Serial", "Last inform"], rows, 0, 4)
        if len(found) == limit:
            _out().print(f"(first {limit}; raise --limit to see more)")

    _run(NbiClient(nbi, token=token, timeout_s=timeout), work)


def get(
    device: Device,
    paths: Annotated[
        list[str], typer.Argument(help="Parameter paths; a path ending in '.' reads a subtree.")
    ],
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
    timeout: DeviceTimeout = 20,
) -> None:
    """Read parameters from a device now: it is asked to connect and report them."""

    async def work(client: NbiClient) -> None:
        task = {"name": "getParameterValues", "parameterNames": paths}
        _require_done(device, await client.run_task(device, task, timeout))
        found = await client.devices({"_id": device}, projection=",".join(paths))
        _print_values(found[0] if found else {})

    _run(NbiClient(nbi, token=token), work)


def set_parameters(
    device: Device,
    assignments: Annotated[list[str], typer.Argument(help="PATH=VALUE or PATH=VALUE:xsd:TYPE.")],
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
    timeout: DeviceTimeout = 20,
) -> None:
    values = [parse_assignment(text) for text in assignments]

    async def work(client: NbiClient) -> None:
        task = {"name": "setParameterValues", "parameterValues": values}
        _require_done(device, await client.run_task(device, task, timeout))
        found = await client.devices(
            {"_id": device}, projection=",".join(value[0] for value in values)
        )
        _print_values(found[0] if found else {})

    _run(NbiClient(nbi, token=token), work)


def tasks(
    device: Annotated[str | None, typer.Option(help="Only this device's tasks.")] = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Also list the tasks that ran (status done), which GET /tasks/ leaves out "
            "as GenieACS does.",
        ),
    ] = False,
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
    timeout: RequestTimeout = 30,
) -> None:
    """List pending and faulted tasks, oldest first, with their status and fault."""

    async def work(client: NbiClient) -> None:
        query = {"device": device} if device is not None else None
        found = await client.tasks(query, history=history)
        headers = ["ID", "Device", "Name", "Status", "Created"]
        rows = [
            [task["_id"], task["device"], task["name"], task["status"], task["timestamp"]]
            for task in found
        ]
        if any("fault" in task for task in found):
            headers.append("Fault")
            for row, task in zip(rows, found, strict=True):
                row.append(fault_sentence(task["fault"]) if "fault" in task else "")
        _print_table(headers, rows, 0, 1, 2, 3)

    _run(NbiClient(nbi, token=token, timeout_s=timeout), work)


def connection_request(
    device: Device,
    via: Annotated[
        str | None,
        typer.Option(help="Only this method (http, udp, xmpp); default: the device's order."),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, help="Seconds allowed for the device to open its session."
        ),
    ] = 30,
    nbi: NbiUrl = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Make a device open a session now, and show how: outcome, method and latency (from the
    request to the device's Inform with 6 CONNECTION REQUEST), attempt by attempt."""

    async def work(client: NbiClient) -> None:
        result = await client.connection_request(device, via, wait)
        rows = [
            [a["method"], a["outcome"], f"{a['ms']:.0f} ms", a["detail"]]
            for a in result["attempts"]
        ]
        _print_table(["Method", "Outcome", "Took", "Detail"], rows, 0, 1)
        if result["outcome"] != "delivered":
            raise NbiError(f"{device}: {result['outcome']}: {result['detail']}")
        _out().print(f"delivered by {result['method']} in {result['latencyMs']:.0f} ms")

    _run(NbiClient(nbi, token=token), work)


def parse_assignment(text: str) -> list[str]:
    """PATH=VALUE -> [path, value]; PATH=VALUE:xsd:TYPE -> [path, value, "xsd:TYPE"]."""
    path, equals, value = text.partition("=")
    if not equals or not path:
        raise typer.BadParameter(f"{text!r}: write PATH=VALUE or PATH=VALUE:xsd:TYPE")
    typed_value, suffix, type_name = value.rpartition(":xsd:")
    if suffix and f"xsd:{type_name}" in XSD_TYPES:
        return [path, typed_value, f"xsd:{type_name}"]
    return [path, value]


def _require_done(device: str, outcome: TaskOutcome) -> None:
    task_id = outcome.task.get("_id")
    later = f"task {task_id} stays queued and runs at the device's next session"
    if outcome.connection_request_error is not None:
        raise NbiError(
            f"the connection request failed ({outcome.connection_request_error}); {later}"
        )
    fault = outcome.task.get("fault")
    if fault:
        raise NbiError(fault_sentence(fault))
    if outcome.status != 200:
        raise NbiError(
            f"{device} did not run the task in time; {later} (see `knock tasks --device "
            f"{device}`, or allow longer with --timeout)"
        )


def fault_sentence(fault: dict[str, Any]) -> str:
    """Who refused a task and why, each parameter's own fault included. Knock's own refusals
    (fault code "knock": a task it could not turn into an RPC) never reached the device."""
    if fault.get("code") == "knock":
        return f"Knock refused the task before sending it: {fault['message']}"
    per_parameter = [
        f"{item['parameter']}: {item['code']} {item['message']}"
        for item in fault.get("detail") or ()
        if isinstance(item, dict) and "parameter" in item
    ]
    because = f" ({'; '.join(per_parameter)})" if per_parameter else ""
    return f"the device refused: {fault['code']}: {fault['message']}{because}"


def _print_values(doc: dict[str, Any]) -> None:
    rows = [
        [path, json.dumps(value) if isinstance(value, bool) else str(value), xsd_type]
        for path, value, xsd_type in parameter_values(doc)
    ]
    _print_table(["Parameter", "Value", "Type"], rows, 0, 2)


def _print_table(headers: list[str], rows: list[list[str]], *whole: int) -> None:
    """Columns numbered in `whole` (ids, paths, dates: for copying) are never wrapped nor cut
    short; the others fold to fit the terminal."""
    columns = [
        Column(h, no_wrap=True, min_width=max([len(h), *(len(row[i]) for row in rows)]))
        if i in whole
        else Column(h, overflow="fold")
        for i, h in enumerate(headers)
    ]
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    _out().print(table)


def _out() -> Console:
    # Made at print time, so the output goes wherever stdout points then (tests swap it).
    return Console()


def _run(client: NbiClient, work: Callable[[NbiClient], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with client:
            await work(client)

    try:
        asyncio.run(main())
    except NbiError as exc:
        Console(stderr=True).print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        raise typer.Exit(1) from exc
