"""Staged lists: the snapshots of a big submission in a file of their own.

``add_dir`` (mutable) of a million files makes a million staged entries. Inline in the
submission JSON, the daemon would parse them all at once (~1 KB each as Python
objects), and they would travel over the socket in one request. Above
:data:`LIST_AT` entries the SDK writes them instead as JSON lines, one
``[path, staged, digest, size]`` row per snapshot, into the submission's own staging
area, and the submission carries one :class:`StagedListEntry` naming the file with its
row count and MD5. The daemon reads it a chunk at a time (:func:`read_rows`), checking
each row as it would an inline entry and the count and digest at the end: a list cut
short or changed rejects the submission, never drops entries silently.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from artisync.errors import SubmissionError
from artisync.spool.submission import (
    Entry,
    StagedEntry,
    StagedListEntry,
    Submission,
    staged_row,
)

__all__ = ["LIST_AT", "LIST_NAME", "digests", "pack", "read_rows"]

LIST_AT: Final = 20_000
"""Staged entries above which a submission lists them in a file."""

LIST_NAME: Final = "entries.staged.jsonl"


def pack(sub: Submission, spool_root: Path) -> Submission:
    """``sub`` itself if it has few staged entries; else a copy whose staged entries
    are in a list file, written (and fsynced) in its staging area.

    The staging area holds the snapshots already, and is the daemon's once the
    submission is handed over; the list goes with it.
    """
    staged = [e for e in sub.entries if isinstance(e, StagedEntry)]
    if len(staged) <= LIST_AT:
        return sub
    relative = f"staging/{sub.id}/{LIST_NAME}"
    path = spool_root / relative
    hasher = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as f:
        for start in range(0, len(staged), 4096):
            rows = "".join(
                json.dumps([e.path, e.staged, e.digest, e.size], separators=(",", ":")) + "\n"
                for e in staged[start : start + 4096]
            ).encode()
            hasher.update(rows)
            f.write(rows)
        f.flush()
        # Named by the submission, which is fsynced before it is renamed into new/.
        os.fsync(f.fileno())
    listed = StagedListEntry(
        list=relative,
        count=len(staged),
        digest=base64.b64encode(hasher.digest()).decode(),
        size=sum(e.size for e in staged),
    )
    others: list[Entry] = [e for e in sub.entries if not isinstance(e, StagedEntry)]
    # Every other field as it is (the version a draft was made from among them).
    return dataclasses.replace(sub, entries=[listed, *others])


def read_rows(entry: StagedListEntry, spool_root: Path, sub_id: str) -> Iterator[StagedEntry]:
    """The staged entries of a list, one at a time, each checked.

    Raises:
        SubmissionError: the list is outside the submission's staging area, missing,
            or not what the submission says (a bad row, another count or digest).
    """
    parts = entry.list.split("/")
    if len(parts) != 3 or parts[:2] != ["staging", sub_id] or parts[2] in {"", ".", ".."}:
        raise SubmissionError(
            f"staged list {entry.list!r} is outside this submission's staging area"
        )
    hasher = hashlib.md5(usedforsecurity=False)
    count = 0
    try:
        with open(spool_root / entry.list, "rb") as f:
            for count, line in enumerate(f, start=1):
                hasher.update(line)
                where = f"staged list {entry.list} line {count}"
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise SubmissionError(f"{where}: not JSON: {e}") from None
                yield staged_row(where, row)
    except FileNotFoundError:
        raise SubmissionError(f"staged list {entry.list!r} is missing from the spool") from None
    if count != entry.count:
        raise SubmissionError(
            f"staged list {entry.list} has {count:,} rows, the submission says {entry.count:,}"
        )
    if base64.b64encode(hasher.digest()).decode() != entry.digest:
        raise SubmissionError(f"staged list {entry.list} is not the file the submission names")


def digests(entry: StagedListEntry, spool_root: Path) -> Iterator[str]:
    """The digests a list names, as far as it can be read (for garbage collection)."""
    try:
        with open(spool_root / entry.list, "rb") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, list) and len(row) == 4 and isinstance(row[2], str):
                    yield row[2]
    except OSError:
        return
