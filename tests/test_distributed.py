"""Parallel writers: ``upsert_artifact`` parts from many processes, merged into one
version by ``finish_artifact`` (W&B's distributed artifacts), with a PartitionedTable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import artisync
from artisync.errors import InvalidInputError, RejectedError
from daemon_harness import DaemonProcess

# W&B's documented example, with artisync names; each writer is its own process.
_WRITER = """
import sys, artisync
home, group_name, i = sys.argv[1], sys.argv[2], int(sys.argv[3])
artifact_name, artifact_type, parts_path = "parallel-artifact", "dataset", "parts"
with artisync.init(group=group_name, home=home) as run:
    artifact = artisync.Artifact(name=artifact_name, type=artifact_type)
    table = artisync.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]])
    artifact.add(table, "{}/table_{}".format(parts_path, i))
    run.upsert_artifact(artifact)
    artifact.wait(timeout=60)
"""


def test_five_writers_and_a_partitioned_table(daemon: DaemonProcess) -> None:
    group_name = "writer-group-1"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(daemon.home), group_name, str(i)])
        for i in range(5)
    ]
    assert [w.wait(120) for w in writers] == [0] * 5
    with artisync.init(group=group_name, home=daemon.home) as run:
        artifact = artisync.Artifact("parallel-artifact", type="dataset")
        artifact.add(artisync.data_types.PartitionedTable("parts"), "distributed_table")
        run.finish_artifact(artifact)
        artifact.wait(timeout=60)
    assert artifact.version == "v0"
    assert sorted(artifact.manifest.entries) == [
        "distributed_table.partitioned-table.json",
        *[f"parts/table_{i}.table.json" for i in range(5)],
    ]
    table = (
        artisync.Api(home=daemon.home)
        .artifact("uncategorized/parallel-artifact:v0")
        .get("distributed_table")
    )
    assert isinstance(table, artisync.data_types.PartitionedTable)
    rows = sorted(row for _, row in table.iterrows())
    assert rows == [[i, i * 2, 2**i] for i in range(5)]
    # Every writer shows the merged version among what it logged.
    api = artisync.Api(home=daemon.home)
    writer_runs = api.runs("uncategorized", filters={"group": group_name})
    assert len(writer_runs) == 6
    assert all([a.version for a in r.logged_artifacts()] == ["v0"] for r in writer_runs)


def test_conflicting_parts_reject_the_version_and_an_upsert_after_finish_starts_the_next(
    daemon: DaemonProcess,
) -> None:
    with artisync.init(project="p", home=daemon.home) as run:
        for content in (b"one", b"two"):
            part = artisync.Artifact("ds", "dataset")
            with part.new_file("same.txt", mode="wb") as f:
                f.write(content)
            run.upsert_artifact(part, distributed_id="d1")
        final = artisync.Artifact("ds", "dataset")
        run.finish_artifact(final, distributed_id="d1")
        with pytest.raises(RejectedError, match=r"'same\.txt'"):
            final.wait(timeout=60)
        # Another distributed_id builds another version of the same artifact.
        for name in ("x", "y"):
            part = artisync.Artifact("ds", "dataset")
            with part.new_file(name, mode="wb") as f:
                f.write(name.encode())
            run.upsert_artifact(part, distributed_id="d2")
        done = artisync.Artifact("ds", "dataset")
        run.finish_artifact(done, distributed_id="d2").wait(timeout=60)
        assert sorted(done.manifest.entries) == ["x", "y"]
        later = artisync.Artifact("ds", "dataset")
        with later.new_file("z", mode="wb") as f:
            f.write(b"z")
        run.upsert_artifact(later, distributed_id="d2")
        nxt = artisync.Artifact("ds", "dataset")
        run.finish_artifact(nxt, distributed_id="d2").wait(timeout=60)
        assert sorted(nxt.manifest.entries) == ["z"]
        assert (done.version, nxt.version) == ("v0", "v1")


def test_distributed_id_defaults_to_the_group_else_it_is_an_error(home: Path) -> None:
    with (
        artisync.init(project="p", home=home) as run,
        pytest.raises(InvalidInputError, match="needs a distributed_id"),
    ):
        run.upsert_artifact(artisync.Artifact("a", "dataset"))
