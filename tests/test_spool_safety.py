"""A shared node's spool: nothing a member of the daemon's group drops into it (a symlink,
a FIFO, a badly named file) makes the daemon write, read or remove anything outside the
spool, stall the queue, or take one user's file as another's submission."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from artisync.config import Config
from artisync.daemon import service
from artisync.daemon.peer import Peer
from artisync.errors import InvalidInputError, SubmissionError
from artisync.spool import FOLDERS, ArtifactInfo, Spool, Submission, next_seq, parse_name
from artisync.spool import spool as spool_module
from daemon_harness import (
    DaemonProcess,
    drop,
    result_of,
    short_home,
    staged_submission,
    wait_for,
)
from malformed_submissions import valid, write_snapshot

NOBODY = 65534


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    for home in short_home():
        d = DaemonProcess(home)
        d.start()
        yield d
        d.kill()


def _alive(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None and daemon.proc.poll() is None, daemon.logs()


def _commits_after(spool: Spool, project: str = "safety") -> None:
    """A good submission published now still commits: nothing holds the queue."""
    good = staged_submission(spool, project, "after", {"ok": os.urandom(8)})
    drop(spool, good)
    assert result_of(spool, good.id, deadline=30)["status"] == "committed"


def _outside(tmp_path: Path) -> Path:
    """A directory outside the spool holding one file, which must stay as it is."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "precious").write_bytes(b"keep me")
    return outside


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_bytes() == b"keep me"


# -- names and ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        f"{'0' * 20}.{'0' * 10}.{'0' * 10}-...json",
        f"{'0' * 20}.{'0' * 10}.{'0' * 10}-.json",
        f"{'0' * 20}.{'0' * 10}.{'0' * 10}-{'a' * 31}/.json",
        f"{'0' * 20}.{'0' * 10}.{'0' * 10}-{'A' * 32}.json",
        f"{'0' * 20}.{'0' * 10}.{'0' * 10}-{'a' * 32}.json\n",
        f"1-{'a' * 32}.json",
        f"{'a' * 32}.json",
        "x" * 300,
    ],
)
def test_only_names_the_sdk_makes_parse_as_submissions(name: str) -> None:
    with pytest.raises(SubmissionError, match="not a submission's name"):
        parse_name(name)


