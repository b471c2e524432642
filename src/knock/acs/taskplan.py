"""From a stored task (GenieACS task JSON) to the RPCs that carry it out, and back to store updates.

Pure: the plan gets the task spec and the stored types of the device's parameters, hands out
RPCs one at a time and, after the last response, says what to write to the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    DeleteObject,
    Download,
    DownloadResponse,
    FactoryReset,
    GetParameterAttributes,
    GetParameterAttributesResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetRPCMethods,
    GetRPCMethodsResponse,
    ParameterInfoStruct,
    ParameterValueStruct,
    Reboot,
    Rpc,
    ScheduleInform,
    SetParameterAttributes,
    SetParameterAttributesStruct,
    SetParameterValues,
    Upload,
    UploadResponse,
)
from knock.cwmp.values import from_json
from knock.store.rows import ParamValue, TaskKey

_R = TypeVar("_R")


class TaskSpecError(ValueError):
    """The task cannot be carried out as written; the message says which field to fix."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    result: Any
    put: list[ParamValue] = field(default_factory=list)
    delete_under: list[str] = field(default_factory=list)


class TaskPlan:
    def __init__(
        self, spec: Mapping[str, Any], stored_types: Mapping[str, str], command_key: str = ""
    ) -> None:
        """*command_key*: what a download sends as CommandKey, so that the device's
        TransferComplete finds the task again (`transfer_command_key`)."""
        self._spec = spec
        self._command_key = command_key
        self._types = stored_types
        self._name = str(spec.get("name", ""))
        self._instance: int | None = None  # addObject: the instance the CPE created
        self._sent_values: list[ParameterValueStruct] = []
        self._listed: list[ParameterInfoStruct] | None = None  # refreshObject: names read

    def first(self) -> Rpc:
        spec, name = self._spec, self._name
        if name == "getParameterValues":
            return GetParameterValues(list(_strings(spec, "parameterNames")))
        if name == "setParameterValues":
            return self._set_values(spec.get("parameterValues"), prefix="")
        if name == "getParameterAttributes":
            return GetParameterAttributes(list(_strings(spec, "parameterNames")))
        if name in ("getParameterNames", "refreshObject"):
            path = str(spec.get("objectName") or spec.get("parameterName") or "")
            if name == "refreshObject" and path and not path.endswith("."):
                # GenieACS scripts name the object without its dot; GetParameterNames reads a
                # dotless path as a parameter's full name.
                path += "."
            return GetParameterNames(path, next_level=bool(spec.get("nextLevel", False)))
        if name == "addObject":
            return AddObject(_object_path(spec), parameter_key=_parameter_key(spec))
        if name == "deleteObject":
            return DeleteObject(_object_path(spec), parameter_key=_parameter_key(spec))
        if name == "getRPCMethods":
            return GetRPCMethods()
        if name == "setParameterAttributes":
            return SetParameterAttributes(_attributes(spec))
        if name == "scheduleInform":
            return ScheduleInform(
                delay_seconds=int(spec.get("delaySeconds", 0)),
                command_key=str(spec.get("commandKey", "")),
            )
        if name == "reboot":
            return Reboot(command_key=str(spec.get("commandKey", "")))
        if name == "factoryReset":
            return FactoryReset()
        if name == "download":
            if not spec.get("url"):
                raise TaskSpecError("download has no url; give url, or file naming a stored file")
            return Download(
                command_key=self._command_key,
                file_type=str(spec.get("fileType", "")),
                url=str(spec.get("url", "")),
                username=str(spec.get("username", "")),
                password=str(spec.get("password", "")),
                file_size=int(spec.get("fileSize", 0)),
                target_file_name=str(spec.get("targetFileName", "")),
            )
        if name == "upload":
            if not spec.get("url") or not spec.get("fileType"):
                raise TaskSpecError("upload needs the url to send the file to and its fileType")
            return Upload(
                command_key=self._command_key,
                file_type=str(spec["fileType"]),
                url=str(spec["url"]),
                username=str(spec.get("username", "")),
                password=str(spec.get("password", "")),
            )
        raise TaskSpecError(f"unknown task name {name!r}")

    def on_response(self, rpc: Rpc) -> Rpc | TaskOutcome:
        """The next RPC of this task, or its outcome after the last response."""
        name = self._name
        if name == "getParameterValues":
            values = _expect(rpc, GetParameterValuesResponse).parameter_list
            return TaskOutcome(
                result=[[p.name, p.value, p.type] for p in values],
                put=[ParamValue(p.name, p.value, p.type) for p in values],
            )
        if name == "getParameterAttributes":
            attributes = _expect(rpc, GetParameterAttributesResponse).parameter_list
            return TaskOutcome(
                result=[[a.name, a.notification, list(a.access_list)] for a in attributes]
            )
        if name == "getRPCMethods":
            return TaskOutcome(result=list(_expect(rpc, GetRPCMethodsResponse).method_list))
        if name == "refreshObject" and self._listed is not None:
            values = _expect(rpc, GetParameterValuesResponse).parameter_list
            return self._refreshed(self._listed, values)
        if name in ("getParameterNames", "refreshObject"):
            infos = _expect(rpc, GetParameterNamesResponse).parameter_list
            leaves = [i.name for i in infos if not i.name.endswith(".")]
            if name == "refreshObject" and leaves:
                # Then the values of the leaves it listed, by name: a device may lack
                # partial-path reads (GenieACS refreshes the same way).
                self._listed = infos
                return GetParameterValues(leaves)
            if name == "refreshObject":
                return self._refreshed(infos, [])
            return TaskOutcome(
                result=[[i.name, i.writable] for i in infos],
                put=[ParamValue(i.name, None, None, writable=i.writable) for i in infos],
            )
        if name == "addObject" and self._instance is None:
            added = _expect(rpc, AddObjectResponse)
            self._instance = added.instance_number
            initial = self._spec.get("parameterValues")
            if initial:
                return self._set_values(initial, prefix=self._instance_path)
        if name in ("setParameterValues", "addObject"):
            # The CPE accepted every value: the store now holds what was sent.
            put = [ParamValue(p.name, p.value, p.type) for p in self._sent_values]
            if self._instance is None:
                return TaskOutcome(result={"status": getattr(rpc, "status", 0)}, put=put)
            # The object took an AddObject, so it is writable (TR-069: a multi-instance
            # object's Writable means AddObject is allowed); whether the new instance may be
            # deleted, only a GetParameterNames tells.
            parent = ParamValue(_object_path(self._spec), None, None, writable=True)
            return TaskOutcome(
                result={"instanceNumber": self._instance},
                put=[parent, ParamValue(self._instance_path, None, None), *put],
            )
        if name == "deleteObject":
            return TaskOutcome(
                result={"status": getattr(rpc, "status", 0)},
                delete_under=[_object_path(self._spec)],
            )
        if name in ("download", "upload"):
            # 1: the transfer is not done yet; its TransferComplete, in a later session, is
            # recorded on this task (Store.record_transfer_complete). 0: done, at the times
            # the response gives.
            answer: DownloadResponse | UploadResponse = (
                _expect(rpc, DownloadResponse)
                if name == "download"
                else _expect(rpc, UploadResponse)
            )
            if answer.status != 0:
                return TaskOutcome(result={"status": answer.status})
            times = {"startTime": answer.start_time, "completeTime": answer.complete_time}
            return TaskOutcome(result={"status": 0, **times})
        return TaskOutcome(result={})

    @staticmethod
    def _refreshed(
        infos: list[ParameterInfoStruct], values: list[ParameterValueStruct]
    ) -> TaskOutcome:
        """refreshObject's outcome: every name with its writability, the leaves' values."""
        read = {p.name: p for p in values}
        put = []
        for info in infos:
            value = read.get(info.name)
            if value is None:
                put.append(ParamValue(info.name, None, None, writable=info.writable))
            else:
                put.append(ParamValue(info.name, value.value, value.type, writable=info.writable))
        return TaskOutcome(result=[[p.name, p.value, p.type] for p in values], put=put)

    @property
    def _instance_path(self) -> str:
        return f"{_object_path(self._spec)}{self._instance}."

    def _set_values(self, raw: Any, prefix: str) -> SetParameterValues:
        if not isinstance(raw, list) or not raw:
            raise TaskSpecError("parameterValues must be a non-empty list of [path, value, type?]")
        structs = []
        for item in raw:
            if not isinstance(item, list | tuple) or len(item) not in (2, 3):
                raise TaskSpecError(f"parameterValues entry {item!r} is not [path, value, type?]")
            path = prefix + str(item[0])
            xsd_type = str(item[2]) if len(item) == 3 else self._guess_type(path, item[1])
            try:
                text = from_json(item[1], xsd_type)
            except ValueError as exc:
                raise TaskSpecError(f"{path}: {exc}") from None
            structs.append(ParameterValueStruct(path, text, xsd_type))
        self._sent_values = structs
        return SetParameterValues(structs, parameter_key=_parameter_key(self._spec))

    def _guess_type(self, path: str, value: Any) -> str:
        stored = self._types.get(path)
        if stored:
            return stored
        if isinstance(value, bool):
            return "xsd:boolean"
        if isinstance(value, int):
            return "xsd:int"
        return "xsd:string"


