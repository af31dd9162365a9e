"""Moving a node to a server: ``import_registry`` copies an embedded registry into the
server's PostgreSQL database, and every answer of the ``Registry`` contract is the same
there; it is idempotent, completes after being killed midway, merges several nodes'
homes and reports what it cannot merge; the server then numbers after the imported
versions and answers the node's submissions with the versions they already made."""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from artisync.crashpoints import ENV as CRASH_ENV
from artisync.errors import ArtisyncError, InvalidInputError, NotFoundError
from artisync.registry import Registry, SqliteRegistry
from artisync.registry.importing.importer import import_registry
from artisync.registry.postgres import PostgresRegistry
from registry_backends import add_part, commit, finish

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Filled:
    """A home's registry and what was committed to it (to ask both backends about)."""

    path: Path
    submissions: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, str]] = field(default_factory=list)  # entity, project, run
    sweeps: list[tuple[str, str, str]] = field(default_factory=list)  # entity, project, id


def fill(path: Path, *, project: str = "proj", prefix: str = "") -> Filled:
    """A registry with every kind of record: runs with config, summary, state, tags,
    notes, a sweep and history; sweeps; versions with metadata, tags, TTL, aliases; a
    duplicate commit; deletions; lineage across projects; consumed and pending parts."""
    filled = Filled(path)
    with SqliteRegistry(path) as reg:
        reg.create_sweep(
            project, f"{prefix}sw", {"method": "grid", "parameters": {"lr": {"values": [1, 2]}}}
        )
        filled.sweeps.append(("local", project, f"{prefix}sw"))
        reg.ensure_run(
            project, None, f"{prefix}train", name="train", job_type="train", group="g",
            config={"zeta": 1, "alpha": [1, 2], "nested": {"b": 1, "a": 2}},
            tags=["baseline", "v1.0"], notes="first try", sweep=f"{prefix}sw",
        )  # fmt: skip
        reg.set_run_summary(project, f"{prefix}train", {"loss": 0.25, "acc": 0.9})
        reg.append_history(
            project, f"{prefix}train",
            [{"_step": i, "loss": 1.0 / (i + 1), "z": {"b": i, "a": 0}} for i in range(5)],
        )  # fmt: skip
        reg.ensure_run(project, "team", f"{prefix}eval", job_type="eval")
        reg.set_run_state(project, f"{prefix}eval", "crashed", entity="team")
        filled.runs += [("local", project, f"{prefix}train"), ("team", project, f"{prefix}eval")]

        ids = []
        for i in range(6):
            sid = f"{prefix}sub-{i}"
            result = commit(
                reg,
                f"{prefix}d{i}",
                submission_id=sid,
                project=project,
                run_id=f"{prefix}train",
                metadata={"step": i, "b": 2, "a": 1},
                description=f"version {i}" if i % 2 else None,
                tags=["nightly", f"t{i}"],
                aliases=["latest", "best"] if i == 3 else ["latest"],
                ttl_seconds=3600.0 if i == 4 else None,
            )
            filled.submissions.append(sid)
            ids.append(result.version.id)
        # Identical content again: no new version, the submission maps to v2, which
        # becomes latest (W&B's rule; stored as an aliases row named 'latest').
        commit(reg, f"{prefix}d2", submission_id=f"{prefix}dup", project=project, tags=["again"])
        filled.submissions.append(f"{prefix}dup")
        reg.delete_version(ids[1])
        reg.delete_version(ids[5])  # the highest: latest stays on v2
        reg.set_aliases(ids[2], ["prod", "stable"])
        reg.update_version(ids[0], description="edited", metadata={"y": 1, "x": 2})
        reg.record_use(f"{prefix}eval", ids[2], project=project, entity="team")
        # Another type, another entity's project.
        commit(
            reg, f"{prefix}c0", submission_id=f"{prefix}sub-c0", project=project,
            entity="team", name="corpus", type="dataset", run_id=f"{prefix}eval",
        )  # fmt: skip
        filled.submissions.append(f"{prefix}sub-c0")
        # Distributed writers: two parts finished into one version, one part pending.
        add_part(reg, f"{prefix}m/p1", project=project, run_id=f"{prefix}train")
        # A run of the same id in the default entity's project: created by its part.
        add_part(reg, f"{prefix}m/p2", project=project, run_id=f"{prefix}eval")
        filled.runs.append(("local", project, f"{prefix}eval"))
        finish(reg, f"{prefix}merged", submission_id=f"{prefix}fin", project=project)
        filled.submissions.append(f"{prefix}fin")
        add_part(
            reg, f"{prefix}m/p3", project=project, run_id=f"{prefix}train", distributed_id="d2"
        )
    return filled


