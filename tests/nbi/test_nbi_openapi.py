"""The OpenAPI document stays true to the app."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from nbi_support import Nbi

from knock.metrics import Metrics
from knock.nbi.app import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, make_nbi_app
from knock.nbi.openapi import OPENAPI
from knock.nbi.tasks import TASK_NAMES
from knock.notify import Hub
from knock.store import Store


def _routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) pairs the app serves, trailing-slash twins folded together."""
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource is not None else ""
        routes.add((route.method.lower(), path.rstrip("/") or "/"))
    return routes


def _documented() -> set[tuple[str, str]]:
    return {
        (method, path.rstrip("/") or "/")
        for path, operations in OPENAPI["paths"].items()
        for method in operations
    }


async def test_every_route_is_documented_and_nothing_else(store: Store) -> None:
    app = make_nbi_app(store, Hub(), metrics=Metrics(), ca_pem=b"PEM")
    assert _routes(app) == _documented()


def test_every_operation_lists_the_browser_refusals() -> None:
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "421" in codes, (method, path)
            changes = method in ("post", "put", "patch", "delete")
            assert ("403" in codes) == changes, (method, path)


def test_path_parameters_match_the_path() -> None:
    for path, operations in OPENAPI["paths"].items():
        for operation in operations.values():
            in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), path


def test_every_task_name_is_described() -> None:
    variants = OPENAPI["components"]["schemas"]["NewTask"]["oneOf"]
    assert [v["properties"]["name"]["const"] for v in variants] == list(TASK_NAMES)


def test_limits_are_the_apps() -> None:
    post = OPENAPI["paths"]["/devices/{device_id}/tasks"]["post"]
    (timeout,) = [p for p in post["parameters"] if p["name"] == "timeout"]
    assert timeout["schema"]["maximum"] == MAX_TIMEOUT_MS
    assert str(DEFAULT_TIMEOUT_MS) in timeout["description"]


def test_references_resolve() -> None:
    schemas = OPENAPI["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(OPENAPI):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_served(nbi: Nbi) -> None:
    async with nbi.http.get(nbi.url + "/openapi.json") as response:
        assert response.status == 200
        served = await response.json()
    assert served["openapi"] == "3.1.0"
    assert served == OPENAPI
