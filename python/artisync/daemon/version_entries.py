"""The finished entries of a version in the making, kept compact, and their manifest.

A version of a million entries must go through the daemon in 500 MB (DESIGN.md). As
``Item`` or ``ManifestEntry`` objects, with a digest string, a size int and a dict
each, an entry cost ~1.7 KB. Here a plain entry (stored content with no ``ref`` or
``extra``: nearly every entry of a big artifact) costs its UTF-8 path and 32 bytes:
where the path ends, the raw MD5, the size, each in one flat array. Any other entry (a
reference) costs its path, its digest and its manifest JSON object, written once when
it is added, as bytes in flat arrays too.

:meth:`VersionEntries.write_manifest` writes the ``artifact_manifest_v1`` JSON straight
from these columns, a batch at a time (to a file, for a version whose manifest is too
big to hold), the same bytes as ``json.dumps(Manifest.to_json(), separators=(",",
":"))``, with the artifact digest in the same pass.
"""

from __future__ import annotations

import binascii
import hashlib
import heapq
import itertools
import json
from array import array
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring_ascii  # what json.dumps uses for keys
from typing import TYPE_CHECKING

from artisync import _core
from artisync.manifest import (
    DIGEST_HEADER,
    MANIFEST_VERSION,
    STORAGE_POLICY,
    ManifestEntry,
    entry_json,
)
from artisync.spool.batch_checks import all_canonical_md5

if TYPE_CHECKING:
    from artisync.daemon.expand import Item

__all__ = ["DuplicatePathError", "PathConflictError", "VersionEntries"]

# Entries written per join: few calls per entry, no string the size of the manifest.
_BATCH = 4096
_JSON_SEPARATORS = (",", ":")