def transfer_command_key(public_id: str) -> str:
    """The CommandKey of the transfer the task with NBI id *public_id* asks for (30 of the 32
    characters allowed): the id is never reused, so a late TransferComplete finds no other task."""
    return f"knock-{public_id}"


def transfer_task_id(command_key: str) -> TaskKey | None:
    """The task a TransferComplete's CommandKey names, if Knock made it: its NBI id, or the
    store's number in a key made before task ids were ObjectIds ("knock-task-42")."""
    match = re.fullmatch(r"knock-([0-9a-f]{24})|knock-task-([0-9]{1,18})", command_key)
    if match is None:
        return None
    public_id, number = match.groups()
    return public_id if public_id is not None else int(number)


def untyped_paths(spec: Mapping[str, Any]) -> list[str]:
    """Paths a setParameterValues task sets without a type: the plan needs their stored types."""
    if spec.get("name") != "setParameterValues" or not isinstance(
        spec.get("parameterValues"), list
    ):
        return []
    return [
        str(item[0])
        for item in spec["parameterValues"]
        if isinstance(item, list | tuple) and len(item) == 2
    ]


def _strings(spec: Mapping[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TaskSpecError(f"{key} must be a list of parameter paths")
    return value


def _parameter_key(spec: Mapping[str, Any]) -> str:
    """The ParameterKey a setParameterValues, addObject or deleteObject task asks the device to
    take on (TR-069 Annex A): "" unless the task names one."""
    return str(spec.get("parameterKey", ""))


def _attributes(spec: Mapping[str, Any]) -> list[SetParameterAttributesStruct]:
    """setParameterAttributes' `parameterAttributes`: [[path, notification], ...], each
    changing the Notification only."""
    raw = spec.get("parameterAttributes")
    if not isinstance(raw, list) or not raw:
        raise TaskSpecError("parameterAttributes must be a non-empty list of [path, notification]")
    structs = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2 or not isinstance(item[1], int):
            raise TaskSpecError(f"parameterAttributes entry {item!r} is not [path, notification]")
        structs.append(SetParameterAttributesStruct(str(item[0]), True, item[1], False))
    return structs


def _object_path(spec: Mapping[str, Any]) -> str:
    path = str(spec.get("objectName", ""))
    if not path:
        raise TaskSpecError("objectName is required")
    return path if path.endswith(".") else path + "."


def _expect(rpc: Rpc, kind: type[_R]) -> _R:
    if not isinstance(rpc, kind):
        raise TaskSpecError(f"expected {kind.__name__}, the CPE sent {type(rpc).__name__}")
    return rpc
