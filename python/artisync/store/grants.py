"""Presigned transfers: what a server hands a node so that the node moves blobs straight
to and from the bucket, with no bucket credentials and no bytes through the server.

A server holds a bucket store with credentials and asks it for this capability
(:meth:`~artisync.store.Store.grants`; None for a store that is not a bucket). Each
grant is scoped to one content-addressed key (the store's own naming,
:meth:`~artisync.store.remote.RemoteStore.blob_object`) and to the bytes the node
declared (:class:`BlobSpec`):

- :meth:`Grants.upload`: an S3 presigned PUT (:class:`PutGrant`), presigned parts of a
  multipart upload the server created (:class:`PartsGrant`; asked again with its upload
  id after a crash, it gives the parts still missing), or a GCS resumable session
  (:class:`SessionGrant`). Every upload carries its uploader (the server's user it is
  granted to) as object metadata (:data:`UPLOADER_METADATA`), signed into the grant;
- :meth:`Grants.complete`: the server completes a multipart upload from the parts the
  bucket holds, each checked against the declared part MD5;
- :meth:`Grants.download`: a URL that reads one blob;
- :meth:`Grants.manifest_upload` / :meth:`Grants.manifest_download`: the same for a
  version's manifest, which an upload may create but never replace;
- :meth:`Grants.verify`: before a version is committed, every new blob is asked for in
  the bucket (size, MD5 or ETag, and uploader): a grant proves nothing about what was
  sent, and a blob someone else stored proves nothing about what the caller holds.

Implemented for S3 in :mod:`artisync.store.s3_grants` and for GCS in
:mod:`artisync.store.gcs_grants`. Which layer refuses what (the bucket, or ``verify``)
is in docs/decisions.md, "Presigned transfers (issue 17)".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from artisync.errors import InvalidInputError
from artisync.store.base import check_md5_hex
from artisync.store.remote import first_failure

__all__ = [
    "DEFAULT_EXPIRES",
    "MAX_EXPIRES",
    "UPLOADER_METADATA",
    "BlobSpec",
    "DownloadGrant",
    "Grants",
    "PartGrant",
    "PartsGrant",
    "Problem",
    "PutGrant",
    "SessionGrant",
    "UploadGrant",
    "Verification",
    "check_expires",
    "first_few",
    "verify_each",
]

DEFAULT_EXPIRES = 15 * 60
"""Seconds a presigned URL stays valid unless the server asks for another time."""

MAX_EXPIRES = 7 * 24 * 3600
"""The longest S3 and GCS let a V4 signature live."""

UPLOADER_METADATA = "artisync-uploader"
"""The object metadata naming the server user whose grant stored the bytes: proof that
the caller committing a version over a blob sent it, rather than named its digest."""

_LISTED = 5  # blobs a refusal names before it says "and N more"


@dataclass(frozen=True, slots=True)
class BlobSpec:
    """One blob as a node declares it: its MD5 (hex), its size and, when it goes up in
    parts, the part size and each part's MD5 (hex, in order). Checked on creation:
    :class:`InvalidInputError` names what is wrong."""

    md5_hex: str
    size: int
    part_size: int | None = None
    part_md5s: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_md5_hex(self.md5_hex)
        if self.size < 0:
            raise InvalidInputError(f"blob {self.md5_hex}: a size of {self.size} bytes")
        for md5 in self.part_md5s:
            check_md5_hex(md5)
        if (self.part_size is None) != (not self.part_md5s):
            raise InvalidInputError(
                f"blob {self.md5_hex}: give both the part size and every part's MD5, or neither"
            )
        if self.part_size is not None:
            if self.part_size < 1:
                raise InvalidInputError(f"blob {self.md5_hex}: a part size of {self.part_size}")
            count = max(1, -(-self.size // self.part_size))
            if len(self.part_md5s) != count:
                raise InvalidInputError(
                    f"blob {self.md5_hex}: {self.size} bytes in parts of {self.part_size} "
                    f"make {count} parts, but {len(self.part_md5s)} part MD5s were given"
                )

    def part_length(self, number: int) -> int:
        """The size of part ``number`` (from 1)."""
        assert self.part_size is not None
        return min(self.part_size, self.size - (number - 1) * self.part_size)

    def describe(self) -> str:
        """How a message names the blob."""
        return f"blob {self.md5_hex} ({self.size:,} bytes)"


@dataclass(frozen=True, slots=True)
class PutGrant:
    """One presigned PUT of the whole blob.

    The node sends ``PUT url`` with the blob as the body and exactly ``headers``
    (``Content-MD5``: the blob's MD5 in base64, ``Content-Length``): both are signed,
    so S3 refuses other bytes (``BadDigest``) and another size (the signature). No
    credentials: the URL is the authorisation, until ``expires_at`` (a Unix time).
    """

    url: str
    headers: dict[str, str]
    expires_at: float


@dataclass(frozen=True, slots=True)
class PartGrant:
    """One presigned UploadPart: ``PUT url`` with part ``number``'s bytes and exactly
    ``headers`` (that part's ``Content-MD5`` and ``Content-Length``, both signed)."""

    number: int
    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PartsGrant:
    """A multipart upload the server created: the parts the bucket does not hold yet.

    The node keeps ``upload_id``: after a crash, or once the URLs expire, it asks for
    a grant again with it and gets URLs for the parts still missing. When every part
    is in, the server completes the upload (:meth:`Grants.complete`).
    """

    upload_id: str
    parts: tuple[PartGrant, ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """A GCS resumable upload session for the blob: its URI is the capability.

    The node sends the bytes with ``PUT url`` and ``Content-Range: bytes a-b/size``
    (chunks in multiples of 256 KiB but the last) and no credentials; after a crash it
    asks the URI where it stands (``PUT``, ``Content-Range: bytes */size``, answer 308
    with ``Range``) and goes on from there. GCS refuses to finish the object unless it
    has the declared MD5 and size, and refuses to create it if it exists (answer 412:
    the blob is there). GCS keeps a session for a week; there is no shorter expiry.
    """

    url: str
    size: int


UploadGrant = PutGrant | PartsGrant | SessionGrant


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    """A URL that reads one blob with a plain ``GET``, until ``expires_at`` (a Unix
    time; None for an emulator's plain URL, which needs no signature at all)."""

    url: str
    expires_at: float | None


class Problem(Enum):
    """What is wrong with a blob in the bucket."""

    MISSING = "missing"
    SIZE = "another size"
    MD5 = "another MD5"
    UPLOADER = "stored by another uploader"


@dataclass(frozen=True, slots=True)
class Verification:
    """What :meth:`Grants.verify` found: the MD5s of the blobs that are missing, that
    have another size, that have another MD5 (or ETag) than declared, and that were
    stored under another uploader's grant."""

    missing: tuple[str, ...] = ()
    wrong_size: tuple[str, ...] = ()
    wrong_md5: tuple[str, ...] = ()
    other_uploader: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every blob is in the bucket as declared."""
        return not (self.missing or self.wrong_size or self.wrong_md5 or self.other_uploader)

    def check(self, store_url: str) -> None:
        """Raise :class:`InvalidInputError`, naming the blobs and what to do, unless
        :attr:`ok`: the server refuses to commit a version over such blobs."""
        if self.ok:
            return
        found = [
            (self.missing, "not in the bucket"),
            (self.wrong_size, "of another size than declared"),
            (self.wrong_md5, "holding other bytes than their MD5 says"),
            (self.other_uploader, "not uploaded by this caller"),
        ]
        said = "; ".join(f"{first_few(md5s)} {what}" for md5s, what in found if md5s)
        raise InvalidInputError(
            f"{store_url}: blobs {said}: upload them again (ask for new upload grants) "
            "and commit again"
        )


def first_few(items: Sequence[object]) -> str:
    """``items`` for a message: the first few, and how many more (a version may bring a
    million blobs, a blob ten thousand parts)."""
    named = ", ".join(map(str, items[:_LISTED]))
    return named if len(items) <= _LISTED else f"{named} and {len(items) - _LISTED} more"


class Grants(Protocol):
    """Presigned transfers of one bucket store (:class:`~artisync.store.s3.S3Store` or
    :class:`~artisync.store.gcs.GCSStore`), for the server that holds it.

    Failures of the bucket raise :class:`~artisync.store.StoreUnavailableError`; a
    request the server must refuse raises :class:`InvalidInputError` naming the blob.
    """

    def parts(self) -> tuple[int, int] | None:
        """``(threshold, part size)``: blobs of at least ``threshold`` bytes go up in
        parts, of this size unless the node chooses another; None when every blob goes
        up whole (a GCS session)."""

    async def upload(
        self,
        blob: BlobSpec,
        *,
        uploader: str,
        upload_id: str | None = None,
        expires_in: int = DEFAULT_EXPIRES,
    ) -> UploadGrant:
        """A grant to upload ``blob`` as ``uploader`` (``upload_id``: resume that
        multipart upload). Never an answer that the bucket holds it: whether a caller
        may be told so is the server's to decide, from what they may read."""

    async def complete(self, blob: BlobSpec, upload_id: str) -> None:
        """Complete the multipart upload ``upload_id`` of ``blob`` from its parts. A
        blob already in the bucket is never replaced: when it is, the upload must have
        brought the same parts (its ETag), else :class:`InvalidInputError`."""

    async def download(self, md5_hex: str, *, expires_in: int = DEFAULT_EXPIRES) -> DownloadGrant:
        """A URL that reads the blob ``md5_hex``."""

    async def manifest_upload(
        self, digest: str, md5_hex: str, size: int, *, expires_in: int = DEFAULT_EXPIRES
    ) -> PutGrant | SessionGrant:
        """A grant to store the manifest of artifact ``digest`` (``size`` bytes of MD5
        ``md5_hex``) that can only create it: a manifest already there is kept (the
        bucket answers 412), as the store's own ``put_manifest`` keeps it."""

    async def manifest_download(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES
    ) -> DownloadGrant:
        """A URL that reads the manifest at ``key`` (``manifests/…``)."""

    async def verify(
        self, blobs: Sequence[BlobSpec], *, uploader: str | None = None
    ) -> Verification:
        """Which of ``blobs`` the bucket lacks or holds otherwise than declared; with
        ``uploader``, also those another uploader's grant stored."""


def check_expires(seconds: int) -> int:
    """``seconds`` if a presigned URL may live that long, else :class:`InvalidInputError`."""
    if not 1 <= seconds <= MAX_EXPIRES:
        raise InvalidInputError(
            f"a presigned URL may live from 1 to {MAX_EXPIRES} seconds (7 days), not {seconds}"
        )
    return seconds


async def verify_each(
    blobs: Sequence[BlobSpec],
    problem: Callable[[BlobSpec], Awaitable[Problem | None]],
    workers: int,
) -> Verification:
    """:meth:`Grants.verify` on any bucket: ``problem`` asked of each distinct blob by
    ``workers`` tasks at once (a version may bring a million blobs: never a task each);
    the first failure of the bucket stops them all and is raised."""
    unique = list({b.md5_hex: b for b in blobs}.values())
    found: dict[str, Problem | None] = {}
    todo = iter(unique)

    async def worker() -> bool:
        for blob in todo:  # one iterator shared by the workers: each blob asked once
            found[blob.md5_hex] = await problem(blob)
        return True

    await first_failure([worker() for _ in range(min(workers, len(unique)))])
    by_kind: dict[Problem, list[str]] = {kind: [] for kind in Problem}
    for md5_hex, kind in found.items():
        if kind is not None:
            by_kind[kind].append(md5_hex)
    return Verification(
        missing=tuple(by_kind[Problem.MISSING]),
        wrong_size=tuple(by_kind[Problem.SIZE]),
        wrong_md5=tuple(by_kind[Problem.MD5]),
        other_uploader=tuple(by_kind[Problem.UPLOADER]),
    )