class DuplicatePathError(ValueError):
    """Two entries of one version have the same path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"two entries of the artifact are named {path!r}")
        self.path = path


class PathConflictError(DuplicatePathError):
    """One entry is a file where another needs a directory (``a`` and ``a/b``): no
    download could hold both. A :class:`DuplicatePathError`, so whoever refuses a
    version for a repeated path refuses it for this too."""

    def __init__(self, file: str, inside: str) -> None:
        ValueError.__init__(
            self,
            f"the artifact has an entry {file!r} and an entry {inside!r} inside a "
            f"directory of that name: a path cannot be both a file and a directory; "
            "rename or remove one of them",
        )
        self.path = file
        self.inside = inside


class _ConflictCheck:
    """Finds a file that is also a directory, seeing the paths in sorted order.

    Everything sorted between ``a`` and ``a/b`` starts with ``a`` (``a-b``, ``a.txt``:
    ``-`` and ``.`` sort before ``/``), so the candidate files are the chain of earlier
    paths that are string prefixes of the current one. A path that is not a prefix of
    the current path is a prefix of no later one either, and leaves the chain for good.
    """

    __slots__ = ("_chain",)

    def __init__(self) -> None:
        self._chain: list[str] = []

    def see(self, path: str) -> None:
        chain = self._chain
        while chain and not path.startswith(chain[-1]):
            chain.pop()
        for earlier in chain:
            if path[len(earlier)] == "/":
                raise PathConflictError(earlier, path)
        chain.append(path)


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


class _Texts:
    """Strings end to end in one bytearray (UTF-8, surrogates passed through), with
    where each ends: ~8 bytes of overhead each instead of a ~50-byte ``str``."""

    __slots__ = ("_data", "_ends")

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("q")

    def __len__(self) -> int:
        return len(self._ends)

    def append(self, text: bytes) -> None:
        self._data += text
        self._ends.append(len(self._data))

    def data(self) -> bytes:
        """The strings end to end, UTF-8."""
        return bytes(self._data)

    def ends(self) -> bytes:
        """Where each string ends in :meth:`data`: native int64s."""
        return self._ends.tobytes()

    def is_ascii(self) -> bool:
        """Whether every string is ASCII."""
        return self._data.isascii()

    def raw(self, i: int) -> bytes:
        return bytes(self._data[self._ends[i - 1] if i else 0 : self._ends[i]])

    def __getitem__(self, i: int) -> str:
        return self.raw(i).decode("utf-8", "surrogatepass")

    def iter_from(self, first: int, stop: int) -> Iterator[str]:
        data, ends = self._data, self._ends
        start = ends[first - 1] if first else 0
        for i in range(first, stop):
            end = ends[i]
            yield data[start:end].decode("utf-8", "surrogatepass")
            start = end


class _Paths(_Texts):
    """Paths, with where each sorted run of them starts (a walk or a listing is one),
    so that all of them come out in order by merging runs, never by sorting."""

    __slots__ = ("_last", "runs")

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[int] = []
        self._last = b""

    def add(self, path: str) -> None:
        # Encoded bytes sort as the code points of the str do (surrogates included).
        name = path.encode("utf-8", "surrogatepass")
        if not self.runs or name <= self._last:
            self.runs.append(len(self))
        self._last = name
        self.append(name)

    def extend(self, paths: list[str]) -> None:
        """:meth:`add` for many paths at once."""
        names = [path.encode("utf-8", "surrogatepass") for path in paths]
        if not names:
            return
        first = len(self)
        if not self.runs or names[0] <= self._last:
            self.runs.append(first)
        # A new run wherever a path does not sort after the one before it.
        self.runs.extend(
            first + i for i, (a, b) in enumerate(itertools.pairwise(names), start=1) if b <= a
        )
        self._last = names[-1]
        ends = itertools.accumulate(map(len, names), initial=len(self._data))
        self._ends.extend(itertools.islice(ends, 1, None))
        self._data += b"".join(names)

    def sorted_runs(self, base: int) -> list[Iterator[tuple[str, int]]]:
        """Each run as ``(path, base + index)`` pairs, in order."""
        bounds = [*self.runs, len(self)]
        return [
            zip(self.iter_from(a, b), range(base + a, base + b), strict=True)
            for a, b in itertools.pairwise(bounds)
        ]


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class VersionEntries:
    """A version's entries, added a chunk at a time; see the module docstring."""

    __slots__ = ("_digests", "_md5", "_other_paths", "_paths", "_sizes", "_values", "stored_bytes")

    def __init__(self) -> None:
        # Plain entries, in the order added: paths, raw MD5s, sizes.
        self._paths = _Paths()
        self._md5 = bytearray()
        self._sizes = array("q")
        # Other entries (references, odd digests): paths, digests, and the JSON object
        # each has in the manifest, already written.
        self._other_paths = _Paths()
        self._digests = _Texts()
        self._values = _Texts()
        self.stored_bytes = 0
        """Bytes of content the version stores (references excluded)."""

    def __len__(self) -> int:
        return len(self._paths) + len(self._other_paths)

    def add(self, items: Iterable[Item]) -> None:
        """Record items whose digest and size are final."""
        items = list(items)
        if self._add_plain(items):
            return
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
                self._other_paths.add(entry.path)
                self._digests.append(_encode(entry.digest))
                value = json.dumps(entry_json(entry), separators=_JSON_SEPARATORS)
                self._values.append(value.encode())  # ASCII: json.dumps escapes the rest
                continue
            self._paths.add(item.path)
            self._md5 += raw
            self._sizes.append(size)

    def _add_plain(self, items: list[Item]) -> bool:
        """Record ``items`` as a batch if every one is a plain entry (stored, no ``ref``
        or ``extra``, a size, a canonical digest: what :meth:`add` makes of each one at a
        time); else record nothing and return False."""
        digests: list[str] = []
        sizes: list[int] = []
        for item in items:
            if not item.stored or item.ref is not None or item.extra:
                return False
            if item.digest is None or item.size is None:
                return False
            digests.append(item.digest)
            sizes.append(item.size)
        if not all_canonical_md5(digests):
            return False
        self._paths.extend([item.path for item in items])
        self._md5 += b"".join(map(binascii.a2b_base64, digests))
        self._sizes.extend(sizes)
        self.stored_bytes += sum(sizes)
        return True

    def _ordered(self) -> Iterator[tuple[str, int]]:
        """Every entry's path and index, by path: plain entries are ``0..n-1``, the
        others ``n..``."""
        runs = self._paths.sorted_runs(0) + self._other_paths.sorted_runs(len(self._paths))
        if not runs:
            return iter(())
        return runs[0] if len(runs) == 1 else heapq.merge(*runs)

    def entries(self) -> Iterator[ManifestEntry]:
        """Every entry as a :class:`ManifestEntry`, in no particular order."""
        md5, sizes = self._md5, self._sizes
        for i, path in enumerate(self._paths.iter_from(0, len(self._paths))):
            digest = binascii.b2a_base64(md5[16 * i : 16 * i + 16], newline=False).decode()
            yield ManifestEntry(path, digest, sizes[i])
        for i, path in enumerate(self._other_paths.iter_from(0, len(self._other_paths))):
            value = json.loads(self._values.raw(i))
            yield ManifestEntry(
                path,
                self._digests[i],
                value.get("size"),
                ref=value.get("ref"),
                birth_artifact_id=value.get("birthArtifactID"),
                extra=value.get("extra", {}),
            )

    def manifest(self) -> tuple[str, bytearray]:
        """The artifact digest and the manifest JSON (W&B's ``artifact_manifest_v1``,
        default storage config, entries sorted by path), in memory."""
        if not self._other_paths and self._paths and self._paths.is_ascii():
            return self._plain_manifest()
        out = bytearray()
        digest = self.write_manifest(out.extend)
        return digest, out

    def _plain_manifest(self) -> tuple[str, bytearray]:
        """:meth:`manifest` of plain entries with ASCII paths only (a version of files,
        as nearly all are), written by the core from the columns in one call: the same
        bytes as :meth:`write_manifest`, which writes them an entry at a time."""
        paths = self._paths
        contents, lines, clash = _core.manifest_contents(
            paths.data(), paths.ends(), bytes(self._md5), self._sizes.tobytes()
        )
        if clash is not None:
            first, second = clash
            if first == second:
                raise DuplicatePathError(paths[first])
            raise PathConflictError(paths[first], paths[second])
        out = bytearray(self._top())
        out += contents
        out += b"}}"
        return hashlib.md5(DIGEST_HEADER + lines, usedforsecurity=False).hexdigest(), out

    @staticmethod
    def _top() -> bytes:
        """The top level as json.dumps writes it, with "contents" left open."""
        top = {
            "version": MANIFEST_VERSION,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": {},
        }
        return json.dumps(top, separators=_JSON_SEPARATORS)[:-2].encode()

    def write_manifest(self, write: Callable[[bytes], object]) -> str:
        """Write the manifest JSON through ``write`` a batch at a time (to a file, for
        a version too big to hold its manifest in memory); return the artifact digest.

        Raises:
            DuplicatePathError: if two entries have the same path.
            PathConflictError: if one entry's path is a directory of another's.
        """
        md5, sizes = self._md5, self._sizes
        digests, values = self._digests, self._values
        plain = len(self._paths)
        hasher = hashlib.md5(DIGEST_HEADER, usedforsecurity=False)
        write(self._top())
        previous: str | None = None
        b64 = binascii.b2a_base64
        ordered = self._ordered()
        conflicts = _ConflictCheck()
        first = True
        while batch := list(itertools.islice(ordered, _BATCH)):
            lines: list[str] = []
            objects: list[str] = []
            for path, i in batch:
                if path == previous:
                    raise DuplicatePathError(path)
                previous = path
                conflicts.see(path)
                if i < plain:
                    digest = b64(md5[16 * i : 16 * i + 16], newline=False).decode()
                    # Base64 needs no JSON escaping.
                    value = f'{{"digest":"{digest}","size":{sizes[i]}}}'
                else:
                    digest = digests[i - plain]
                    value = values.raw(i - plain).decode()
                lines.append(f"{path}:{digest}\n")
                objects.append(f"{encode_basestring_ascii(path)}:{value}")
            hasher.update("".join(lines).encode())
            write(("" if first else ",").encode() + ",".join(objects).encode())
            first = False
        write(b"}}")
        return hasher.hexdigest()