def answers(reg: Registry, filled: Filled) -> dict[str, Any]:
    """Every answer of the contract about what ``filled`` committed."""
    out: dict[str, Any] = {"projects": reg.list_projects(), "live": reg.live_manifest_keys()}
    out["expired"] = reg.expired_versions(4e9)
    out["submissions"] = {sid: reg.submission_result(sid) for sid in filled.submissions}
    for project in reg.list_projects():
        key = f"{project.entity}/{project.name}"
        out[f"runs {key}"] = reg.list_runs(project.name, project.entity)
        collections = reg.list_collections(project.name, entity=project.entity)
        out[f"collections {key}"] = collections
        for c in collections:
            versions = reg.list_versions(project.name, c.name, project.entity)
            out[f"versions {key}/{c.name}"] = versions
            for v in versions:
                for ref in [*v.aliases, v.version]:
                    got = reg.get_version(project.name, c.name, ref, project.entity)
                    out[f"get {key}/{c.name}:{ref}"] = got
                out[f"by id {v.id}"] = reg.get_version_by_id(v.id)
                out[f"lineage {v.id}"] = (
                    reg.produced_by(v.id),
                    reg.writers(v.id),
                    reg.used_by(v.id),
                )
            for distributed_id in ("d1", "d2"):
                out[f"parts {key}/{c.name}/{distributed_id}"] = reg.list_parts(
                    project.name, c.name, distributed_id, project.entity
                )
    for entity, project, run_id in filled.runs:
        out[f"run {run_id}"] = (
            reg.get_run(project, run_id, entity),
            reg.logged_by_run(run_id, project=project, entity=entity),
            reg.used_by_run(run_id, project=project, entity=entity),
            reg.run_history(project, run_id, entity),
        )
    for entity, project, sweep_id in filled.sweeps:
        out[f"sweep {entity}/{project}/{sweep_id}"] = reg.get_sweep(project, sweep_id, entity)
    return out


def sqlite_answers(filled: Filled) -> dict[str, Any]:
    with SqliteRegistry(filled.path, read_only=True) as reg:
        return answers(reg, filled)


def postgres_answers(dsn: str, filled: Filled) -> dict[str, Any]:
    with PostgresRegistry(dsn) as reg:
        return answers(reg, filled)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Filled:
    return fill(tmp_path / "a" / "registry.db")


# -- everything round-trips -------------------------------------------------------------


def test_import_gives_every_answer_the_node_gave(home: Filled, postgres_dsn: str) -> None:
    before = digest_of(home.path)
    report = import_registry(home.path, postgres_dsn)
    assert report.conflicts == [] and report.renumbered == []
    assert report.present.total() == 0
    copied = report.copied
    assert (copied.projects, copied.runs, copied.collections) == (2, 3, 3)
    # 6 of model (2 tombstones), corpus's one, ds's merged one; the duplicate made none.
    assert (copied.versions, copied.submissions, copied.parts) == (8, 9, 3)
    # best, prod, stable, and the row that moved latest to v2.
    assert copied.lineage > 0 and copied.aliases == 4 and copied.tags > 0
    assert (copied.sweeps, copied.history) == (1, 5)
    assert postgres_answers(postgres_dsn, home) == sqlite_answers(home)
    assert digest_of(home.path) == before, "the import wrote to the node's registry"


def test_second_import_changes_nothing(home: Filled, postgres_dsn: str) -> None:
    first = import_registry(home.path, postgres_dsn)
    second = import_registry(home.path, postgres_dsn)
    assert second.copied.total() == 0 and second.conflicts == []
    assert second.runs_updated == 0
    assert second.present == first.copied
    assert postgres_answers(postgres_dsn, home) == sqlite_answers(home)


