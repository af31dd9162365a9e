"""The spool: a maildir-style directory that is the durable queue between SDK and daemon.

::

    spool/tmp/<id>.json            being written by a client (not yet a submission)
    spool/new/<seq>-<id>.json      submitted, waiting for the daemon
    spool/work/<seq>-<id>.json     claimed by the daemon (+ <seq>-<id>.journal.json)
    spool/done/<seq>-<id>.json     the receipt: the version it committed
    spool/failed/<seq>-<id>.json   rejected (+ <seq>-<id>.error.json saying why)
    spool/staging/<id>/            snapshots of "mutable" files, owned by the submission
    spool/quarantine/<name>        set aside: was in new/ under a name no client makes

Every step is a write to a temporary name, an fsync, and a rename: a crash at any point
leaves each submission in exactly one of the folders, whole. ``seq`` sorts in the order
submissions were published: wall-clock nanoseconds (kept increasing within a process),
then the process id and a per-process counter.

On a shared node the folders are group-writable, so what is found in them is input
like any other: an id is checked against :data:`SUBMISSION_ID` before it is joined to
any path, a name against the strict ``<seq>-<id>.json`` before it is taken in, a
submission file is read only if it is a regular file (:meth:`Spool.read_claimed`), and
no link the spool did not make is followed (``no_follow.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from artisync.disk_full import disk_full_error, explaining_disk_full, is_disk_full
from artisync.errors import InvalidInputError, SubmissionError
from artisync.spool.no_follow import (
    check_folder,
    create_durably,
    open_folder,
    read_regular,
    remove_entry,
    rename_between,
)
from artisync.spool.submission import Submission

__all__ = [
    "FOLDERS",
    "MAX_SUBMISSION_BYTES",
    "OWNER_SUFFIX",
    "SUBMISSION_ID",
    "SUBMISSION_MODE",
    "Spool",
    "check_submission_id",
    "is_spool_name",
    "parse_name",
]

FOLDERS: Final = ("tmp", "new", "work", "done", "failed", "staging", "quarantine")
# Beside each staging directory, <id>.owner: the pid of the process that made it.
OWNER_SUFFIX: Final = ".owner"
# A submission id, as the SDK makes it (uuid4().hex). Nothing else is ever joined to a
# spool path: no "/", ".", NUL or glob character, never empty, always 32 characters.
SUBMISSION_ID: Final = re.compile(r"[0-9a-f]{32}")
# <seq>-<id>.json, seq as next_seq() writes it: time_ns, pid, counter.
_SPOOL_NAME: Final = re.compile(r"([0-9]{20}\.[0-9]{10}\.[0-9]{10})-([0-9a-f]{32})\.json")
# The most a submission file may hold. The SDK moves long lists of snapshots into
# staged lists and a directory is one entry, so a real one is far smaller; parsed, each
# inline entry costs the daemon ~0.8 KB, so this bound (~200,000 inline entries) keeps
# one submission well within the daemon's 500 MB.
MAX_SUBMISSION_BYTES: Final = 32 * 1024 * 1024
# A submission file's mode (before the umask): its owner writes it, the group reads it.
SUBMISSION_MODE: Final = 0o640
# An .owner file holds a pid.
_MAX_OWNER_BYTES: Final = 64

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


def check_submission_id(sub_id: str) -> str:
    """``sub_id`` if it is a submission id (:data:`SUBMISSION_ID`); else
    :class:`~artisync.errors.InvalidInputError` naming it."""
    if not SUBMISSION_ID.fullmatch(sub_id):
        raise InvalidInputError(
            f"{sub_id[:100]!r} is not a submission id: an id is 32 lowercase hex "
            "characters, as the SDK makes them (uuid4().hex)"
        )
    return sub_id


def is_spool_name(name: str) -> bool:
    """Whether ``name`` is a submission's name in the spool, ``<seq>-<id>.json``."""
    return _SPOOL_NAME.fullmatch(name) is not None


