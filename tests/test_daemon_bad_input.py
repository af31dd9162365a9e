"""Bad input is rejected with a reason a user can act on, and the daemon keeps serving."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from artisync.spool import (
    ArtifactInfo,
    DirEntry,
    FileEntry,
    ReferenceEntry,
    Spool,
    Submission,
    next_seq,
)
from daemon_harness import (
    DaemonProcess,
    drop,
    result_of,
    short_home,
    staged_submission,
    wait_for,
)


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    for home in short_home():
        d = DaemonProcess(home)
        # Without the capabilities that let root read any file, so "unreadable" is real.
        d.start(prefix=_unprivileged())
        yield d
        d.kill()


def _unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    return [
        shutil.which("setpriv") or "setpriv",
        "--bounding-set",
        "-dac_override,-dac_read_search",
    ]


def _drop_raw(spool: Spool, sub_id: str, data: bytes) -> None:
    tmp = spool.folder("tmp") / f"{sub_id}.json"
    tmp.write_bytes(data)
    spool.publish(tmp, next_seq())


def _submission(entries: list[Any], **artifact: Any) -> Submission:
    return Submission(
        id=os.urandom(16).hex(),
        created_ns=time.time_ns(),
        project="proj",
        artifact=ArtifactInfo(name=artifact.pop("name", "bad"), type="dataset", **artifact),
        entries=entries,
    )


def _reject(daemon: DaemonProcess, sub_id: str, data: bytes, reason: str) -> dict[str, Any]:
    spool = Spool(daemon.config.spool)
    _drop_raw(spool, sub_id, data)
    result = result_of(spool, sub_id)
    assert result["status"] == "rejected", result
    assert reason in result["reason"], result["reason"]
    failed = list(spool.folder("failed").glob(f"*-{sub_id}.error.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["reason"] == result["reason"]
    # The error file is written first (crash-safe order), then the submission moves.
    wait_for(lambda: list(spool.folder("failed").glob(f"*-{sub_id}.json")), what="failed/ file")
    # ... and the daemon still serves: a good submission goes through.
    good = staged_submission(spool, "proj", "good", {"ok": os.urandom(8)})
    drop(spool, good)
    assert result_of(spool, good.id)["status"] == "committed"
    return result


def _json(sub: Submission, mutate: Callable[[dict[str, Any]], None] | None = None) -> bytes:
    obj = sub.to_json()
    if mutate:
        mutate(obj)
    return json.dumps(obj).encode()


def test_malformed_json_is_rejected(daemon: DaemonProcess) -> None:
    _reject(daemon, "a" * 32, b"{this is not json", "not valid JSON")


def test_unknown_format_version_is_rejected_not_guessed(daemon: DaemonProcess) -> None:
    sub = _submission([])
    data = _json(sub, lambda o: o.update(format_version=99))
    _reject(daemon, sub.id, data, "unknown submission format_version 99")


@pytest.mark.parametrize("bad_path", ["../x", "a/../../x", "/etc/passwd"])
def test_entry_names_escaping_the_artifact_root_are_rejected(
    daemon: DaemonProcess, tmp_path: Path, bad_path: str
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    st = os.stat(tmp_path / "f")
    sub = _submission([FileEntry("ok", str(tmp_path / "f"), 1, st.st_mtime_ns, st.st_ino)])
    data = _json(sub, lambda o: o["entries"][0].update(path=bad_path))
    _reject(daemon, sub.id, data, repr(bad_path))


def test_a_missing_file_is_rejected_naming_it(daemon: DaemonProcess, tmp_path: Path) -> None:
    sub = _submission([FileEntry("gone.bin", str(tmp_path / "gone.bin"), 1, 1, 1)])
    _reject(daemon, sub.id, _json(sub), f"{tmp_path / 'gone.bin'}: No such file")


def test_an_unreadable_file_is_rejected_naming_it(daemon: DaemonProcess, tmp_path: Path) -> None:
    path = tmp_path / "secret.bin"
    path.write_bytes(b"secret")
    path.chmod(0)
    st = os.stat(path)
    sub = _submission([FileEntry("secret.bin", str(path), 6, st.st_mtime_ns, st.st_ino)])
    _reject(daemon, sub.id, _json(sub), f"{path}: Permission denied")


def test_a_symlink_loop_in_a_directory_is_rejected(daemon: DaemonProcess, tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "up").symlink_to(tmp_path / "d")
    sub = _submission([DirEntry("", str(tmp_path / "d"))])
    _reject(daemon, sub.id, _json(sub), "symlink loop")


def test_a_file_changed_after_logging_immutable_is_rejected_naming_it(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"before")
    st = os.stat(path)
    sub = _submission([FileEntry("weights.bin", str(path), 6, st.st_mtime_ns, st.st_ino)])
    path.write_bytes(b"after, longer")
    _reject(daemon, sub.id, _json(sub), f"{path} changed after it was logged")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("name", "bad/name", "'bad/name'"),
        ("aliases", ["has:colon"], "'has:colon'"),
        ("aliases", ["a/b"], "'a/b'"),
        ("metadata", ["not", "an", "object"], "metadata must be a JSON object"),
    ],
)
def test_invalid_names_aliases_and_metadata_are_rejected(
    daemon: DaemonProcess, field: str, value: Any, reason: str
) -> None:
    sub = _submission([])
    _reject(daemon, sub.id, _json(sub, lambda o: o["artifact"].update({field: value})), reason)


def test_a_reference_over_max_objects_is_an_error_naming_prefix_and_count(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(str(i))
    uri = tmp_path.as_uri()
    sub = _submission([ReferenceEntry("", uri, max_objects=2)])
    _reject(daemon, sub.id, _json(sub), f"reference {uri!r} holds 3 files, more than max_objects=2")


def test_a_type_conflict_is_rejected_naming_both_types(daemon: DaemonProcess) -> None:
    spool = Spool(daemon.config.spool)
    first = staged_submission(spool, "proj", "typed", {"a": b"1"}, type="model")
    drop(spool, first)
    assert result_of(spool, first.id)["status"] == "committed"
    second = staged_submission(spool, "proj", "typed", {"a": b"2"}, type="dataset")
    _reject(daemon, second.id, second.dumps(), "model")
