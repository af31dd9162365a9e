"""The server's routes for what a run keeps beside its artifacts (tags, notes, sweep,
history) and for sweeps, as any HTTP caller reaches them: a bad field is a 400 naming it,
and a history batch larger than the server takes in one body reaches it in several. The
registry's rules are the contract suite's (``test_registry_run_tracking.py``, ``[http]``);
who may call them is ``test_server_access.py``'s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from aiohttp_servers import ThreadServer
from artisync.registry.http import HttpRegistry
from conftest import TEST_API_KEY
from registry_server import served_app

RUN = "/api/v1/runs/local/proj/r1"


@pytest.fixture
def server(postgres_dsn: str) -> Iterator[ThreadServer]:
    """The app with a 1 MiB body limit, and run ``local/proj/r1``."""
    with served_app(postgres_dsn, max_body_bytes=1 << 20) as served:
        with HttpRegistry(served.url) as client:
            client.ensure_run("proj", None, "r1")
        yield served


def _send(server: ThreadServer, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = urllib3.request(
        method,
        server.url + path,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TEST_API_KEY}"},
        retries=False,
        timeout=30,
    )
    return response.status, json.loads(response.data)


BAD_FIELDS: list[tuple[str, str, Any, str]] = [
    ("PUT", RUN, {"tags": "baseline"}, "tags"),
    ("PUT", RUN, {"tags": ["ok", ""]}, "tags[1]"),
    ("PUT", RUN, {"tags": ["t" * 65]}, "tags[0]"),
    ("PUT", RUN, {"notes": ["n"]}, "notes"),
    ("PUT", RUN, {"notes": "n" * 70_000}, "notes"),
    ("PUT", RUN, {"sweep": "a/b"}, "sweep"),
    ("PUT", RUN, {"sweep": ""}, "sweep"),
    ("POST", f"{RUN}/history", {}, "rows"),
    ("POST", f"{RUN}/history", {"rows": {"_step": 0}}, "rows"),
    ("POST", f"{RUN}/history", {"rows": [{"_step": 0}, [1]]}, "rows[1]"),
    ("POST", f"{RUN}/history", {"rows": [{"_step": i} for i in range(1001)]}, "rows"),
    ("POST", f"{RUN}/history", {"rows": [], "step": 3}, "step"),
    ("PUT", "/api/v1/sweeps/local/proj/sw", {}, "config"),
    ("PUT", "/api/v1/sweeps/local/proj/sw", {"config": ["grid"]}, "config"),
    ("PUT", "/api/v1/sweeps/local/proj/a:b", {"config": {}}, "sweep_id"),
    ("GET", "/api/v1/sweeps/local/proj/a%2Fb", None, "sweep_id"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_FIELDS)
def test_a_bad_field_is_400_naming_it(
    server: ThreadServer, method: str, path: str, body: Any, field: str
) -> None:
    status, answer = _send(server, method, path, body)
    assert (status, answer.get("field")) == (400, field), answer
    assert answer["kind"] == "InvalidInputError" and answer["error"].startswith(f"{field}: ")


def test_rows_the_registry_refuses_are_400_naming_the_row(server: ThreadServer) -> None:
    status, answer = _send(server, "POST", f"{RUN}/history", {"rows": [{"loss": 1.0}]})
    assert (status, answer["kind"]) == (400, "InvalidInputError")
    assert "history row 0 of run 'r1' must have '_step'" in answer["error"]
    status, answer = _send(server, "POST", "/api/v1/runs/local/proj/ghost/history", {"rows": []})
    assert (status, answer["kind"]) == (404, "NotFoundError")


def test_history_and_sweeps_travel_as_the_document_says(server: ThreadServer) -> None:
    status, run = _send(server, "PUT", RUN, {"tags": ["a", "a", "b"], "notes": "n", "sweep": "s"})
    assert status == 200 and (run["tags"], run["notes"], run["sweep"]) == (["a", "b"], "n", "s")
    rows = [{"_step": 1, "x": 2}, {"_step": 0, "x": 1}]
    assert _send(server, "POST", f"{RUN}/history", {"rows": rows}) == (200, None)
    assert _send(server, "GET", f"{RUN}/history", None) == (200, [rows[1], rows[0]])
    status, sweep = _send(server, "PUT", "/api/v1/sweeps/local/proj/s", {"config": {"a": 1}})
    assert status == 200 and (sweep["id"], sweep["config"], sweep["state"]) == (
        "s",
        {"a": 1},
        "RUNNING",
    )
    assert _send(server, "GET", "/api/v1/sweeps/local/proj/s", None) == (200, sweep)
    status, answer = _send(server, "PUT", "/api/v1/sweeps/local/proj/s", {"config": {"a": 2}})
    assert status == 400 and "exists already with another config" in answer["error"]


def test_a_batch_over_the_servers_body_limit_is_sent_in_parts(server: ThreadServer) -> None:
    rows = [{"_step": i, "text": "x" * 3000} for i in range(1000)]  # 3 MB: thrice the limit
    with HttpRegistry(server.url) as client:
        client.append_history("proj", "r1", rows)
        assert client.run_history("proj", "r1") == rows
