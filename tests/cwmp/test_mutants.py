"""Mutation check: every change to the codec's wire names and order is caught.

The codec describes each message once, in the table of `_Shape`s `knock.cwmp.envelope` derives
from the dataclasses of `knock.cwmp.rpcs` (one `_Field` per element: its name, in order). Each
mutant here edits that table in-process: renames one element (``URL`` -> ``Url``), drops one,
swaps two neighbours, renames an array's item element or its arrayType, renames a
ParameterValueStruct's Name or Value, a CWMP header, a SOAP envelope or Fault element or
attribute, or binds the CWMP namespace to another prefix. Every mutant must make a golden
fail (`golden_failure`: parse, build, compare), and every one but the few the spec allows must
also make a message built from the goldens fail the schema alone, since that is the check
every other test runs under.
Editing the table rather than the source keeps the run to seconds: no re-import, no pytest
per mutant. `make mutants` runs this file and prints what killed each mutant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cwmp_goldens import GOLDENS, golden_failure

from knock.cwmp import CWMP_1_2
from knock.cwmp import envelope as codec
from knock.cwmp.namespaces import NSMAPS
from wire_schema import wire_errors

Mutant = tuple[str, Callable[[], Callable[[], None]]]
"""A description, and a function that applies the mutation and returns its undo."""

# Elements whose absence the spec allows (A.5: a Fault's FaultString and SetParameterValuesFault
# are optional), so the schema cannot object to their being dropped; the goldens still must.
SCHEMA_ALLOWS_DROPPING = {
    "Fault.FaultString",
    "Fault.SetParameterValuesFault",
    "SetParameterValuesFault.FaultString",
}


def _renamed(tag: str) -> str:
    """A plausible misspelling: URL -> Url, SuccessURL -> Successurl, Name -> name."""
    capitalized = tag.capitalize()
    return capitalized if capitalized != tag else tag.lower()


def _set_fields(shape: codec._Shape, fields: tuple[codec._Field, ...]) -> Callable[[], None]:
    saved = (shape.fields, shape.by_tag, shape.required)
    shape.fields = fields
    shape.by_tag = {f.tag: f for f in fields}
    shape.required = tuple(f for f in fields if f.required)

    def undo() -> None:
        shape.fields, shape.by_tag, shape.required = saved

    return undo


def _set_attr(obj: object, attr: str, value: object) -> Callable[[], None]:
    saved = getattr(obj, attr)
    setattr(obj, attr, value)
    return lambda: setattr(obj, attr, saved)


def _shape_mutants(shape: codec._Shape) -> Iterator[Mutant]:
    name = shape.cls.__name__
    fields = shape.fields
    for i, f in enumerate(fields):
        renamed = (*fields[:i], dataclasses.replace(f, tag=_renamed(f.tag)), *fields[i + 1 :])
        dropped = fields[:i] + fields[i + 1 :]
        yield (
            f"{name}.{f.tag} renamed {_renamed(f.tag)}",
            lambda s=shape, r=renamed: _set_fields(s, r),
        )
        yield f"{name}.{f.tag} dropped", lambda s=shape, d=dropped: _set_fields(s, d)
        if i + 1 < len(fields):
            swapped = (*fields[:i], fields[i + 1], f, *fields[i + 2 :])
            yield (
                f"{name}.{f.tag} after {fields[i + 1].tag}",
                lambda s=shape, w=swapped: _set_fields(s, w),
            )
        if isinstance(f.codec, codec._Array):
            array = f.codec
            yield (
                f"{name}.{f.tag} items named {_renamed(array.item_tag)}",
                lambda a=array: _set_attr(a, "item_tag", _renamed(a.item_tag)),
            )
            prefix, _, item = array.array_type.partition(":")
            other = "cwmp" if prefix == "xsd" else "xsd"
            yield (
                f"{name}.{f.tag} arrayType {other}:{item}",
                lambda a=array, t=f"{other}:{item}": _set_attr(a, "array_type", t),
            )


def _parameter_value_mutants() -> Iterator[Mutant]:
    codec_ = codec._PARAMETER_VALUE
    for attr in ("name_tag", "value_tag"):
        tag = getattr(codec_, attr)
        wrong = _renamed(tag)
        yield (
            f"ParameterValueStruct.{tag} renamed {wrong}",
            lambda a=attr, w=wrong: _set_attr(codec_, a, w),
        )


# The names the envelope code keeps in module constants: SOAP's (qualified) and the CWMP
# headers' and SOAP Fault parts' (local).
_ENVELOPE_NAMES = (
    "_HEADER",
    "_BODY",
    "_SOAP_FAULT",
    "_MUST_UNDERSTAND",
    "_XSI_TYPE",
    "_ID",
    "_HOLD_REQUESTS",
    "_SESSION_TIMEOUT",
    "_FAULTCODE",
    "_FAULTSTRING",
    "_DETAIL",
)


def _envelope_mutants() -> Iterator[Mutant]:
    for constant in _ENVELOPE_NAMES:
        namespace, brace, local = getattr(codec, constant).rpartition("}")
        wrong = _renamed(local)
        yield (
            f"envelope {local} renamed {wrong}",
            lambda c=constant, w=f"{namespace}{brace}{wrong}": _set_attr(codec, c, w),
        )


def _prefix_mutant() -> Mutant:
    def apply() -> Callable[[], None]:
        saved = dict(NSMAPS[CWMP_1_2])
        NSMAPS[CWMP_1_2] = {("dslf" if k == "cwmp" else k): v for k, v in saved.items()}
        return lambda: NSMAPS.__setitem__(CWMP_1_2, saved)

    return "the cwmp namespace bound to prefix dslf", apply


def mutants() -> list[Mutant]:
    found = [m for shape in list(codec._SHAPE_CACHE.values()) for m in _shape_mutants(shape)]
    return [
        *found,
        *_parameter_value_mutants(),
        *_envelope_mutants(),
        _prefix_mutant(),
    ]


@contextmanager
def applied(mutant: Mutant) -> Iterator[None]:
    undo = mutant[1]()
    try:
        yield
    finally:
        undo()


def golden_killer() -> str | None:
    """The first golden the codec as it stands now fails, or None."""
    for golden in GOLDENS:
        if golden_failure(golden, CWMP_1_2) is not None:
            return golden.path
    return None


def schema_killer() -> str | None:
    """The first golden whose message the codec as it stands now builds off-schema, or None."""
    for golden in GOLDENS:
        if wire_errors(golden.build(CWMP_1_2)):
            return golden.path
    return None


def test_the_unmutated_codec_passes() -> None:
    assert (golden_killer(), schema_killer()) == (None, None)


def test_every_mutant_is_caught() -> None:
    table = []
    for mutant in mutants():
        with applied(mutant):
            table.append((mutant[0], golden_killer(), schema_killer()))
    assert (golden_killer(), schema_killer()) == (None, None), "a mutant was not undone"
    width = max(len(row[0]) for row in table)
    print(f"\n{'mutant':{width}}  killed by golden / by the schema alone")
    for description, by_golden, by_schema in table:
        print(f"{description:{width}}  {by_golden} / {by_schema}")
    assert len(table) > 300
    assert [row[0] for row in table if row[1] is None] == []
    schema_survivors = {row[0].removesuffix(" dropped") for row in table if row[2] is None}
    assert schema_survivors == SCHEMA_ALLOWS_DROPPING
