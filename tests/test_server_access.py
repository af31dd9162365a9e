"""Who may do what on ``artisync server``: the ACL matrix, against a table written out
here by hand (W&B's FAQ: private, public, open), never computed by the code under test.

Callers: no key at all, a key the server never made, a revoked key, a user outside the
team, and the team's viewer, member and admin. Each cell works on versions of its own,
so a delete in one cell cannot change another's answers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from artisync.errors import ForbiddenError, NotFoundError, UnauthorizedError
from artisync.registry import NewVersion
from artisync.registry.http import HttpRegistry
from artisync.server.access.directory import Directory
from artisync.server.access.secret import load_secret
from artisync.views.lineage import build_lineage, render_text
from artisync.views.lineage import to_json as lineage_json
from conftest import TEST_API_KEY
from server_process import Server

TEAM = "vision"
OPERATIONS = (
    "list",
    "read",
    "lineage",
    "log",
    "aliases",
    "edit",
    "delete",
    "gc",
    "history",
    "log history",
    "sweep",
    "new sweep",
)

# caller -> visibility -> the status of each operation, in OPERATIONS' order; the last
# four (a run's history, writing it, a sweep, creating one) after a "|".
ALL_401 = "401 401 401 401 401 401 401 401 | 401 401 401 401"
EXPECTED: dict[str, dict[str, str]] = {
    "anonymous": {"private": ALL_401, "public": ALL_401, "open": ALL_401},
    "unknown key": {"private": ALL_401, "public": ALL_401, "open": ALL_401},
    "revoked key": {"private": ALL_401, "public": ALL_401, "open": ALL_401},
    "outsider": {
        "private": "404 404 404 404 404 404 404 403 | 404 404 404 404",
        "public": "200 200 200 403 403 403 403 403 | 200 403 200 403",
        "open": "200 200 200 200 200 200 200 403 | 200 200 200 200",
    },
    "viewer": {
        "private": "200 200 200 403 403 403 403 403 | 200 403 200 403",
        "public": "200 200 200 403 403 403 403 403 | 200 403 200 403",
        "open": "200 200 200 200 200 200 200 403 | 200 200 200 200",
    },
    "member": {
        "private": "200 200 200 200 200 200 200 403 | 200 200 200 200",
        "public": "200 200 200 200 200 200 200 403 | 200 200 200 200",
        "open": "200 200 200 200 200 200 200 403 | 200 200 200 200",
    },
    "admin": {
        "private": "200 200 200 200 200 200 200 403 | 200 200 200 200",
        "public": "200 200 200 200 200 200 200 403 | 200 200 200 200",
        "open": "200 200 200 200 200 200 200 403 | 200 200 200 200",
    },
}


def _version(project: str, name: str, digest: str) -> NewVersion:
    return NewVersion(
        submission_id=uuid.uuid4().hex,
        project=project,
        entity=TEAM,
        name=name,
        type="model",
        digest=digest,
        manifest_key=f"manifests/{digest}.json",
        size=1,
        file_count=1,
    )


def _status(operation: Callable[[], Any]) -> str:
    try:
        operation()
    except UnauthorizedError:
        return "401"
    except ForbiddenError:
        return "403"
    except NotFoundError:
        return "404"
    return "200"


@pytest.fixture(scope="module")
def world(
    postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server with team ``vision`` (admin, member, viewer), an outsider, a revoked
    key, and a project of each visibility; the keys of every caller."""
    name = postgres_server.create_database()
    dsn = postgres_server.dsn(name)
    logs = tmp_path_factory.mktemp("access")
    server = Server(dsn, logs / "server.log")
    try:
        server.wait_until("/readyz", 200)
        directory = Directory(dsn, load_secret(logs / "server-secret"))
        directory.create_team(TEAM)
        keys = {"anonymous": "", "unknown key": "ask_" + "x" * 43}
        for user, role in (("alice", "admin"), ("bob", "member"), ("carol", "viewer")):
            directory.create_user(user)
            directory.add_member(TEAM, user, role)
            keys[role] = directory.create_key(user)
        directory.create_user("mallory")
        keys["outsider"] = directory.create_key("mallory")
        directory.create_user("trent")
        revoked = directory.create_key("trent")
        directory.add_member(TEAM, "trent", "admin")
        directory.revoke_key(revoked[:12])
        keys["revoked key"] = revoked
        with HttpRegistry(server.url, api_key=TEST_API_KEY) as admin:
            for visibility in ("private", "public", "open"):
                admin.commit_version(_version(visibility, "seed", "seed"))
                if visibility != "private":
                    directory.set_visibility(TEAM, visibility, visibility)
            admin.ensure_run("private", TEAM, "hidden-run")
            admin.create_sweep("private", "hidden-sweep", {"method": "grid"}, TEAM)
        yield server, keys
    finally:
        server.stop()
        postgres_server.drop_database(name)