def test_import_killed_midway_completes_on_the_next_run(home: Filled, postgres_dsn: str) -> None:
    # One collection per transaction (batch_versions=1): killed after runs and the first
    # collection, with the others and lineage not yet copied.
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from artisync.registry.importing.importer import import_registry
        import_registry(Path({str(home.path)!r}), {postgres_dsn!r}, batch_versions=1)
        """
    )
    env = {**os.environ, CRASH_ENV: "after_import_step:2"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python"), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, check=False)
    assert done.returncode == -9
    with PostgresRegistry(postgres_dsn) as reg:
        partial = {(p.entity, p.name) for p in reg.list_projects()}
        assert partial == {("local", "proj"), ("team", "proj")}
        copied_collections = len(reg.list_collections("proj")) + len(
            reg.list_collections("proj", entity="team")
        )
        assert copied_collections == 1

    report = import_registry(home.path, postgres_dsn)
    assert report.conflicts == []
    assert (report.present.runs, report.present.collections) == (3, 1)
    assert report.copied.collections == 2
    assert postgres_answers(postgres_dsn, home) == sqlite_answers(home)
    assert import_registry(home.path, postgres_dsn).copied.total() == 0


def test_import_reads_a_snapshot_beside_a_writer(home: Filled, postgres_dsn: str) -> None:
    # The daemon's write transaction, open and uncommitted: the import neither waits for
    # it nor copies what it holds.
    writer = sqlite3.connect(home.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE runs SET name = 'uncommitted'")
        report = import_registry(home.path, postgres_dsn, timeout=5)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert report.copied.versions == 8
    with PostgresRegistry(postgres_dsn) as reg:
        assert "uncommitted" not in {r.name for r in reg.list_runs("proj")}


# -- after the import, the server goes on ------------------------------------------------


def test_server_numbers_after_the_imported_versions(home: Filled, postgres_dsn: str) -> None:
    import_registry(home.path, postgres_dsn)
    with PostgresRegistry(postgres_dsn) as reg:
        # v5 was deleted on the node: its number stays taken, so the next is v6.
        result = commit(reg, "new-on-server")
        assert (result.created, result.version.index) == (True, 6)
        assert reg.get_version("proj", "model", "latest").id == result.version.id


def test_imported_submissions_answer_with_their_versions(home: Filled, postgres_dsn: str) -> None:
    expected = sqlite_answers(home)["submissions"]
    import_registry(home.path, postgres_dsn)
    with PostgresRegistry(postgres_dsn) as reg:
        # The node's daemon, switched to the server, commits what its spool still held.
        again = commit(reg, "other-content", submission_id="sub-3", aliases=["moved"])
        assert again == expected["sub-3"]
        assert commit(reg, "d2", submission_id="dup") == expected["dup"]
        assert reg.get_version("proj", "model", "best").id == expected["sub-3"].version.id
        with pytest.raises(NotFoundError):
            reg.get_version("proj", "model", "moved")
        # A part already merged on the node is not added again.
        add_part(reg, "m/p1", submission_id=_part_submission(home, "m/p1"))
        assert [p.manifest_key for p in reg.list_parts("proj", "ds", "d1")] == []


def _part_submission(filled: Filled, manifest_key: str) -> str:
    with sqlite3.connect(f"{filled.path.as_uri()}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT submission_id FROM parts WHERE manifest_key = ?", (manifest_key,)
        ).fetchone()
    return str(row[0])


# -- several nodes into one server ------------------------------------------------------


def test_two_homes_with_distinct_projects_merge(tmp_path: Path, postgres_dsn: str) -> None:
    a = fill(tmp_path / "a" / "registry.db", project="vision")
    b = fill(tmp_path / "b" / "registry.db", project="speech", prefix="b-")
    assert import_registry(a.path, postgres_dsn).conflicts == []
    report = import_registry(b.path, postgres_dsn)
    assert report.conflicts == []
    assert report.present.total() == 0, "the homes share nothing"
    both = Filled(a.path, a.submissions + b.submissions, a.runs + b.runs, a.sweeps + b.sweeps)
    mine, theirs = sqlite_answers(a), sqlite_answers(b)
    expected = {**mine, **theirs}
    expected["projects"] = sorted(
        mine["projects"] + theirs["projects"], key=lambda p: (p.entity, p.name)
    )
    expected["live"] = mine["live"] | theirs["live"]
    expected["expired"] = mine["expired"] + theirs["expired"]
    expected["submissions"] = {**mine["submissions"], **theirs["submissions"]}
    assert postgres_answers(postgres_dsn, both) == expected


def _clash(tmp_path: Path) -> tuple[Filled, Path]:
    """Home ``a`` and a home ``b`` that logged, in the same project, ``model`` (same
    type: its numbers clash), ``ds`` as another type, a run of the same id, and an
    artifact of its own."""
    b_path = tmp_path / "b" / "registry.db"
    with SqliteRegistry(b_path) as reg:
        reg.ensure_run("proj", None, "train", config={"lr": 0.1})
        commit(reg, "b0", submission_id="b-0", run_id="train", aliases=["best"])
        commit(reg, "b1", submission_id="b-1", run_id="train")
        commit(reg, "b-ds", submission_id="b-ds", name="ds", type="model")
        commit(reg, "b-fresh", submission_id="b-fresh", name="fresh")
    # Filled second: its run "train" changed last, so the server keeps a's.
    return fill(tmp_path / "a" / "registry.db"), b_path


def test_clashing_homes_are_reported_and_nothing_overwritten(
    tmp_path: Path, postgres_dsn: str
) -> None:
    a, b_path = _clash(tmp_path)
    import_registry(a.path, postgres_dsn)
    before = postgres_answers(postgres_dsn, a)
    report = import_registry(b_path, postgres_dsn)
    text = "\n".join(report.lines())
    assert "artifact local/proj/model: the server gave v0, v1 to other versions" in text
    assert "--renumber" in text
    assert "artifact local/proj/ds: is a 'dataset' on the server and a 'model' on the node" in text
    assert len(report.conflicts) == 2
    # What did not clash is copied: the new artifact, its submission.
    assert (report.copied.collections, report.copied.versions) == (1, 1)
    after = postgres_answers(postgres_dsn, a)
    # Only b's own artifact was added.
    after["collections local/proj"] = [
        c for c in after["collections local/proj"] if c.name != "fresh"
    ]
    after["live"].remove("manifests/b-fresh.json")
    assert {k: after[k] for k in before} == before, "an import changed what the server held"
    # The runs share an id, so they are one run; b's changed first: the server's stays.
    assert report.present.runs == 1 and report.runs_updated == 0
    with PostgresRegistry(postgres_dsn) as reg:
        assert reg.get_version("proj", "fresh", "v0").digest == "b-fresh"
        assert reg.submission_result("b-0") is None
    assert import_registry(b_path, postgres_dsn).conflicts == report.conflicts


def test_renumber_adds_a_clashing_homes_versions_after_the_servers(
    tmp_path: Path, postgres_dsn: str
) -> None:
    a, b_path = _clash(tmp_path)
    import_registry(a.path, postgres_dsn)
    report = import_registry(b_path, postgres_dsn, renumber=True)
    assert report.renumbered == ["local/proj/model: the node's v0 to v1 are v6 to v7 on the server"]
    assert len(report.conflicts) == 2  # ds's type, and alias "best" (on a's v3)
    with PostgresRegistry(postgres_dsn) as reg:
        b0 = reg.submission_result("b-0")
        assert b0 is not None and (b0.version.index, b0.version.digest) == (6, "b0")
        assert reg.get_version("proj", "model", "latest").digest == "b1"
        assert reg.get_version("proj", "model", "best").digest == "d3"
        assert [v.digest for v in reg.logged_by_run("train", project="proj")][-2:] == [
            "b0",
            "b1",
        ]
    again = import_registry(b_path, postgres_dsn, renumber=True)
    assert again.copied.total() == 0 and again.renumbered == []


def test_a_run_changed_later_on_the_node_is_updated(home: Filled, postgres_dsn: str) -> None:
    import_registry(home.path, postgres_dsn)
    with SqliteRegistry(home.path) as reg:
        reg.set_run_summary("proj", "train", {"loss": 0.1})
        reg.set_run_state("proj", "train", "finished")
        reg.ensure_run("proj", None, "train", tags=["resumed"], notes="second try")
        reg.append_history("proj", "train", [{"_step": 5, "loss": 0.1}])
    report = import_registry(home.path, postgres_dsn)
    assert report.runs_updated == 1 and report.conflicts == []
    assert (report.copied.history, report.present.history) == (1, 5)
    assert postgres_answers(postgres_dsn, home) == sqlite_answers(home)
    with PostgresRegistry(postgres_dsn) as reg:
        run = reg.get_run("proj", "train")
        assert (run.tags, run.notes, run.sweep) == (["resumed"], "second try", "sw")


def test_sweeps_and_history_steps_held_otherwise_are_reported_and_the_servers_kept(
    home: Filled, postgres_dsn: str
) -> None:
    import_registry(home.path, postgres_dsn)
    with PostgresRegistry(postgres_dsn) as reg:
        reg.append_history("proj", "train", [{"_step": 0, "loss": 7.0}])
        reg.create_sweep("proj", "sw2", {"method": "random"})
    with SqliteRegistry(home.path) as reg:
        reg.create_sweep("proj", "sw2", {"method": "grid"})
    report = import_registry(home.path, postgres_dsn)
    assert sorted(str(c) for c in report.conflicts) == [
        "run local/proj/train: 1 history step(s) hold other rows on the server; kept the server's",
        "sweep local/proj/sw2: the server has a sweep of this id with another config; kept "
        "the server's (the node's runs of it still name it)",
    ]
    assert (report.present.sweeps, report.present.history) == (1, 4)
    with PostgresRegistry(postgres_dsn) as reg:
        assert reg.run_history("proj", "train")[0] == {"_step": 0, "loss": 7.0}
        assert reg.get_sweep("proj", "sw2").config == {"method": "random"}


def test_edits_on_both_sides_are_reported_and_the_servers_kept(
    home: Filled, postgres_dsn: str
) -> None:
    import_registry(home.path, postgres_dsn)
    with SqliteRegistry(home.path) as reg:
        v0 = reg.get_version("proj", "model", "v0")
        reg.update_version(v0.id, description="node's")
    with PostgresRegistry(postgres_dsn) as reg:
        reg.update_version(v0.id, description="server's")
    report = import_registry(home.path, postgres_dsn)
    assert [str(c) for c in report.conflicts] == [
        "version local/proj/model:v0: its description changed since it was imported (on the "
        "node or on the server); the server's is kept: make the change on the server"
    ]
    with PostgresRegistry(postgres_dsn) as reg:
        assert reg.get_version_by_id(v0.id).description == "server's"


# -- the command ------------------------------------------------------------------------


# -- where the bytes are ------------------------------------------------------------------

NODE_STORE = "s3://node-bucket/artisync"


def _stores(reg: Registry, filled: Filled) -> dict[str, str | None]:
    """The store of every version (tombstones through their submissions) and part."""
    out: dict[str, str | None] = {}
    for sid in filled.submissions:
        result = reg.submission_result(sid)
        assert result is not None
        out[result.version.id] = result.version.store
    for project in reg.list_projects():
        for c in reg.list_collections(project.name, entity=project.entity):
            for v in reg.list_versions(project.name, c.name, project.entity):
                out[v.id] = v.store
            for d in ("d1", "d2"):
                for part in reg.list_parts(project.name, c.name, d, project.entity):
                    out[part.submission_id] = part.store
    return out


def test_versions_that_recorded_no_store_are_imported_in_the_nodes_store(
    tmp_path: Path, postgres_dsn: str
) -> None:
    filled = fill(tmp_path / "registry.db")
    with SqliteRegistry(filled.path) as reg:
        own = commit(reg, "d-own", submission_id="own", store="gs://elsewhere/x").version
        add_part(reg, "m/own", distributed_id="d2", store=NODE_STORE)
    filled.submissions.append("own")
    report = import_registry(filled.path, postgres_dsn, default_store=NODE_STORE)
    assert report.conflicts == []
    with PostgresRegistry(postgres_dsn) as reg:
        stores = _stores(reg, filled)
    assert stores.pop(own.id) == "gs://elsewhere/x"
    assert len(stores) > 9 and set(stores.values()) == {NODE_STORE}
    with SqliteRegistry(filled.path, read_only=True) as reg:
        node = _stores(reg, filled)
    assert node.pop(own.id) == "gs://elsewhere/x" and set(node.values()) == {None, NODE_STORE}


def test_importing_again_with_the_store_records_it_where_none_was(
    home: Filled, postgres_dsn: str
) -> None:
    import_registry(home.path, postgres_dsn)
    with PostgresRegistry(postgres_dsn) as reg:
        assert set(_stores(reg, home).values()) == {None}
    again = import_registry(home.path, postgres_dsn, default_store=NODE_STORE)
    assert again.copied.total() == 0 and again.conflicts == []
    with PostgresRegistry(postgres_dsn) as reg:
        assert set(_stores(reg, home).values()) == {NODE_STORE}


def test_a_version_the_server_has_in_another_store_is_reported_and_kept(
    home: Filled, postgres_dsn: str
) -> None:
    import_registry(home.path, postgres_dsn, default_store=NODE_STORE)
    again = import_registry(home.path, postgres_dsn, default_store="/srv/other")
    assert again.copied.total() == 0
    assert again.conflicts and all("/srv/other" in c.detail for c in again.conflicts)
    assert {c.subject for c in again.conflicts} >= {"version local/proj/model:v0"}
    with PostgresRegistry(postgres_dsn) as reg:
        assert set(_stores(reg, home).values()) == {NODE_STORE}


def test_a_relative_default_store_is_refused(home: Filled, postgres_dsn: str) -> None:
    with pytest.raises(InvalidInputError, match="absolute path"):
        import_registry(home.path, postgres_dsn, default_store="store")


@pytest.mark.parametrize(
    ("setting", "recorded"),
    # As the daemon records its store: Store.url, file:///… for a directory.
    [(None, "file://{home}/store"), ("blobs", "file://{home}/blobs"), (NODE_STORE, NODE_STORE)],
)
def test_command_imports_versions_into_the_nodes_configured_store(
    home: Filled,
    postgres_dsn: str,
    setting: str | None,
    recorded: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ARTISYNC_STORE", raising=False)
    node = home.path.parent
    if setting is not None:
        (node / "config.toml").write_text(f"store = {setting!r}\n")
    args = _command(["import", "--from", str(node), "--db", postgres_dsn])
    assert args.run(args) == 0
    with PostgresRegistry(postgres_dsn) as reg:
        assert set(_stores(reg, home).values()) == {recorded.format(home=node)}


def _command(argv: list[str]) -> argparse.Namespace:
    from artisync.cli.server_import import add_command

    parser = argparse.ArgumentParser(prog="artisync server")
    add_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_command_prints_the_report(
    home: Filled, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _command(["import", "--from", str(home.path.parent), "--db", postgres_dsn])
    assert args.run(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"imported {home.path} into postgresql://")
    assert out[1].startswith("copied: 2 projects, 3 runs, 1 sweeps, 3 collections, 8 versions")
    assert out[2:] == ["already there: nothing", "conflicts: none"]


def test_the_artisync_command_runs_the_import(home: Filled, postgres_dsn: str) -> None:
    command = [sys.executable, "-m", "artisync.cli", "server", "import"]
    command += ["--from", str(home.path.parent), "--db", postgres_dsn]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "copied: 2 projects" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "copied: nothing" in again.stdout, again.stdout


def test_command_takes_the_database_from_the_environment(
    home: Filled,
    postgres_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ARTISYNC_SERVER_DB", postgres_dsn)
    args = _command(["import", "--from", str(home.path.parent)])
    assert args.run(args) == 0
    assert "copied: 2 projects" in capsys.readouterr().out


def test_command_exits_1_when_conflicts_left_something_out(
    tmp_path: Path, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b_path = _clash(tmp_path)
    import_registry(a.path, postgres_dsn)
    args = _command(["import", "--from", str(b_path.parent), "--db", postgres_dsn])
    assert args.run(args) == 1
    assert "conflicts, left as the server has them: 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-db", "artisync server import needs the server's database: pass --db"),
        ("no-home", "no such directory; give the node's ARTISYNC_HOME"),
        ("empty-home", "this home has no embedded registry to import"),
        ("bad-db", "the PostgreSQL registry DSN is malformed"),
        ("no-server", "is PostgreSQL running and reachable at postgresql://"),
    ],
)
def test_command_errors_are_one_line_naming_the_input(
    case: str, message: str, home: Filled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARTISYNC_SERVER_DB", raising=False)
    source, db = str(home.path.parent), ["--db", "postgresql://u@127.0.0.1:1/x"]
    if case == "no-db":
        db = []
    elif case == "no-home":
        source = str(tmp_path / "missing")
    elif case == "empty-home":
        source = str(tmp_path)
    elif case == "bad-db":
        db = ["--db", "host=x port"]
    args = _command(["import", "--from", source, *db])
    with pytest.raises(ArtisyncError) as caught:
        args.run(args)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.fixture(autouse=True)
def _no_crash_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRASH_ENV, raising=False)
