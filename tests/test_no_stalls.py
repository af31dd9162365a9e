"""No input stalls anyone else: what cannot be read as content is refused by name at
once, and a reference that never answers is given up on after ``reference_deadline``,
while other collections commit meanwhile."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from artisync.spool import ArtifactInfo, FileEntry, ReferenceEntry, Spool, Submission
from daemon_harness import DaemonProcess, drop, result_of, staged_submission
from servers import free_port


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    d.start({"ARTISYNC_REFERENCE_DEADLINE": "2"})
    yield d
    d.stop()


def _submission(name: str, entries: list[object]) -> Submission:
    return Submission(
        id=os.urandom(16).hex(),
        created_ns=time.time_ns(),
        project="p",
        artifact=ArtifactInfo(name=name, type="dataset"),
        entries=entries,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("what", ["fifo", "device", "procfs"])
def test_what_is_not_a_file_is_refused_by_name_and_the_next_version_commits(
    daemon: DaemonProcess, tmp_path: Path, what: str
) -> None:
    spool = Spool(daemon.config.spool)
    if what == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero" if what == "device" else "/proc/self/status")
    as_file = _submission("a", [FileEntry("x", str(path), 0, 0, 0)])
    as_reference = _submission("b", [ReferenceEntry("x", path.as_uri())])
    good = staged_submission(spool, "p", "c", {"ok.txt": b"fine"})
    for sub in (as_file, as_reference, good):
        drop(spool, sub)

    for sub in (as_file, as_reference):
        result = result_of(spool, sub.id, deadline=30)
        assert result["status"] == "rejected", result
        assert str(path) in result["reason"] and "not a file" in result["reason"], result
    assert result_of(spool, good.id)["status"] == "committed"


def test_an_unreachable_reference_is_given_up_on_and_holds_back_no_one(
    daemon: DaemonProcess,
) -> None:
    spool = Spool(daemon.config.spool)
    nowhere = f"http://127.0.0.1:{free_port()}/weights.bin"  # nobody listens there
    stuck = _submission("remote", [ReferenceEntry("weights.bin", nowhere)])
    drop(spool, stuck)
    others = [staged_submission(spool, "p", f"local-{i}", {"f": b"%d" % i}) for i in range(6)]
    for sub in others:
        drop(spool, sub)

    for sub in others:  # more than the pipeline's slots: none is held by the stuck one
        assert result_of(spool, sub.id, deadline=30)["status"] == "committed"
    result = result_of(spool, stuck.id, deadline=60)
    assert result["status"] == "rejected", result
    assert "still failing after" in result["reason"] and "reference" in result["reason"]