def parse_name(name: str) -> tuple[str, str]:
    """``(seq, id)`` from a spool file name ``<seq>-<id>.json``.

    Raises :class:`~artisync.errors.SubmissionError` for any other name; list a folder
    through :meth:`Spool.pending` or :meth:`Spool.in_work`, which keep only these.
    """
    match = _SPOOL_NAME.fullmatch(name)
    if match is None:
        raise SubmissionError(
            f"{name[:300]!r} is not a submission's name in the spool: "
            "<seq>-<id>.json, as the SDK publishes them"
        )
    return match[1], match[2]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    Neither the temporary name nor ``path`` is written through a symlink planted
    there: the first is created anew, the second renamed onto (which replaces a link).
    A full filesystem raises :class:`~artisync.errors.DiskFullError` and leaves
    ``path`` as it was (the daemon retries such writes until there is space).
    """
    tmp = f".{path.name}.tmp"
    with (
        explaining_disk_full(f"cannot write {path.name} in the spool", path),
        open_folder(path.parent) as folder,
    ):
        create_durably(folder, tmp, data)
        try:
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
        os.fsync(folder)


class Spool:
    """One spool directory. Clients and the daemon each open their own instance."""

    def __init__(self, root: Path) -> None:
        """Open the spool at ``root``, making its folders if missing.

        Raises :class:`~artisync.errors.InvalidInputError` if one of them is a symlink
        or not a directory: a member of the group could point it anywhere.
        """
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in FOLDERS:
            check_folder(self.root / folder)

    def folder(self, name: str) -> Path:
        """One of :data:`FOLDERS`."""
        return self.root / name

    # -- the client's side ---------------------------------------------------------

    def staging_dir(self, sub_id: str) -> Path:
        """Where a submission's "mutable" snapshots go (created on first use).

        ``<id>.owner`` beside it records the process that made it, so the daemon can
        tell the snapshots of a training script that was killed before logging them.
        """
        path = self.root / "staging" / check_submission_id(sub_id)
        if not os.path.lexists(path):
            owner = sub_id + OWNER_SUFFIX
            doing = f"cannot make the staging area of {sub_id} in the spool"
            with explaining_disk_full(doing, path), open_folder(path.parent) as folder:
                create_durably(folder, owner, str(os.getpid()).encode(), sync=False)
                try:
                    os.mkdir(sub_id, dir_fd=folder)
                except FileExistsError:
                    pass  # made meanwhile by another thread of this process
                except BaseException:
                    # An empty owner file would look "being written" to every sweep.
                    os.unlink(owner, dir_fd=folder)
                    raise
        check_folder(path)  # a symlink planted in its place is refused, never followed
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
            if sub_id in in_use or not SUBMISSION_ID.fullmatch(sub_id):
                continue  # not a name the SDK makes: nothing to clean up after
            if finished is None:
                finished = self._finished_ids()
            try:
                # Read as a regular file only: a FIFO planted here must not block.
                pid = int(read_regular(owner, _MAX_OWNER_BYTES)[0])
            except (OSError, ValueError):
                continue  # being written: leave it to the next sweep
            if sub_id in finished or not _process_alive(pid):
                directory = owner.with_name(sub_id)
                abandoned.extend(p for p in (directory, owner) if os.path.lexists(p))
        return sorted(abandoned)

    def remove_staging(self, path: Path) -> None:
        """Remove one path :meth:`abandoned_staging` returned: a staging area (a symlink
        in its place is removed itself, never followed) or its ``.owner`` file."""
        sub_id = path.name.removesuffix(OWNER_SUFFIX)
        if path.parent != self.root / "staging" or not SUBMISSION_ID.fullmatch(sub_id):
            raise InvalidInputError(f"{path} is not a staging area of the spool at {self.root}")
        remove_entry(path.parent, path.name)

    def submission_ids(self) -> set[str]:
        """Ids of every submission not yet finished: in ``tmp/``, ``new/`` or ``work/``."""
        ids = {p.name.removesuffix(".json") for p in (self.root / "tmp").iterdir()}
        ids = {sub_id for sub_id in ids if SUBMISSION_ID.fullmatch(sub_id)}
        ids.update(parse_name(p.name)[1] for p in [*self.pending(), *self.in_work()])
        return ids

    def write_tmp(self, submission: Submission) -> Path:
        """Write a submission durably under ``tmp/``; it is not yet visible to the daemon.

        Raises :class:`~artisync.errors.DiskFullError` if the spool's filesystem is
        full; nothing is left in ``tmp/`` then.
        """
        name = f"{check_submission_id(submission.id)}.json"
        path = self.root / "tmp" / name
        data = submission.dumps()
        if len(data) > MAX_SUBMISSION_BYTES:
            raise InvalidInputError(
                f"artifact {submission.artifact.name!r}: its {len(submission.entries):,} "
                f"entries take {len(data) / 2**20:.0f} MiB, over the "
                f"{MAX_SUBMISSION_BYTES >> 20} MiB a submission may hold; add a directory "
                "with add_dir (one entry however many files), a prefix with one "
                "add_reference, or files with policy='mutable' (listed apart)"
            )
        with (
            explaining_disk_full(f"cannot write submission {submission.id} to the spool", path),
            open_folder(path.parent) as folder,
        ):
            # The group may read it, never write it: the daemon takes the file's owner
            # for the caller, so content another member could change would be read with
            # the owner's rights and committed with the owner's key.
            create_durably(folder, name, data, mode=SUBMISSION_MODE)
        return path

    def publish(self, tmp_path: Path, seq: str | None = None) -> Path:
        """Rename a written submission into ``new/``: from here on it will be processed.

        The sequence number is taken at the last moment, so it orders submissions by
        when they became visible, which is when ``log_artifact`` returns.
        """
        sub_id = check_submission_id(tmp_path.name.removesuffix(".json"))
        target = self.root / "new" / f"{seq or next_seq()}-{sub_id}.json"
        try:
            rename_between(tmp_path, target)
        except OSError as e:
            if not is_disk_full(e):
                raise
            # A directory that must grow to take the name. The written file stays in
            # tmp/ for nobody: remove it, so the caller's retry starts clean.
            tmp_path.unlink(missing_ok=True)
            raise disk_full_error(e, f"cannot publish submission {sub_id}", target) from e
        return target

    def submit(self, submission: Submission) -> Path:
        """Write and publish in one go: what the SDK does when the daemon is down."""
        return self.publish(self.write_tmp(submission))

    def find_result(self, sub_id: str) -> dict[str, Any] | None:
        """The receipt or rejection of a finished submission, or ``None`` if not finished
        (or ``sub_id`` is not a submission id: it is never used as a pattern)."""
        if not SUBMISSION_ID.fullmatch(sub_id):
            return None
        found = [
            *(self.root / "done").glob(f"*-{sub_id}.json"),
            *(self.root / "failed").glob(f"*-{sub_id}.error.json"),
        ]
        for path in found:
            try:
                result = json.loads(read_regular(path, MAX_SUBMISSION_BYTES)[0])
            except (OSError, ValueError):
                continue  # not a file the daemon wrote (planted, or being replaced)
            if isinstance(result, dict) and result.get("id") == sub_id:
                return result
        return None

    # -- the daemon's side ---------------------------------------------------------

    def pending(self) -> list[Path]:
        """Submissions in ``new/``, in sequence order (see :meth:`strays` for the rest)."""
        return sorted(p for p in (self.root / "new").iterdir() if is_spool_name(p.name))

    def strays(self) -> list[Path]:
        """What is in ``new/`` under a name no client makes: never a submission."""
        return sorted(p for p in (self.root / "new").iterdir() if not is_spool_name(p.name))

    def set_aside(self, path: Path) -> Path:
        """Move a stray out of ``new/`` into ``quarantine/``, so that it is looked at
        once, not at every scan; its name is kept (a listed name is one plain path
        component), made unique so an earlier stray of that name is not replaced."""
        if path.parent != self.root / "new":
            raise InvalidInputError(f"{path} is not in the spool's new/ at {self.root}")
        target = self.root / "quarantine" / path.name
        if os.path.lexists(target):
            target = target.with_name(f"{path.name[:200]}.{time.time_ns()}")
        rename_between(path, target)
        return target

    def in_work(self) -> list[Path]:
        """Claimed submissions (left by a daemon that stopped), in sequence order.

        Journals, scratch files and anything not named ``<seq>-<id>.json`` are left out.
        """
        return sorted(p for p in (self.root / "work").iterdir() if is_spool_name(p.name))

    def claim(self, path: Path) -> Path | None:
        """Move a submission from ``new/`` to ``work/``; ``None`` if it is already gone."""
        parse_name(path.name)
        target = self.root / "work" / path.name
        try:
            rename_between(path, target)
        except FileNotFoundError:
            return None
        return target

    def claim_tmp(self, tmp_path: Path, work_path: Path) -> None:
        """Move a client's written file from ``tmp/`` straight to ``work/`` (a socket
        submission), without the folder sync the socket route never had.

        Raises ``FileNotFoundError`` if the file is not in ``tmp/``.
        """
        parse_name(work_path.name)
        if tmp_path.parent != self.root / "tmp" or work_path.parent != self.root / "work":
            raise InvalidInputError(f"{tmp_path} -> {work_path} is not tmp/ to work/")
        rename_between(tmp_path, work_path, sync=False)

    def read_claimed(self, work_path: Path) -> tuple[bytes, os.stat_result]:
        """The bytes of a claimed submission file and its ``fstat`` (its owner is the
        caller, see ``daemon/callers.py``).

        Only a regular file of at most :data:`MAX_SUBMISSION_BYTES` is read, opened
        without following a symlink and without blocking (a FIFO), and checked after
        opening. Raises :class:`~artisync.errors.SubmissionError` saying what the file
        is instead, or why it cannot be read: it is rejected, never retried.
        """
        try:
            data, st = read_regular(work_path, MAX_SUBMISSION_BYTES)
        except FileNotFoundError:
            raise SubmissionError(
                f"{work_path.name} is gone from {work_path.parent}: something other than "
                "the daemon removed it. Log the artifact again"
            ) from None
        except PermissionError as e:
            raise SubmissionError(
                f"{work_path.name} in {work_path.parent} cannot be read by the daemon "
                f"({e.strerror}): submission files must be readable by the daemon's user"
            ) from None
        return data, st

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
        parse_name(work_path.name)
        failed = self.root / "failed" / work_path.name
        error_path = failed.with_name(failed.name.removesuffix(".json") + ".error.json")
        write_atomic(error_path, json.dumps(error, indent=1).encode())
        # Whatever it is (a FIFO or a symlink too), it is moved, never opened or followed.
        with contextlib.suppress(FileNotFoundError):
            rename_between(work_path, failed)
        self.discard(work_path)
        return error_path

    def discard(self, work_path: Path) -> None:
        """Remove what a finished submission leaves behind, its work file last.

        A daemon killed half-way through still has the work file at its next start:
        it finishes the submission again (the registry answers at once, and a part's
        blobs are all stored) and comes back here. Removing the work file first left
        snapshots nothing referred to any more.
        """
        _, sub_id = parse_name(work_path.name)  # so sub_id is 32 hex characters
        remove_entry(self.root / "staging", sub_id)
        remove_entry(self.root / "staging", sub_id + OWNER_SUFFIX)
        stem = work_path.name.removesuffix(".json")
        for leftover in [*self.journals(work_path), *work_path.parent.glob(f"{stem}.*.scratch")]:
            remove_entry(leftover.parent, leftover.name)
        remove_entry(work_path.parent, work_path.name)

    def _finished_ids(self) -> set[str]:
        """Ids of submissions with a receipt in ``done/`` or a rejection in ``failed/``."""
        names = [p.name for p in (self.root / "done").iterdir()]
        names += [
            p.name.removesuffix(".error.json") + ".json"
            for p in (self.root / "failed").glob("*.error.json")
        ]
        return {parse_name(name)[1] for name in names if is_spool_name(name)}


def _read_journal(path: Path) -> dict[str, Any]:
    try:
        # A journal is the daemon's own, but in a group-writable folder: read it as a
        # regular file only, so a FIFO in its place fails the submission, not blocks it.
        data = read_regular(path, MAX_SUBMISSION_BYTES)[0]
    except FileNotFoundError:
        return {}
    return dict(json.loads(data))