def test_a_staging_area_is_made_only_for_a_submission_id(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for bad in ["..", "", ".", "a/b", "*", "a" * 31, "a" * 33]:
        with pytest.raises(InvalidInputError, match="not a submission id"):
            spool.staging_dir(bad)
    assert sorted(p.name for p in spool.folder("staging").iterdir()) == []


def test_status_of_a_glob_id_answers_no_receipt(daemon: DaemonProcess) -> None:
    spool = Spool(daemon.config.spool)
    _commits_after(spool)  # a receipt a glob would match
    for pattern in ["*", "?" * 32, "[0-9a-f]*", "*-*"]:
        status, answer = daemon.request("GET", f"/v1/submissions/{quote(pattern)}?wait=0")
        assert status == 400 and "status" not in answer, (pattern, answer)
    for pattern in ["*", "?" * 32, "[0-9a-f]*", ""]:
        assert spool.find_result(pattern) is None


@pytest.mark.parametrize(
    ("tmp_name", "why"),
    [
        ("\x00.json", "<id>.json"),
        ("a" * 300 + ".json", "<id>.json"),
        ("../x.json", "<id>.json"),
        (".json", "<id>.json"),
        ("*.json", "<id>.json"),
        ("a" * 32 + ".json", "no submission"),
    ],
)
def test_accept_answers_a_bad_tmp_name_with_a_clear_400(
    daemon: DaemonProcess, tmp_name: str, why: str
) -> None:
    status, answer = daemon.request("POST", "/v1/submissions", {"tmp": tmp_name})
    assert status == 400, answer
    assert why in answer["error"]
    _alive(daemon)


# -- bad files in new/ -----------------------------------------------------------------


def test_a_fifo_in_new_is_rejected_and_later_submissions_commit(daemon: DaemonProcess) -> None:
    spool = Spool(daemon.config.spool)
    sub_id = os.urandom(16).hex()
    os.mkfifo(spool.folder("new") / f"{next_seq()}-{sub_id}.json")
    _commits_after(spool)
    result = result_of(spool, sub_id, deadline=30)
    assert result["status"] == "rejected" and "is a FIFO" in result["reason"], result
    assert stat.S_ISFIFO(next(spool.folder("failed").glob(f"*-{sub_id}.json")).lstat().st_mode)
    _alive(daemon)


@pytest.mark.parametrize("kind", ["symlink", "directory", "symlink-to-fifo"])
def test_a_non_regular_submission_is_rejected_without_reading_through_it(
    daemon: DaemonProcess, tmp_path: Path, kind: str
) -> None:
    spool = Spool(daemon.config.spool)
    sub_id = os.urandom(16).hex()
    write_snapshot(spool, sub_id)
    target = tmp_path / "elsewhere.json"
    path = spool.folder("new") / f"{next_seq()}-{sub_id}.json"
    if kind == "directory":
        path.mkdir()
    else:
        if kind == "symlink":  # a valid submission, elsewhere: still not read
            target.write_text(json.dumps(valid(sub_id)))
        else:
            os.mkfifo(target)
        path.symlink_to(target)
    result = result_of(spool, sub_id, deadline=30)
    assert result["status"] == "rejected", result
    expected = "a directory" if kind == "directory" else "a symbolic link"
    assert f"is {expected}, not a regular file" in result["reason"], result
    _commits_after(spool)
    _alive(daemon)


def test_an_id_of_dot_dot_never_removes_anything_outside_staging(daemon: DaemonProcess) -> None:
    spool = Spool(daemon.config.spool)
    waiting = staged_submission(spool, "safety", "waiting", {"w": b"snapshot, not yet logged"})
    seq = next_seq()
    strays = [f"{seq}-...json", f"{seq}-.json", f"{seq}-{'a' * 32}.json.bak", "notes.txt"]
    for name in strays:
        (spool.folder("new") / name).write_text(json.dumps(valid("..")))
    os.mkfifo(spool.folder("new") / "a-fifo")
    _commits_after(spool)
    quarantine = spool.folder("quarantine")
    wait_for(
        lambda: {*strays, "a-fifo"} <= {p.name for p in quarantine.iterdir()},
        deadline=10,
        what="the strays to be set aside",
    )
    assert not [p for p in spool.folder("new").iterdir() if p.name in {*strays, "a-fifo"}]
    assert (spool.folder("staging") / waiting.id / "0").read_bytes() == b"snapshot, not yet logged"
    for folder in FOLDERS:
        assert spool.folder(folder).is_dir(), folder
    assert daemon.config.registry.exists()
    assert "stray_set_aside" in daemon.logs()
    _alive(daemon)


def test_a_fifo_left_in_work_is_rejected_at_the_next_start(home: Path) -> None:
    daemon = DaemonProcess(home)
    spool = Spool(daemon.config.spool)
    sub_id = os.urandom(16).hex()
    os.mkfifo(spool.folder("work") / f"{next_seq()}-{sub_id}.json")
    daemon.start()
    try:
        _commits_after(spool)
        assert "is a FIFO" in result_of(spool, sub_id, deadline=30)["reason"]
    finally:
        daemon.kill()


# -- links in place of the spool's own folders and files --------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_symlinked_spool_folder_is_refused_at_start(tmp_path: Path, folder: str) -> None:
    outside = _outside(tmp_path)
    root = tmp_path / "spool"
    root.mkdir()
    (root / folder).symlink_to(outside)
    with pytest.raises(InvalidInputError, match=rf"{root / folder} is a symbolic link.*Remove it"):
        Spool(root)
    _untouched(outside)


def test_a_symlinked_failed_folder_is_refused_at_start(home: Path, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    daemon = DaemonProcess(home)
    spool_root = daemon.config.spool
    spool_root.mkdir(parents=True, exist_ok=True)
    (spool_root / "failed").symlink_to(outside)
    daemon.start(wait_ready=False)
    assert daemon.wait_exit() == 2
    assert f"{spool_root / 'failed'} is a symbolic link" in daemon.logs()
    _untouched(outside)


def test_a_folder_swapped_for_a_symlink_after_start_is_never_written_through(
    tmp_path: Path,
) -> None:
    outside = _outside(tmp_path)
    spool = Spool(tmp_path / "spool")
    work = spool.claim(spool.submit(staged_submission(spool, "p", "n", {"a": b"a"})))
    assert work is not None
    spool.folder("failed").rmdir()
    spool.folder("failed").symlink_to(outside)
    with pytest.raises(OSError, match="is a symbolic link or a file"):
        spool.reject(work, {"id": "x", "status": "rejected", "reason": "r"})
    _untouched(outside)


@pytest.mark.parametrize("planted_at", ["final", "temporary"])
def test_receipts_and_rejections_replace_a_planted_symlink_never_write_through_it(
    tmp_path: Path, planted_at: str
) -> None:
    outside = _outside(tmp_path)
    spool = Spool(tmp_path / "spool")
    subs = [staged_submission(spool, "p", "n", {"a": b"a"}) for _ in range(2)]
    works = [spool.claim(spool.submit(sub)) for sub in subs]
    assert works[0] is not None and works[1] is not None
    done = spool.folder("done") / works[0].name
    error = spool.folder("failed") / works[1].name.replace(".json", ".error.json")
    for path in (done, error):
        link = path if planted_at == "final" else path.with_name(f".{path.name}.tmp")
        link.symlink_to(outside / "precious")
    spool.complete(works[0], {"id": subs[0].id, "status": "committed"})
    spool.reject(works[1], {"id": subs[1].id, "status": "rejected", "reason": "r"})
    _untouched(outside)
    for path in (done, error):
        assert stat.S_ISREG(path.lstat().st_mode), path
    assert spool.find_result(subs[0].id) == {"id": subs[0].id, "status": "committed"}
    assert spool.find_result(subs[1].id) == {"id": subs[1].id, "status": "rejected", "reason": "r"}


def test_cleanup_removes_a_symlinked_staging_area_itself_not_what_it_points_to(
    tmp_path: Path,
) -> None:
    outside = _outside(tmp_path)
    spool = Spool(tmp_path / "spool")
    sub = staged_submission(spool, "p", "n", {"a": b"a"})
    work = spool.claim(spool.submit(sub))
    assert work is not None
    area = spool.folder("staging") / sub.id
    for child in area.iterdir():
        child.unlink()
    area.rmdir()
    area.symlink_to(outside)
    spool.complete(work, {"id": sub.id, "status": "committed"})
    assert not os.path.lexists(area)
    _untouched(outside)


def test_the_staging_sweep_neither_blocks_on_a_fifo_nor_follows_a_symlink(
    tmp_path: Path,
) -> None:
    outside = _outside(tmp_path)
    spool = Spool(tmp_path / "spool")
    staging = spool.folder("staging")
    blocking, linked = os.urandom(16).hex(), os.urandom(16).hex()
    os.mkfifo(staging / f"{blocking}.owner")
    (staging / linked).symlink_to(outside)
    (staging / f"{linked}.owner").write_text("999999999")  # no such process
    (staging / "...owner").write_text("999999999")
    abandoned = spool.abandoned_staging(set())
    assert abandoned == [staging / linked, staging / f"{linked}.owner"]
    for path in abandoned:
        spool.remove_staging(path)
    assert sorted(p.name for p in staging.iterdir()) == ["...owner", f"{blocking}.owner"]
    _untouched(outside)
    with pytest.raises(InvalidInputError, match="not a staging area"):
        spool.remove_staging(spool.root / "done")


# -- reading a claimed submission --------------------------------------------------------


def test_read_claimed_returns_the_bytes_and_the_owner(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.folder("work") / f"{next_seq()}-{'a' * 32}.json"
    path.write_bytes(b"{}")
    os.chown(path, NOBODY, NOBODY)
    data, st = spool.read_claimed(path)
    assert (data, st.st_uid) == (b"{}", NOBODY)


def test_a_submission_file_is_written_for_the_group_to_read_never_to_write(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    sub = Submission(
        id="b" * 32,
        created_ns=1,
        project="p",
        artifact=ArtifactInfo(name="a", type="dataset"),
        entries=[],
    )
    old = os.umask(0o007)  # the unit's: the group could write what is made 0666
    try:
        path = spool.write_tmp(sub)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("symlink", "is a symbolic link"),
        ("fifo", "is a FIFO"),
        ("device", "is a character device"),
        ("directory", "is a directory"),
        ("oversize", "larger than 0 MiB"),
        ("missing", "is gone"),
    ],
)
def test_read_claimed_refuses_anything_but_a_regular_file_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, reason: str
) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.folder("work") / f"{next_seq()}-{'a' * 32}.json"
    (tmp_path / "target.json").write_bytes(b"{}")
    if kind == "symlink":
        path.symlink_to(tmp_path / "target.json")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null
    elif kind == "directory":
        path.mkdir()
    elif kind == "oversize":
        monkeypatch.setattr(spool_module, "MAX_SUBMISSION_BYTES", 1)
        path.write_bytes(b"{}")
    with pytest.raises(SubmissionError, match=reason):
        spool.read_claimed(path)


# -- one user's file is not another's submission ------------------------------------------


@pytest.fixture
def idle_daemon(tmp_path: Path) -> service.Daemon:
    """A daemon object that is not serving: accept() refuses before it would start work."""
    return service.Daemon(Config.defaults(tmp_path))


def test_accept_refuses_a_tmp_file_owned_by_another_user(idle_daemon: service.Daemon) -> None:
    spool = idle_daemon.spool
    tmp = spool.folder("tmp") / f"{'b' * 32}.json"
    tmp.write_bytes(b"{}")
    os.chown(tmp, NOBODY, NOBODY)
    with pytest.raises(InvalidInputError, match="belongs to another user"):
        idle_daemon.accept(tmp.name, Peer(pid=os.getpid(), uid=0, gid=0))
    assert tmp.exists() and not list(spool.folder("work").iterdir())


def test_accept_refuses_a_tmp_name_that_is_not_a_regular_file(
    idle_daemon: service.Daemon, tmp_path: Path
) -> None:
    spool = idle_daemon.spool
    (tmp_path / "theirs.json").write_bytes(b"{}")
    os.chown(tmp_path / "theirs.json", NOBODY, NOBODY)
    link = spool.folder("tmp") / f"{'c' * 32}.json"
    link.symlink_to(tmp_path / "theirs.json")
    fifo = spool.folder("tmp") / f"{'d' * 32}.json"
    os.mkfifo(fifo)
    for path in (link, fifo):
        with pytest.raises(InvalidInputError, match="is not a regular file"):
            idle_daemon.accept(path.name, Peer(pid=os.getpid(), uid=NOBODY, gid=NOBODY))
    assert not list(spool.folder("work").iterdir())


def test_a_submission_over_the_bound_is_refused_when_it_is_logged_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artisync.spool import ArtifactInfo, FileEntry, Submission

    monkeypatch.setattr(spool_module, "MAX_SUBMISSION_BYTES", 4096)
    spool = Spool(tmp_path / "spool")
    entries: list[object] = [FileEntry(f"f{i}", f"/data/f{i}", 1, 1, i) for i in range(100)]
    sub = Submission(os.urandom(16).hex(), 1, "p", ArtifactInfo("a", "t"), entries)  # type: ignore[arg-type]

    with pytest.raises(InvalidInputError, match="over the 0 MiB a submission may hold; add a"):
        spool.write_tmp(sub)
    assert not list(spool.folder("tmp").iterdir()), "nothing half-written is left"
