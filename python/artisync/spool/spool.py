"""The spool: a maildir-style directory that is the durable queue between SDK and daemon.

::

    spool/tmp/<id>.json            being written by a client (not yet a submission)
    spool/new/<seq>-<id>.json      submitted, waiting for the daemon
    spool/work/<seq>-<id>.json     claimed by the daemon (+ <seq>-<id>.journal.json)
    spool/done/<seq>-<id>.json     the receipt: the version it committed
    spool/failed/<seq>-<id>.json   rejected (+ <seq>-<id>.error.json saying why)
    spool/staging/<id>/            snapshots of "mutable" files, owned by the submission

Every step is a write to a temporary name, an fsync, and a rename: a crash at any point
leaves each submission in exactly one of the folders, whole. ``seq`` sorts in the order
submissions were published: wall-clock nanoseconds (kept increasing within a process),
then the process id and a per-process counter.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from artisync.disk_full import disk_full_error, explaining_disk_full, is_disk_full
from artisync.spool.submission import Submission

__all__ = ["FOLDERS", "OWNER_SUFFIX", "Spool", "parse_name"]

FOLDERS: Final = ("tmp", "new", "work", "done", "failed", "staging")
# Beside each staging directory, <id>.owner: the pid of the process that made it.
OWNER_SUFFIX: Final = ".owner"

_counter = itertools.count()
_clock_lock = threading.Lock()
_last_ns = 0


def next_seq() -> str:
    """A sequence number greater than any this process handed out before."""
    global _last_ns
    with _clock_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        now = _last_ns
        count = next(_counter)
    return f"{now:020d}.{os.getpid():010d}.{count:010d}"


def seq_time_ns(seq: str) -> int:
    """The wall-clock time a sequence number was taken at."""
    return int(seq.split(".", 1)[0])


def parse_name(name: str) -> tuple[str, str]:
    """``(seq, id)`` from a spool file name ``<seq>-<id>.json``."""
    stem = name.removesuffix(".json")
    seq, _, sub_id = stem.partition("-")
    return seq, sub_id


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` and fsync it; on any failure remove it again."""
    try:
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        # Half a file must not stay: in tmp/ it would pass for a submission being
        # written, and its blocks are what a full disk needs back.
        path.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    A full filesystem raises :class:`~artisync.errors.DiskFullError` and leaves
    ``path`` as it was (the daemon retries such writes until there is space).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with explaining_disk_full(f"cannot write {path.name} in the spool", path):
        _write_durably(tmp, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    _fsync_dir(path.parent)


class Spool:
    """One spool directory. Clients and the daemon each open their own instance."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def folder(self, name: str) -> Path:
        """One of :data:`FOLDERS`."""
        return self.root / name

    # -- the client's side ---------------------------------------------------------

    def staging_dir(self, sub_id: str) -> Path:
        """Where a submission's "mutable" snapshots go (created on first use).

        ``<id>.owner`` beside it records the process that made it, so the daemon can
        tell the snapshots of a training script that was killed before logging them.
        """
        path = self.root / "staging" / sub_id
        if not path.is_dir():
            owner = path.with_name(sub_id + OWNER_SUFFIX)
            doing = f"cannot make the staging area of {sub_id} in the spool"
            with explaining_disk_full(doing, owner):
                try:
                    owner.write_text(str(os.getpid()))
                    path.mkdir(parents=True, exist_ok=True)
                except BaseException:
                    # An empty owner file would look "being written" to every sweep.
                    owner.unlink(missing_ok=True)
                    raise
        return path

    def abandoned_staging(self, in_use: set[str]) -> list[Path]:
        """Staging paths no submission refers to: their owning process is gone, or
        their submission is finished (a daemon killed while rejecting it left them).

        Both the snapshot directories and their ``.owner`` files are returned.
        """
        abandoned: list[Path] = []
        finished: set[str] | None = None  # listed only if something may be left over
        for owner in (self.root / "staging").glob("*" + OWNER_SUFFIX):
            sub_id = owner.name.removesuffix(OWNER_SUFFIX)
            if sub_id in in_use:
                continue
            if finished is None:
                finished = self._finished_ids()
            try:
                gone = sub_id in finished or not _process_alive(int(owner.read_text()))
            except (OSError, ValueError):
                continue  # being written: leave it to the next sweep
            if gone:
                directory = owner.with_name(sub_id)
                abandoned.extend(p for p in (directory, owner) if p.exists())
        return sorted(abandoned)

    def submission_ids(self) -> set[str]:
        """Ids of every submission not yet finished: in ``tmp/``, ``new/`` or ``work/``."""
        ids = {p.name.removesuffix(".json") for p in (self.root / "tmp").iterdir()}
        ids.update(parse_name(p.name)[1] for p in [*self.pending(), *self.in_work()])
        return ids

    def write_tmp(self, submission: Submission) -> Path:
        """Write a submission durably under ``tmp/``; it is not yet visible to the daemon.

        Raises :class:`~artisync.errors.DiskFullError` if the spool's filesystem is
        full; nothing is left in ``tmp/`` then.
        """
        path = self.root / "tmp" / f"{submission.id}.json"
        data = submission.dumps()
        with explaining_disk_full(f"cannot write submission {submission.id} to the spool", path):
            _write_durably(path, data)
        return path

    def publish(self, tmp_path: Path, seq: str | None = None) -> Path:
        """Rename a written submission into ``new/``: from here on it will be processed.

        The sequence number is taken at the last moment, so it orders submissions by
        when they became visible, which is when ``log_artifact`` returns.
        """
        sub_id = tmp_path.name.removesuffix(".json")
        target = self.root / "new" / f"{seq or next_seq()}-{sub_id}.json"
        try:
            os.rename(tmp_path, target)
        except OSError as e:
            if not is_disk_full(e):
                raise
            # A directory that must grow to take the name. The written file stays in
            # tmp/ for nobody: remove it, so the caller's retry starts clean.
            tmp_path.unlink(missing_ok=True)
            raise disk_full_error(e, f"cannot publish submission {sub_id}", target) from e
        _fsync_dir(target.parent)
        return target

    def submit(self, submission: Submission) -> Path:
        """Write and publish in one go: what the SDK does when the daemon is down."""
        return self.publish(self.write_tmp(submission))

    def find_result(self, sub_id: str) -> dict[str, Any] | None:
        """The receipt or rejection of a finished submission, or ``None`` if not finished."""
        for path in (self.root / "done").glob(f"*-{sub_id}.json"):
            return dict(json.loads(path.read_bytes()))
        for path in (self.root / "failed").glob(f"*-{sub_id}.error.json"):
            return dict(json.loads(path.read_bytes()))
        return None

    # -- the daemon's side ---------------------------------------------------------

    def pending(self) -> list[Path]:
        """Submissions in ``new/``, in sequence order."""
        return sorted(p for p in (self.root / "new").iterdir() if p.name.endswith(".json"))

    def in_work(self) -> list[Path]:
        """Claimed submissions (left by a daemon that stopped), in sequence order."""
        return sorted(
            p
            for p in (self.root / "work").iterdir()
            if p.name.endswith(".json") and not p.name.endswith(".journal.json")
        )

    def claim(self, path: Path) -> Path | None:
        """Move a submission from ``new/`` to ``work/``; ``None`` if it is already gone."""
        target = self.root / "work" / path.name
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        _fsync_dir(target.parent)
        return target

    def journal_path(self, work_path: Path, chunk: int = 0) -> Path:
        """The progress journal of one chunk of a claimed submission's items.

        One file per chunk (``<seq>-<id>.journal.json``, then ``<seq>-<id>.1.journal.json``,
        …): a million-entry version journals each chunk once, never the whole again.
        """
        stem = work_path.name.removesuffix(".json")
        return work_path.with_name(
            f"{stem}.{chunk}.journal.json" if chunk else f"{stem}.journal.json"
        )

    def journals(self, work_path: Path) -> list[Path]:
        """Every chunk journal of a claimed submission."""
        stem = work_path.name.removesuffix(".json")
        return sorted(work_path.parent.glob(f"{stem}*.journal.json"))

    def scratch_path(self, work_path: Path, what: str) -> Path:
        """A scratch file beside a claimed submission (``<seq>-<id>.<what>.scratch``),
        removed with it."""
        stem = work_path.name.removesuffix(".json")
        return work_path.with_name(f"{stem}.{what}.scratch")

    def read_journal(self, work_path: Path, chunk: int = 0) -> dict[str, Any]:
        """The journal of a claimed submission's chunk, empty if none was written."""
        return _read_journal(self.journal_path(work_path, chunk))

    def read_journals(self, work_path: Path) -> Iterator[dict[str, Any]]:
        """Every chunk journal of a claimed submission, one at a time."""
        for path in self.journals(work_path):
            yield _read_journal(path)

    def write_journal(self, work_path: Path, journal: dict[str, Any], chunk: int = 0) -> None:
        """Replace the journal of a claimed submission's chunk atomically."""
        write_atomic(self.journal_path(work_path, chunk), json.dumps(journal).encode())

    def complete(self, work_path: Path, receipt: dict[str, Any], *, discard: bool = True) -> Path:
        """Record a committed submission: the receipt goes to ``done/``, the rest away
        (or later, by :meth:`discard`, off the path to the client's answer)."""
        done = self.root / "done" / work_path.name
        write_atomic(done, json.dumps(receipt, indent=1).encode())
        if discard:
            self.discard(work_path)
        return done

    def reject(self, work_path: Path, error: dict[str, Any]) -> Path:
        """Record a rejected submission in ``failed/`` with an ``.error.json`` beside it."""
        failed = self.root / "failed" / work_path.name
        error_path = failed.with_name(failed.name.removesuffix(".json") + ".error.json")
        write_atomic(error_path, json.dumps(error, indent=1).encode())
        if work_path.exists():
            os.replace(work_path, failed)
            _fsync_dir(failed.parent)
        self.discard(work_path)
        return error_path

    def discard(self, work_path: Path) -> None:
        """Remove what a finished submission leaves behind, its work file last.

        A daemon killed half-way through still has the work file at its next start:
        it finishes the submission again (the registry answers at once, and a part's
        blobs are all stored) and comes back here. Removing the work file first left
        snapshots nothing referred to any more.
        """
        _, sub_id = parse_name(work_path.name)
        shutil.rmtree(self.root / "staging" / sub_id, ignore_errors=True)
        (self.root / "staging" / (sub_id + OWNER_SUFFIX)).unlink(missing_ok=True)
        stem = work_path.name.removesuffix(".json")
        for leftover in [*self.journals(work_path), *work_path.parent.glob(f"{stem}.*.scratch")]:
            leftover.unlink(missing_ok=True)
        work_path.unlink(missing_ok=True)

    def _finished_ids(self) -> set[str]:
        """Ids of submissions with a receipt in ``done/`` or a rejection in ``failed/``."""
        ids = {parse_name(p.name)[1] for p in (self.root / "done").glob("*.json")}
        ids.update(
            parse_name(p.name.removesuffix(".error.json") + ".json")[1]
            for p in (self.root / "failed").glob("*.error.json")
        )
        return ids


def _read_journal(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return {}
