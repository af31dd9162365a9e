"""The finished entries of a version in the making, kept compact, and their manifest.

A directory of a million files must go through the daemon in 500 MB (issue 6). As
``Item`` or ``ManifestEntry`` objects, with a digest string, a size int and a dict
each, an entry cost ~1.7 KB. Here a plain entry (stored content with no ``ref`` or
``extra``: nearly every entry of a big artifact) costs its UTF-8 path and 32 bytes:
where the path ends, the raw MD5, the size, each in one flat array. Other entries
(references) stay :class:`~artisync.manifest.ManifestEntry` objects.

:meth:`VersionEntries.manifest` writes the ``artifact_manifest_v1`` JSON straight from
these columns, the same bytes as ``json.dumps(Manifest.to_json(), separators=(",",
":"))``, and the artifact digest in the same pass.
"""

from __future__ import annotations

import binascii
import hashlib
import heapq
import itertools
import json
from array import array
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring_ascii  # what json.dumps uses for keys
from typing import TYPE_CHECKING

from artisync.manifest import (
    DIGEST_HEADER,
    MANIFEST_VERSION,
    STORAGE_POLICY,
    ManifestEntry,
    entry_json,
)

if TYPE_CHECKING:
    from artisync.daemon.expand import Item

__all__ = ["DuplicatePathError", "VersionEntries"]

# Entries written per join: few calls per entry, no string the size of the manifest.
_BATCH = 4096
_JSON_SEPARATORS = (",", ":")


class DuplicatePathError(ValueError):
    """Two entries of one version have the same path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"two entries of the artifact are named {path!r}")
        self.path = path


def _raw_md5(digest: str | None) -> bytes | None:
    """The 16 bytes of a canonical base64 MD5, or ``None`` for any other digest."""
    if digest is None or len(digest) != 24:
        return None
    try:
        raw = binascii.a2b_base64(digest, strict_mode=True)
    except binascii.Error:
        return None
    # Only what encodes back to the same text: the manifest must say what it was told.
    if len(raw) != 16 or binascii.b2a_base64(raw, newline=False) != digest.encode():
        return None
    return raw


class VersionEntries:
    """A version's entries, added a chunk at a time; see the module docstring."""

    __slots__ = ("_ends", "_last", "_md5", "_names", "_others", "_runs", "_sizes", "stored_bytes")

    def __init__(self) -> None:
        # Plain entries, in the order added: UTF-8 paths end to end, the raw MD5s, the
        # sizes. Paths come in sorted runs (a directory walk is one), so a manifest is
        # a merge of runs, never a sort of a million strings.
        self._names = bytearray()
        self._ends = array("q")
        self._md5 = bytearray()
        self._sizes = array("q")
        self._runs: list[int] = []  # index of each run's first plain entry
        self._last = b""
        self._others: list[ManifestEntry] = []
        self.stored_bytes = 0
        """Bytes of content the version stores (references excluded)."""

    def __len__(self) -> int:
        return len(self._ends) + len(self._others)

    def add(self, items: Iterable[Item]) -> None:
        """Record items whose digest and size are final."""
        for item in items:
            if item.stored:
                self.stored_bytes += item.size or 0
            size = item.size
            plain = item.ref is None and not item.extra and size is not None
            raw = _raw_md5(item.digest) if plain else None
            if raw is None or size is None:
                entry = ManifestEntry(
                    item.path, item.digest or "", item.size, ref=item.ref, extra=item.extra
                )
                self._others.append(entry)
                continue
            # surrogatepass: a file name that is not UTF-8 keeps its place in the order.
            name = item.path.encode("utf-8", "surrogatepass")
            if not self._runs or name <= self._last:
                self._runs.append(len(self._ends))
            self._last = name
            self._names += name
            self._ends.append(len(self._names))
            self._md5 += raw
            self._sizes.append(size)

    def _plain(self, first: int, stop: int) -> Iterator[tuple[str, int]]:
        """Paths and indices of the plain entries ``first`` to ``stop``."""
        names, ends = self._names, self._ends
        start = ends[first - 1] if first else 0
        for i in range(first, stop):
            end = ends[i]
            yield names[start:end].decode("utf-8", "surrogatepass"), i
            start = end

    def _ordered(self) -> Iterator[tuple[str, int]]:
        """Every entry's path and index, by path: plain entries are ``0..n-1``, the
        others ``n..``."""
        plain = len(self._ends)
        bounds = [*self._runs, plain]
        runs: list[Iterator[tuple[str, int]]] = [
            self._plain(a, b) for a, b in itertools.pairwise(bounds)
        ]
        if self._others:
            others = sorted((e.path, plain + i) for i, e in enumerate(self._others))
            runs.append(iter(others))
        return runs[0] if len(runs) == 1 else heapq.merge(*runs)

    def entries(self) -> Iterator[ManifestEntry]:
        """Every entry as a :class:`ManifestEntry`, in no particular order."""
        md5, sizes = self._md5, self._sizes
        for path, i in self._plain(0, len(self._ends)):
            digest = binascii.b2a_base64(md5[16 * i : 16 * i + 16], newline=False).decode()
            yield ManifestEntry(path, digest, sizes[i])
        yield from self._others

    def manifest(self) -> tuple[str, bytearray]:
        """The artifact digest and the manifest JSON (W&B's ``artifact_manifest_v1``,
        default storage config, entries sorted by path).

        Raises:
            DuplicatePathError: if two entries have the same path.
        """
        md5, sizes, others = self._md5, self._sizes, self._others
        plain = len(self._ends)
        hasher = hashlib.md5(DIGEST_HEADER, usedforsecurity=False)
        # The top level as json.dumps writes it, with "contents" left open.
        top = {
            "version": MANIFEST_VERSION,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": {},
        }
        out = bytearray(json.dumps(top, separators=_JSON_SEPARATORS)[:-2].encode())
        previous: str | None = None
        b64 = binascii.b2a_base64
        ordered = self._ordered()
        first = True
        while batch := list(itertools.islice(ordered, _BATCH)):
            lines: list[str] = []
            objects: list[str] = []
            for path, i in batch:
                if path == previous:
                    raise DuplicatePathError(path)
                previous = path
                if i < plain:
                    digest = b64(md5[16 * i : 16 * i + 16], newline=False).decode()
                    # Base64 needs no JSON escaping.
                    value = f'{{"digest":"{digest}","size":{sizes[i]}}}'
                else:
                    entry = others[i - plain]
                    digest = entry.digest
                    value = json.dumps(entry_json(entry), separators=_JSON_SEPARATORS)
                lines.append(f"{path}:{digest}\n")
                objects.append(f"{encode_basestring_ascii(path)}:{value}")
            hasher.update("".join(lines).encode())
            if not first:
                out += b","
            first = False
            out += ",".join(objects).encode()
        out += b"}}"
        return hasher.hexdigest(), out
