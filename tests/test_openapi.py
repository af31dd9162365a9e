"""The API's document (docs/openapi.json) and the server's routes agree: every route the
app serves is documented, with its path parameters, and every documented operation is
served. A route added without its documentation, or documentation left behind by a
route renamed, fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from artisync.registry.postgres import PostgresRegistry
from artisync.server import create_app
from artisync.server.access.directory import Directory
from artisync.server.access.gate import Gate

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
_METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture
def app(postgres_dsn: str) -> Iterator[web.Application]:
    secret = b"a secret of the document's test"
    with PostgresRegistry(postgres_dsn, max_size=1) as registry:
        gate = Gate(Directory(postgres_dsn, secret), secret, pool_size=1)
        try:
            yield create_app(registry, gate, max_body_bytes=1 << 20, workers=1)
        finally:
            gate.close()


@pytest.fixture
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def _served(app: web.Application) -> set[tuple[str, str]]:
    # aiohttp adds HEAD beside every GET by itself; the API does not offer it as such.
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in _METHODS
    }


def test_every_route_is_documented_and_every_documented_operation_is_served(
    app: web.Application, document: dict[str, Any]
) -> None:
    served, documented = _served(app), _documented(document)
    assert served - documented == set(), "routes missing from docs/openapi.json"
    assert documented - served == set(), "docs/openapi.json operations no route serves"


def test_documented_path_parameters_are_the_templates_placeholders(
    document: dict[str, Any],
) -> None:
    for path, operations in document["paths"].items():
        placeholders = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == placeholders, f"{method.upper()} {path}"


def test_every_schema_referenced_is_defined(document: dict[str, Any]) -> None:
    text = json.dumps(document["paths"]) + json.dumps(document["components"])
    referenced = set(re.findall(r"#/components/schemas/(\w+)", text))
    assert referenced <= set(document["components"]["schemas"])
    assert document["openapi"].startswith("3.")
