"""``artifact.files()``: a committed version's entries as W&B's ``File`` objects.

W&B pages the files of a version from its server (``ArtifactFiles``, a sized
paginator of ``File``). Here the committed manifest is already the list, so
:class:`ArtifactFiles` is a sequence over it (``len()``, iteration, indexing), filtered
by ``names`` as W&B's query filters them; ``per_page`` is accepted and has nothing to
page. Each :class:`ArtifactFile` has the fields of W&B's ``File`` that mean something
for an artifact entry: ``name``, ``size``, ``digest``, ``md5``, ``mimetype``,
``updated_at``, ``url`` / ``direct_url`` / ``path_uri`` (where the bytes are: the blob
in the version's store, or the reference's URI) and ``download()``.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, overload

from artisync.errors import InvalidInputError
from artisync.manifest import md5_b64_to_hex
from artisync.registry.model import Version
from artisync.sdk.committed import CommittedEntry
from artisync.store.base import blob_key

__all__ = ["ArtifactFile", "ArtifactFiles"]


def _blob_url(store: str, md5_hex: str) -> str:
    base = Path(store).as_uri() if store.startswith("/") else store
    return f"{base.rstrip('/')}/{blob_key(md5_hex)}"


class ArtifactFile:
    """One entry of a committed version, as W&B's ``File`` shows it."""

    def __init__(self, entry: CommittedEntry, version: Version, store: str) -> None:
        self._entry = entry
        self._version = version
        self._store = store

    def __repr__(self) -> str:
        return f"<ArtifactFile {self.name} ({self.mimetype}) {self.size} bytes>"

    @property
    def name(self) -> str:
        """The entry's path inside the artifact."""
        return self._entry.path

    @property
    def size(self) -> int:
        """Bytes; 0 when not known (a reference logged with ``checksum=False``)."""
        return self._entry.size or 0

    @property
    def digest(self) -> str:
        """The entry's digest, as in the manifest (base64 MD5 for stored content)."""
        return self._entry.digest

    @property
    def md5(self) -> str:
        """The base64 MD5 of the content, as W&B's ``File.md5`` (the digest)."""
        return self._entry.digest

    @property
    def mimetype(self) -> str | None:
        """The media type guessed from the name, or None."""
        return mimetypes.guess_type(self.name)[0]

    @property
    def updated_at(self) -> str:
        """When the version was committed, ISO 8601 in UTC."""
        return datetime.fromtimestamp(self._version.created_at, UTC).isoformat()

    @property
    def url(self) -> str:
        """Where the bytes are: the reference's URI, or the blob in the version's store."""
        if self._entry.ref is not None:
            return self._entry.ref
        return _blob_url(self._store, md5_b64_to_hex(self._entry.digest))

    @property
    def direct_url(self) -> str:
        """The same place as :attr:`url`: there is no server in front of the store."""
        return self.url

    @property
    def path_uri(self) -> str:
        """The URI of the bytes in their bucket or filesystem (:attr:`url`)."""
        return self.url

    @property
    def ref(self) -> str | None:
        """The URI of a reference entry, else None."""
        return self._entry.ref

    def download(
        self, root: str | os.PathLike[str] = ".", replace: bool = False, exist_ok: bool = False
    ) -> IO[str]:
        """Download the file to ``root/<name>`` and return it open for reading, as W&B.

        An existing file is an error unless ``replace=True`` (download again) or
        ``exist_ok=True`` (keep it and open it).
        """
        path = Path(root) / self.name
        if os.path.lexists(path) and not replace:
            if exist_ok:
                return open(path)
            raise InvalidInputError(
                f"{path} already exists: pass replace=True to download it again, or "
                "exist_ok=True to keep it as it is"
            )
        return open(self._entry.download(root))


class ArtifactFiles(Sequence[ArtifactFile]):
    """The files of a committed version (W&B's ``ArtifactFiles``), in path order."""

    def __init__(
        self,
        entries: Mapping[str, Any],
        version: Version,
        store: str,
        names: Sequence[str] | None,
    ) -> None:
        if isinstance(names, str):
            raise InvalidInputError(
                f"names must be a list of paths, not the string {names!r}: pass [{names!r}]"
            )
        wanted = None if names is None else set(names)
        self._files = [
            ArtifactFile(entry, version, store)
            for path, entry in sorted(entries.items())
            if wanted is None or path in wanted
        ]
        self._path = f"{version.entity}/{version.project}/{version.name}:{version.version}"

    def __repr__(self) -> str:
        return f"<ArtifactFiles {self._path} ({len(self)})>"

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[ArtifactFile]:
        return iter(self._files)

    @overload
    def __getitem__(self, index: int) -> ArtifactFile: ...

    @overload
    def __getitem__(self, index: slice) -> list[ArtifactFile]: ...

    def __getitem__(self, index: int | slice) -> ArtifactFile | list[ArtifactFile]:
        return self._files[index]