@pytest.mark.parametrize("visibility", ["private", "public", "open"])
@pytest.mark.parametrize("caller", list(EXPECTED))
def test_acl_matrix(world: tuple[Server, dict[str, str]], caller: str, visibility: str) -> None:
    server, keys = world
    cell = caller.replace(" ", "-")
    with HttpRegistry(server.url, api_key=TEST_API_KEY) as admin:
        mine = admin.commit_version(_version(visibility, cell, "a")).version
        admin.commit_version(_version(visibility, cell, "b"))
        admin.ensure_run(visibility, TEAM, cell, tags=["seed"])
        admin.append_history(visibility, cell, [{"_step": 0, "loss": 1.0}], TEAM)
        admin.create_sweep(visibility, cell, {"method": "grid"}, TEAM)
    with HttpRegistry(server.url, api_key=keys[caller]) as client:
        operations: dict[str, Callable[[], Any]] = {
            "list": lambda: client.list_versions(visibility, cell, TEAM),
            "read": lambda: client.get_version(visibility, cell, "v0", TEAM),
            "lineage": lambda: client.used_by(mine.id),
            "log": lambda: client.commit_version(_version(visibility, cell, "c")),
            "aliases": lambda: client.set_aliases(mine.id, ["best"]),
            "edit": lambda: client.update_version(mine.id, description="edited"),
            "delete": lambda: client.delete_version(mine.id, delete_aliases=True),
            "gc": lambda: client.expired_versions(0.0),
            "history": lambda: client.run_history(visibility, cell, TEAM),
            "log history": lambda: client.append_history(
                visibility, cell, [{"_step": 1, "loss": 0.5}], TEAM
            ),
            "sweep": lambda: client.get_sweep(visibility, cell, TEAM),
            "new sweep": lambda: client.create_sweep(visibility, f"{cell}-2", {}, TEAM),
        }
        statuses = [_status(operations[name]) for name in OPERATIONS]
        got = " ".join([*statuses[:8], "|", *statuses[8:]])
    assert got == EXPECTED[caller][visibility], f"{caller} on {visibility}: {OPERATIONS}"


def test_a_hidden_project_answers_as_one_that_does_not_exist(
    world: tuple[Server, dict[str, str]],
) -> None:
    server, keys = world
    with HttpRegistry(server.url, api_key=keys["outsider"]) as outsider:
        with pytest.raises(NotFoundError) as hidden:
            outsider.get_version("private", "seed", "latest", TEAM)
        with pytest.raises(NotFoundError) as absent:
            outsider.get_version("no-such-project", "seed", "latest", TEAM)
        assert str(hidden.value).replace("private", "P") == str(absent.value).replace(
            "no-such-project", "P"
        )
        assert outsider.list_runs("private", TEAM) == outsider.list_runs("no-such", TEAM) == []
        # A run's history and a sweep of a hidden project: as if the project were not there.
        for read in (
            lambda project: outsider.run_history(project, "hidden-run", TEAM),
            lambda project: outsider.get_sweep(project, "hidden-sweep", TEAM),
        ):
            with pytest.raises(NotFoundError) as hidden:
                read("private")
            with pytest.raises(NotFoundError) as absent:
                read("no-such-project")
            assert str(hidden.value).replace("private", "P") == str(absent.value).replace(
                "no-such-project", "P"
            )
        projects = {(p.entity, p.name) for p in outsider.list_projects()}
        assert (TEAM, "public") in projects and (TEAM, "private") not in projects


def test_a_revoked_key_stops_within_moments_on_a_server_that_cached_it(
    world: tuple[Server, dict[str, str]],
) -> None:
    server, _ = world
    directory = Directory(server.dsn, load_secret(server.log_path.parent / "server-secret"))
    directory.create_user("dave")
    key = directory.create_key("dave")
    with HttpRegistry(server.url, api_key=key) as client:
        client.list_projects()  # the server has the key cached now
        directory.revoke_key(key[:12])
        # The server hears of it by a notification, in milliseconds.
        deadline = time.monotonic() + 2
        while _status(client.list_projects) != "401":
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.01)
    listed = {k.prefix: k for k in directory.list_keys("dave")}
    assert listed[key[:12]].revoked_at is not None


def test_lineage_shows_a_hidden_neighbour_as_hidden_never_by_name(
    world: tuple[Server, dict[str, str]],
) -> None:
    server, keys = world
    with HttpRegistry(server.url, api_key=TEST_API_KEY) as admin:
        secret = _version("private", "secret-data", "s")
        secret = replace(secret, run_id="private-maker")
        made = admin.commit_version(secret).version
        admin.ensure_run("public", TEAM, "public-user")
        admin.record_use("public-user", made.id, project="public", entity=TEAM)
        shown = admin.commit_version(
            replace(_version("public", "report", "r"), run_id="public-user")
        ).version
        admin.ensure_run("private", TEAM, "private-reader")
        admin.record_use("private-reader", shown.id, project="private", entity=TEAM)
    with HttpRegistry(server.url, api_key=keys["outsider"]) as outsider:
        used = outsider.used_by_run("public-user", project="public", entity=TEAM)
        assert [v.hidden for v in used] == [True]
        assert (used[0].name, used[0].project, used[0].id) == ("", "", "")
        readers = outsider.used_by(shown.id)
        assert [r.hidden for r in readers] == [True] and readers[0].id == ""
        graph = build_lineage(outsider, shown, depth=2)
        text = render_text(graph)
        assert "hidden" in text and "secret" not in text and "private" not in text
        assert "private" not in json.dumps(lineage_json(graph))
    with HttpRegistry(server.url, api_key=keys["member"]) as member:
        used = member.used_by_run("public-user", project="public", entity=TEAM)
        assert [(v.hidden, v.name) for v in used] == [(False, "secret-data")]
