"""Bounds on names and lesser inputs (issue 13): what an attack on them found, pinned.

Each bound holds on both sides: in the SDK, at the call that takes the value, and in
the daemon, for a submission written by anything else (checked here through a real
daemon, by files dropped into its spool).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import artisync
from artisync.daemon.expand import Item
from artisync.daemon.version_entries import (
    DuplicatePathError,
    PathConflictError,
    VersionEntries,
)
from artisync.errors import InvalidInputError, SubmissionError
from artisync.names import (
    normalize_entry_path,
    parse_artifact_path,
    validate_alias,
    validate_artifact_type,
    validate_distributed_id,
    validate_entity,
    validate_project,
    validate_run_id,
    validate_run_label,
    validate_tag,
)
from artisync.references.uri import check_reference
from artisync.registry.model import Collection, Run, Version
from artisync.spool import Spool, Submission, next_seq
from artisync.views.lineage import (
    LineageEdge,
    LineageGraph,
    LineageNode,
    render_dot,
    render_text,
)
from artisync.views.listing import collections_text, versions_text
from daemon_harness import DaemonProcess, result_of, short_home, staged_submission
from malformed_submissions import valid, write_snapshot
from mount_namespace import Ballast, in_mount_namespace, mount_tmpfs


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    for home in short_home():
        d = DaemonProcess(home)
        d.start()
        yield d
        d.kill()


def _rejected(daemon: DaemonProcess, data: Callable[[str], bytes]) -> str:
    """Drop the submission ``data`` renders for a fresh id; return why it was rejected."""
    spool = Spool(daemon.config.spool)
    sub_id = os.urandom(16).hex()
    write_snapshot(spool, sub_id)
    tmp = spool.folder("tmp") / f"{sub_id}.json"
    tmp.write_bytes(data(sub_id))
    spool.publish(tmp, next_seq())
    result = result_of(spool, sub_id)
    assert result["status"] == "rejected", result
    reason = str(result["reason"])
    assert not reason.startswith("internal error"), reason
    return reason


def _edited(edit: Callable[[dict[str, Any]], None]) -> Callable[[str], bytes]:
    def render(sub_id: str) -> bytes:
        obj = valid(sub_id)
        edit(obj)
        return json.dumps(obj).encode()

    return render


def _setter(*path: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(obj: dict[str, Any]) -> None:
        target: Any = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


# Every field that names something: its validator, its place in a submission, and the
# words its error uses.
NAMED: dict[str, tuple[Callable[[str], object], tuple[str | int, ...], str]] = {
    "project": (validate_project, ("project",), "project name"),
    "entity": (validate_entity, ("entity",), "entity"),
    "type": (validate_artifact_type, ("artifact", "type"), "artifact type"),
    "alias": (validate_alias, ("artifact", "aliases", 0), "alias"),
    "run id": (validate_run_id, ("run", "id"), "run id"),
    "run name": (lambda v: validate_run_label(v, "run name"), ("run", "name"), "run name"),
    "run group": (lambda v: validate_run_label(v, "run group"), ("run", "group"), "run group"),
    "job type": (
        lambda v: validate_run_label(v, "run job_type"),
        ("run", "job_type"),
        "run job_type",
    ),
    "distributed_id": (validate_distributed_id, ("distributed_id",), "distributed_id"),
}


@pytest.mark.parametrize("field", sorted(NAMED))
@pytest.mark.parametrize("control", ["\x00", "\x1b[2J", "\r", "\x7f", "\x9b"])
def test_names_with_control_characters_are_refused_naming_the_field(
    field: str, control: str
) -> None:
    validate, _, words = NAMED[field]
    with pytest.raises(InvalidInputError, match=f"Invalid {words} .*control character"):
        validate(f"ok{control}name")
    with pytest.raises(InvalidInputError, match="Invalid tag"):
        validate_tag(f"ok{control}name")


def test_the_sdk_refuses_control_characters_at_the_call(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(InvalidInputError, match="project name 'p\\\\x00'"):
        artisync.init(project="p\x00", home=home)
    for key in ("entity", "job_type", "group", "name", "id"):
        with pytest.raises(InvalidInputError, match="control character '\\\\x1b'"):
            artisync.init(project="p", home=home, **{key: "x\x1b[2J"})
    artifact = artisync.Artifact("a", "dataset")
    with pytest.raises(InvalidInputError, match="Invalid alias"):
        artifact.aliases = ["best\x00"]
    with pytest.raises(InvalidInputError, match="Invalid artifact type"):
        artisync.Artifact("a", "data\nset")


@pytest.mark.parametrize("field", sorted(set(NAMED) - {"distributed_id"}))
def test_the_daemon_refuses_control_characters_in_every_name(
    daemon: DaemonProcess, field: str
) -> None:
    _, where, words = NAMED[field]
    reason = _rejected(daemon, _edited(_setter(*where, value="ok\x00name")))
    assert f"Invalid {words} 'ok\\x00name'" in reason and "control character" in reason


def test_the_daemon_refuses_control_characters_in_a_tag_and_a_distributed_id(
    daemon: DaemonProcess,
) -> None:
    reason = _rejected(daemon, _edited(_setter("artifact", "tags", value=["t\x1b"])))
    assert "Invalid tag 't\\x1b'" in reason
    upsert = _edited(lambda o: o.update(action="upsert", distributed_id="g\x00"))
    assert "Invalid distributed_id 'g\\x00'" in _rejected(daemon, upsert)


@pytest.mark.parametrize(
    ("validate", "limit"),
    [
        (validate_project, 128),
        (validate_entity, 128),
        (validate_artifact_type, 128),
        (validate_alias, 128),
        (validate_tag, 128),
        (validate_run_id, 128),
        (lambda v: validate_run_label(v, "run group"), 128),
        (lambda v: validate_run_label(v, "run name"), 256),
        (validate_distributed_id, 128),
    ],
)
def test_a_name_over_the_limit_is_refused_with_the_limit(
    validate: Callable[[str], object], limit: int
) -> None:
    assert validate("n" * limit)
    with pytest.raises(InvalidInputError, match=f"is 2,000,000 characters long; at most {limit}"):
        validate("n" * 2_000_000)
    with pytest.raises(InvalidInputError) as caught:
        validate("n" * (limit + 1))
    assert len(str(caught.value)) < 1000, "the message repeats the whole value"


def test_entry_paths_are_bounded_per_component_and_in_all() -> None:
    assert normalize_entry_path("d/" + "x" * 255) == "d/" + "x" * 255
    with pytest.raises(InvalidInputError, match=r"component of 256 bytes.*at most 255"):
        normalize_entry_path("d/" + "x" * 256)
    with pytest.raises(InvalidInputError, match="component of 256 bytes"):
        normalize_entry_path("é" * 128)  # 128 characters, 2 bytes each
    with pytest.raises(InvalidInputError, match=r"4,097 bytes long.*at most 4096"):
        normalize_entry_path("/".join(["a"] * 2049))


def test_the_daemon_refuses_names_aliases_and_lists_over_their_bounds(
    daemon: DaemonProcess,
) -> None:
    for edit, words in [
        (_setter("artifact", "name", value="n" * 1_000_000), "1,000,000 characters long"),
        (_setter("artifact", "aliases", 0, value="a" * 2_000_000), "at most 128 are allowed"),
        (_setter("project", value="p" * 129), "at most 128 are allowed"),
        (_setter("run", "id", value="r" * 5000), "at most 128 are allowed"),
        (_setter("artifact", "aliases", value=[f"a{i}" for i in range(300)]), "at most 256"),
        (_setter("artifact", "description", value="d" * 70_000), "at most 65,536"),
        (_setter("entries", 0, "path", value="x" * 300), "at most 255 bytes"),
    ]:
        reason = _rejected(daemon, _edited(edit))
        assert words in reason, reason
        assert len(reason) < 2000, "the rejection repeats the whole value"


def test_the_sdk_refuses_too_many_aliases_and_a_long_description() -> None:
    artifact = artisync.Artifact("a", "dataset")
    with pytest.raises(InvalidInputError, match="300 given; at most 256"):
        artifact.aliases = [f"a{i}" for i in range(300)]
    with pytest.raises(InvalidInputError, match="at most 65,536 are allowed"):
        artifact.description = "é" * 40_000
    with pytest.raises(InvalidInputError, match="entity"):
        parse_artifact_path("e\x00/p/name:v0")


def _entries(*paths: str) -> VersionEntries:
    entries = VersionEntries()
    entries.add([Item(path, "/src", 1, digest="1B2M2Y8AsgTpgAmY7PhCfg==") for path in paths])
    return entries


@pytest.mark.parametrize(
    "paths",
    [
        ("a", "a/b"),
        ("a/b", "a-b", "a"),  # '-' sorts between 'a' and 'a/'
        ("a", "a.txt", "a!", "a/b/c"),
        ("d/a", "d/a b", "d/a/x"),
    ],
)
def test_a_file_and_a_directory_of_the_same_name_are_refused(paths: tuple[str, ...]) -> None:
    with pytest.raises(PathConflictError) as caught:
        _entries(*paths).manifest()
    file = "d/a" if paths[0].startswith("d/") else "a"
    assert f"an entry {file!r} and an entry" in str(caught.value)
    assert "both a file and a directory" in str(caught.value)
    assert isinstance(caught.value, DuplicatePathError)  # the pipeline rejects it so


def test_paths_that_only_share_a_prefix_are_no_conflict() -> None:
    digest, _ = _entries("a", "a-b/c", "a.txt", "ab/c", "b/a", "b/a.d/x").manifest()
    assert len(digest) == 32


def test_the_sdk_refuses_a_file_and_a_directory_of_one_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    artifact = artisync.Artifact("a", "dataset")
    artifact.add_file(tmp_path / "f", name="a/b", policy="immutable")
    with pytest.raises(InvalidInputError, match="'a/b', so 'a' is a directory"):
        artifact.add_file(tmp_path / "f", name="a", policy="immutable")
    artifact.add_file(tmp_path / "f", name="c", policy="immutable")
    with pytest.raises(InvalidInputError, match="already has a file 'c'"):
        artifact.add_file(tmp_path / "f", name="c/d/e", policy="immutable")
    artifact.remove("a/b")
    artifact.add_file(tmp_path / "f", name="a", policy="immutable")  # free again


def test_the_daemon_refuses_a_file_and_a_directory_of_one_path(daemon: DaemonProcess) -> None:
    def edit(obj: dict[str, Any]) -> None:
        entry = obj["entries"][0]
        obj["entries"] = [entry | {"path": p} for p in ("a", "a-b", "a/b")]

    reason = _rejected(daemon, _edited(edit))
    assert "an entry 'a' and an entry 'a/b'" in reason


BAD_FILE_REFS = ["file://host/etc", "file://../etc", "file:etc", "file://", "file:/etc"]


@pytest.mark.parametrize("uri", BAD_FILE_REFS)
def test_file_references_must_be_absolute_local_paths(uri: str) -> None:
    with pytest.raises(InvalidInputError, match=f"{uri!r}: a file:// URI needs an absolute"):
        artisync.Artifact("a", "dataset").add_reference(uri)
    assert check_reference("file:///etc") and check_reference("file://localhost/etc")


def test_the_daemon_refuses_file_references_that_are_not_absolute_local_paths(
    daemon: DaemonProcess,
) -> None:
    for uri in BAD_FILE_REFS:
        entry = {"kind": "reference", "path": "r", "ref": uri, "checksum": True}
        reason = _rejected(daemon, _edited(_setter("entries", 0, value=entry)))
        assert f"Invalid reference {uri!r}: a file:// URI needs an absolute" in reason


@pytest.mark.parametrize(
    ("uri", "needs"),
    [("s3://", "bucket"), ("gs://", "bucket"), ("http://", "host"), ("https://:80/x", "host")],
)
def test_bare_scheme_references_are_refused_by_name(
    daemon: DaemonProcess, uri: str, needs: str
) -> None:
    with pytest.raises(InvalidInputError, match=f"{uri!r}: .* need a {needs}"):
        artisync.Artifact("a", "dataset").add_reference(uri)
    entry = {"kind": "reference", "path": "", "ref": uri, "checksum": True}
    reason = _rejected(daemon, _edited(_setter("entries", 0, value=entry)))
    assert f"Invalid reference {uri!r}" in reason and f"need a {needs}" in reason


def test_huge_integers_in_a_submission_are_rejected_by_name(daemon: DaemonProcess) -> None:
    def render(sub_id: str) -> bytes:
        data = json.dumps(valid(sub_id)).encode()
        return data.replace(b'{"k": 1}', b'{"k": ' + b"9" * 5000 + b"}")

    with pytest.raises(SubmissionError, match="integer of more than 4,300 digits"):
        Submission.loads(render("x"))
    assert "integer of more than 4,300 digits" in _rejected(daemon, render)


def _version(**fields: Any) -> Version:
    base: dict[str, Any] = {
        "id": "v-id",
        "project": "p",
        "entity": "e",
        "name": "n",
        "type": "dataset",
        "index": 0,
        "digest": "0" * 32,
        "manifest_key": "m",
        "size": 1,
        "file_count": 1,
        "description": None,
        "metadata": {},
        "aliases": [],
        "tags": [],
        "created_at": time.time(),
        "run_id": None,
        "ttl_seconds": None,
    }
    return Version(**(base | fields))


def test_listings_escape_control_characters() -> None:
    # A registry written before the names were checked can still hold such names.
    clear = "\x1b[2J"
    version = _version(name=f"n{clear}", aliases=[f"best{clear}", "ok\r"], tags=["t\x00"])
    shown = versions_text([version])
    collection = Collection("p", "e", f"n{clear}", "ty\x07pe", 0.0, 1)
    shown += collections_text([collection], {collection.name: version})
    assert "\x1b" not in shown and "\r" not in shown and "\x00" not in shown
    assert "\x07" not in shown
    assert "best\\x1b[2J" in shown and "ok\\r" in shown and "t\\x00" in shown
    assert "n\\x1b[2J" in shown and "ty\\x07pe" in shown

    run = Run(f"r{clear}", "p", "e", None, "train\u202e", None, {}, 0.0)
    graph = LineageGraph(
        center="version:v-id",
        nodes={
            "version:v-id": LineageNode("version:v-id", 0, version=version),
            "run:x": LineageNode("run:x", 1, run=run),
        },
        edges=[LineageEdge("run:x", "version:v-id")],
        depth=1,
    )
    text = render_text(graph) + render_dot(graph)
    assert "\x1b" not in text and "\u202e" not in text
    assert "best\\x1b[2J" in text and "train\\u202e" in text


def test_cli_messages_escape_control_characters(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "artisync.cli", "--home", str(tmp_path / "home")]
    done = subprocess.run(
        [*command, "get", "p/n\x1b[2J:v0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\\x1b" in done.stderr, done.stderr


@in_mount_namespace
def test_get_with_a_full_cache_filesystem_still_downloads(tmp_path: Path) -> None:
    for home in short_home():
        daemon = DaemonProcess(home)
        daemon.start()
        try:
            spool = Spool(daemon.config.spool)
            sub = staged_submission(spool, "proj", "model", {"w/a.bin": b"weights\n" * 100})
            spool.publish(spool.write_tmp(sub), next_seq())
            assert result_of(spool, sub.id)["status"] == "committed", daemon.logs()
        finally:
            daemon.kill()
        # The home's disk full, as far as the cache can tell: its filesystem has no room.
        mount_tmpfs(home / "cache", "256k")
        ballast = Ballast(home / "cache" / "ballast")
        ballast.fill()
        out = tmp_path / "out"
        command = [sys.executable, "-m", "artisync.cli", "--home", str(home)]
        done = subprocess.run(
            [*command, "get", "proj/model:v0", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert (out / "w" / "a.bin").read_bytes() == b"weights\n" * 100
        warnings = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(warnings) == 1, done.stderr
        assert "download cache" in warnings[0] and str(home / "cache") in warnings[0]
        assert "Traceback" not in done.stderr
        ballast.release()
