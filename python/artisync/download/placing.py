"""Verified copies into the download root, many files per call into the Rust core.

Each file is copied to a hidden temporary name in its target directory while it is
hashed, and renamed to its final name only if the MD5 is the entry's
(``_core.copy_verify_many``): a corrupt source never leaves anything under an entry's
name, and an interrupted download leaves whole files or none. Copies are independent,
writable files (reflinks where the filesystem has them), as W&B's are. Nothing is
fsynced: a download can always be repeated.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from artisync import _core, disk_full
from artisync.download.errors import DownloadError
from artisync.download.plan import Task
from artisync.download.root_record import RootRecord

__all__ = [
    "BATCH_BYTES",
    "BATCH_FILES",
    "DownloadReport",
    "Failure",
    "Placer",
    "any_fatal",
    "chunks",
    "raise_first",
]

# Per call into the core: enough files to amortise the thread hop, few enough bytes to
# give Ctrl-C a chance between calls (a call runs to its end once started).
BATCH_FILES = 4096
BATCH_BYTES = 256 << 20


@dataclass(slots=True)
class DownloadReport:
    """What one download did.

    Attributes:
        root: The directory downloaded into (absolute).
        entries: Entries selected (all, or those under ``path_prefix``).
        written: Files written (new, or replacing a missing or modified one).
        skipped: Files already there, unchanged since a download wrote them.
        bytes_written: Bytes in the files written.
        cache_hits: Distinct blobs read from the local cache (remote stores only).
        fetched: Distinct blobs fetched from the store into the cache.
    """

    root: Path
    entries: int
    written: int = 0
    skipped: int = 0
    bytes_written: int = 0
    cache_hits: int = 0
    fetched: int = 0


@dataclass(slots=True)
class Failure:
    """A task that was not placed: the source's bytes had another MD5 (``actual``), or
    the copy failed (``error``)."""

    task: Task
    source: str
    actual: str | None = None
    error: OSError | None = None

    @property
    def source_missing(self) -> bool:
        """The source file was not there (an evicted cache blob, a missing blob)."""
        return isinstance(self.error, FileNotFoundError) and self.error.filename == self.source


def chunks(tasks: Sequence[Task], max_files: int, max_bytes: int) -> Iterator[Sequence[Task]]:
    """Consecutive slices of ``tasks`` with at most ``max_files`` tasks and
    ``max_bytes`` of content each (or a single task)."""
    start, total = 0, 0
    for i, task in enumerate(tasks):
        size = task.entry.size or 0
        if i > start and (i - start >= max_files or total + size > max_bytes):
            yield tasks[start:i]
            start, total = i, 0
        total += size
    if start < len(tasks):
        yield tasks[start:]


class Placer:
    """Places verified copies for one download, recording what it wrote."""

    def __init__(self, record: RootRecord, report: DownloadReport, threads: int | None) -> None:
        self.record = record
        self.report = report
        self.threads = threads
        self._tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._calls = 0

    def place(self, pairs: Sequence[tuple[Task, str]]) -> list[Failure]:
        """Copy each ``(task, source)`` into ``task.target`` if the bytes match;
        returns the tasks that were not placed, in order. Blocking: runs the core."""
        failures: list[Failure] = []
        for start in range(0, len(pairs), BATCH_FILES):
            batch = pairs[start : start + BATCH_FILES]
            self._calls += 1
            results = _core.copy_verify_many(
                [(source, task.target, task.md5_hex) for task, source in batch],
                tag=f"{self._tag}-{self._calls}",
                threads=self.threads,
            )
            record, report = self.record, self.report
            for (task, source), result in zip(batch, results, strict=True):
                if isinstance(result, OSError):
                    failures.append(Failure(task, source, error=result))
                elif result.written:
                    record.note(task.entry, result)
                    report.written += 1
                    report.bytes_written += result.size
                else:
                    failures.append(Failure(task, source, actual=result.md5_hex))
        return failures


def any_fatal(errors: list[Exception]) -> bool:
    """Whether an error is not about one entry's content (a :class:`DownloadError`) but
    about the root or the store: going on with other entries would not help."""
    return any(not isinstance(e, DownloadError) for e in errors)


def raise_first(errors: list[Exception]) -> None:
    """Raise the first error, with a note naming how many others there were."""
    if not errors:
        return
    first = errors[0]
    if len(errors) > 1:
        others = "; ".join(str(e) for e in errors[1:4])
        more = f"; and {len(errors) - 4} more" if len(errors) > 4 else ""
        first.add_note(f"{len(errors) - 1} other entries failed too: {others}{more}")
    # A full download root or cache names its filesystem and says what to do.
    raise disk_full.explained(first, "cannot download")
