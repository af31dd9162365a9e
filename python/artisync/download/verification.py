"""``verify_root``: does a directory hold exactly a version's files? Re-reads everything.

Unlike a download, which trusts files it wrote and that kept their stat, verification
hashes every file (that is its job: it also catches a same-size edit the stat cannot
see) and lists every difference in one error: modified, missing and extra files.
"""

from __future__ import annotations

import os
from pathlib import Path

from artisync import _core
from artisync.download.errors import VerificationError
from artisync.download.plan import check_supported, make_task, select_entries, unverifiable
from artisync.manifest import Manifest

__all__ = ["verify_root"]


def verify_root(
    manifest: Manifest,
    root: str | os.PathLike[str],
    *,
    path_prefix: str | None = None,
    threads: int | None = None,
    skip_unverifiable: bool = False,
) -> int:
    """Check that ``root`` holds exactly ``manifest``'s files, re-hashing each one.

    With ``path_prefix``, only the entries whose path starts with it are expected, and
    only files under that prefix count as extra. Symlinks under ``root`` are followed.

    With ``skip_unverifiable`` (W&B's ``verify``: "references are not verified"),
    references whose file cannot be checked by an MD5 are left out instead of refused:
    neither hashed nor missing nor extra. Returns how many were left out.

    Raises:
        VerificationError: listing every modified, missing and extra file.
        UnsupportedEntryError: the manifest has entries that cannot be downloaded, and
            so cannot be checked (remote references, ``checksum=False``).
        OSError: a file under ``root`` cannot be read.
    """
    entries = select_entries(manifest, path_prefix)
    skipped: set[str] = set()
    if skip_unverifiable:
        skipped = {e.path for e in entries if e.ref is not None and unverifiable(e)}
        entries = [e for e in entries if e.path not in skipped]
    check_supported(entries)
    root_path = Path(os.path.abspath(root))
    expected = {entry.path: make_task(str(root_path), entry) for entry in entries}
    found: set[str] = set()
    if root_path.is_dir():
        found = {w.path for w in _core.walk(root_path, threads=threads)}
    missing = [path for path in expected if path not in found]
    extra = sorted(
        path
        for path in found
        if path not in expected and path not in skipped and path.startswith(path_prefix or "")
    )
    present = [task for path, task in expected.items() if path in found]
    digests = _core.hash_files([task.target for task in present], threads=threads)
    modified = [
        task.entry.path
        for task, digest in zip(present, digests, strict=True)
        if digest.md5_hex != task.md5_hex
    ]
    if modified or missing or extra:
        raise VerificationError(root_path, modified, missing, extra)
    return len(skipped)
