"""Presigned transfers on S3 (:mod:`artisync.store.grants`), for a server's S3Store.

Every URL is a SigV4 presigned request of the store's own client, on the blob's own key
(:meth:`~artisync.store.remote.RemoteStore.blob_object`). Its signature covers the
method, the key (for a part also the upload id and part number), ``Content-MD5``,
``Content-Length`` and the expiry, so S3 refuses the URL used later, for another key,
or with a body of another size (``SignatureDoesNotMatch``, ``AccessDenied``), and a
body of the same size with other bytes (``BadDigest``).

moto checks none of that on presigned requests (no signature, no expiry, no
``Content-MD5``): what it lets through, :meth:`S3Grants.verify` catches before a
commit, since it reads what the bucket holds (its tests say which layer refuses what).

Multipart: S3 checks each part against its ``Content-MD5`` and gives the whole object
the ETag ``md5(part MD5s)-N``. That proves the parts are the declared ones, not that
the whole has the blob's MD5: a node that declares part MD5s of other bytes than the
blob's stores those bytes under the blob's key. Only a reader that hashes what it got
(the download path does) finds it; a bucket cannot, short of reading the object.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from artisync.errors import InvalidInputError
from artisync.store.base import (
    ManifestTooLargeError,
    StoreUnavailableError,
    check_manifest_key,
    check_md5_hex,
    manifest_key,
    md5_base64,
)
from artisync.store.grants import (
    DEFAULT_EXPIRES,
    UPLOADER_METADATA,
    BlobSpec,
    DownloadGrant,
    PartGrant,
    PartsGrant,
    Problem,
    PutGrant,
    Verification,
    check_expires,
    first_few,
    verify_each,
)
from artisync.store.multipart import MAX_PARTS, MIN_PART_SIZE, multipart_etag
from artisync.store.part_sizes import SINGLE_PUT_MAX
from artisync.store.s3 import S3Store
from artisync.store.s3_errors import code_of, etag_matches, status_of

__all__ = ["S3Grants"]

_UPLOADER_HEADER = f"x-amz-meta-{UPLOADER_METADATA}"


class S3Grants:
    """Presigned transfers of one :class:`~artisync.store.s3.S3Store` (a
    :class:`~artisync.store.grants.Grants`).

    A blob under the store's ``multipart_threshold`` goes up in one PUT; from it on,
    in parts of the node's declared part size (at least 5 MiB but the last, at most
    10,000 parts). The server's region must be the bucket's, as
    :meth:`~artisync.store.s3.S3Store.open` checks: a URL is signed for it.
    """

    def __init__(self, store: S3Store) -> None:
        self.store = store

    def parts(self) -> tuple[int, int]:
        """The store's multipart threshold and part size."""
        return self.store.multipart.threshold, self.store.multipart.part_size

    async def upload(
        self,
        blob: BlobSpec,
        *,
        uploader: str,
        upload_id: str | None = None,
        expires_in: int = DEFAULT_EXPIRES,
    ) -> PutGrant | PartsGrant:
        """A presigned PUT of ``blob``, or presigned parts of a multipart upload, whose
        object records ``uploader`` (a PUT signs the metadata header; a multipart upload
        is created with it).

        Without ``upload_id`` a multipart upload is created; with it (a node resuming
        after a crash, or whose URLs expired) the upload is checked to be this blob's,
        and URLs are given for the parts the bucket does not hold as declared. A PUT
        replaces a blob already there, harmlessly: S3 takes only the bytes of its MD5.
        """
        check_expires(expires_in)
        name = self.store.blob_object(blob.md5_hex)
        expires_at = time.time() + expires_in  # taken before signing: never later
        if not self._in_parts(blob):
            if blob.part_md5s or upload_id is not None:
                raise InvalidInputError(
                    f"{blob.describe()}: goes up in one PUT to {self.store.url} (blobs "
                    f"under {self.store.multipart.threshold:,} bytes do): ask for a grant "
                    "without parts and without an upload id"
                )
            headers = _upload_headers(blob.md5_hex, blob.size)
            headers[_UPLOADER_HEADER] = uploader
            url = await self._presign("PUT", name, expires_in, headers)
            return PutGrant(url, headers, expires_at)
        count = self._check_parts(blob)
        if upload_id is None:
            async with self.store._requests:
                created = await self.store.call(
                    "create_multipart_upload",
                    name,
                    Key=name,
                    Metadata={UPLOADER_METADATA: uploader},
                )
            upload_id = str(created["UploadId"])
            missing = list(range(1, count + 1))
        else:
            missing = await self._missing_parts(blob, name, upload_id)
        parts = []
        for number in missing:
            headers = _upload_headers(blob.part_md5s[number - 1], blob.part_length(number))
            params = {"partNumber": str(number), "uploadId": upload_id}
            url = await self._presign("PUT", name, expires_in, headers, params)
            parts.append(PartGrant(number, url, headers))
        return PartsGrant(upload_id, tuple(parts), expires_at)

    async def complete(self, blob: BlobSpec, upload_id: str) -> None:
        """Complete the upload ``upload_id`` of ``blob`` once every part the bucket
        lists has the declared MD5 (its ETag) and size; :class:`InvalidInputError`
        names the parts to send again otherwise. Completing twice is fine.

        The completion never replaces an object (``If-None-Match: *``): S3 checks each
        part but not the whole's MD5, so a replacement could put other bytes under a
        blob's name. When the blob is there already, the upload counts only if it
        brought the same parts as the object's (its multipart ETag); it is aborted
        either way."""
        if not self._in_parts(blob):
            raise InvalidInputError(
                f"{blob.describe()}: goes up in one PUT, there is no upload to complete"
            )
        self._check_parts(blob)
        name = self.store.blob_object(blob.md5_hex)
        try:
            missing = await self._missing_parts(blob, name, upload_id)
        except InvalidInputError:
            if await self._problem(blob) is None:
                return  # completed by an earlier call whose answer was lost
            raise
        if missing:
            raise InvalidInputError(
                f"{blob.describe()}: parts {first_few(missing)} of upload "
                f"{upload_id} are missing or not the declared bytes: send them again (ask "
                "for a grant with this upload id), then complete"
            )
        etags = {n: f'"{md5}"' for n, md5 in enumerate(blob.part_md5s, 1)}
        try:
            await self.store.multipart.complete_upload(name, upload_id, etags, if_absent=True)
        except StoreUnavailableError as e:
            if code_of(e) == "NoSuchUpload" and await self._problem(blob) is None:
                return  # another call completed it meanwhile
            if status_of(e) != 412:
                raise
            await self.store.multipart.abort(name, upload_id)
            if await self._problem(blob) is not None:
                raise InvalidInputError(
                    f"{blob.describe()}: the bucket holds this blob from an upload in other "
                    f"parts, and it is never replaced; upload {upload_id} is aborted"
                ) from None

    async def download(self, md5_hex: str, *, expires_in: int = DEFAULT_EXPIRES) -> DownloadGrant:
        """A presigned GET of the blob ``md5_hex``."""
        return await self._download(self.store.blob_object(check_md5_hex(md5_hex)), expires_in)

    async def manifest_upload(
        self, digest: str, md5_hex: str, size: int, *, expires_in: int = DEFAULT_EXPIRES
    ) -> PutGrant:
        """A presigned PUT of a manifest that signs ``If-None-Match: *``: S3 answers 412
        when the manifest is there, and keeps it."""
        check_expires(expires_in)
        name = self.store.key(manifest_key(digest))
        if size > SINGLE_PUT_MAX:
            raise ManifestTooLargeError(f"s3://{self.store.bucket}/{name}", size, SINGLE_PUT_MAX)
        expires_at = time.time() + expires_in
        headers = _upload_headers(check_md5_hex(md5_hex), size)
        headers["If-None-Match"] = "*"
        url = await self._presign("PUT", name, expires_in, headers)
        return PutGrant(url, headers, expires_at)

    async def manifest_download(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES
    ) -> DownloadGrant:
        """A presigned GET of the manifest at ``key``."""
        return await self._download(self.store.key(check_manifest_key(key)), expires_in)

    async def _download(self, name: str, expires_in: int) -> DownloadGrant:
        check_expires(expires_in)
        expires_at = time.time() + expires_in
        url = await self._presign("GET", name, expires_in, {})
        return DownloadGrant(url, expires_at)

    async def verify(
        self, blobs: Sequence[BlobSpec], *, uploader: str | None = None
    ) -> Verification:
        """HEAD every blob (as many at once as the store's ``concurrency``): missing,
        another size, an ETag that is neither the blob's MD5 (one PUT) nor the
        multipart ETag of its declared part MD5s, or (with ``uploader``) stored by
        another uploader's grant. An object encrypted with KMS or a customer key has no
        MD5 for an ETag: S3 checked its Content-MD5 on the way in, and it is taken on
        trust."""
        return await verify_each(
            blobs, lambda blob: self._problem(blob, uploader), self.store.concurrency
        )

    # -- the requests --------------------------------------------------------------------

    def _in_parts(self, blob: BlobSpec) -> bool:
        return blob.size >= self.store.multipart.threshold or blob.size > SINGLE_PUT_MAX

    def _check_parts(self, blob: BlobSpec) -> int:
        """How many parts ``blob`` has, if S3 takes them: else InvalidInputError."""
        if blob.part_size is None:
            raise InvalidInputError(
                f"{blob.describe()}: goes up in parts to {self.store.url} (from "
                f"{self.store.multipart.threshold:,} bytes): give the part size and each "
                "part's MD5"
            )
        count = len(blob.part_md5s)
        if count > MAX_PARTS or blob.part_size > SINGLE_PUT_MAX:
            raise InvalidInputError(
                f"{blob.describe()}: {count} parts of {blob.part_size:,} bytes; S3 takes at "
                f"most {MAX_PARTS} parts of at most {SINGLE_PUT_MAX:,}: use larger parts"
            )
        if count > 1 and blob.part_size < MIN_PART_SIZE:
            raise InvalidInputError(
                f"{blob.describe()}: parts of {blob.part_size:,} bytes; S3 wants every part "
                f"but the last to have at least {MIN_PART_SIZE:,}"
            )
        return count

    async def _missing_parts(self, blob: BlobSpec, name: str, upload_id: str) -> list[int]:
        """The parts of the upload ``upload_id`` that the bucket does not hold as
        declared, once it is sure the upload is ``name``'s (S3 ties an upload id to
        its key; moto does not, so the server asks)."""
        async for key, listed_id, _ in self.store.list_uploads(name):
            if key == name and listed_id == upload_id:
                break
        else:
            raise InvalidInputError(
                f"{blob.describe()}: {upload_id!r} is no unfinished upload of it in "
                f"{self.store.url} (completed, aborted, or another blob's): ask for a grant "
                "without an upload id to start again"
            )
        held = await self.store.multipart.list_parts(name, upload_id)

        def as_declared(number: int, md5: str) -> bool:
            etag, size = held.get(number, ("", -1))
            return etag.strip('"') == md5 and size == blob.part_length(number)

        return [n for n, md5 in enumerate(blob.part_md5s, 1) if not as_declared(n, md5)]

    async def _presign(
        self,
        method: str,
        name: str,
        expires_in: int,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
    ) -> str:
        """A presigned ``method`` of the object ``name`` that signs ``headers``: the
        store's direct signer, a few dozen µs where botocore's presigning takes 800."""
        direct = await self.store.direct()
        return await direct.presigned_url(method, name, expires_in, headers, params or {})

    async def _problem(self, blob: BlobSpec, uploader: str | None = None) -> Problem | None:
        """What is wrong with ``blob`` in the bucket, if anything (one HEAD)."""
        direct = await self.store.direct()
        async with self.store._requests:
            found = await direct.stat(self.store.blob_object(blob.md5_hex))
        if found is None:
            return Problem.MISSING
        if found["ContentLength"] != str(blob.size):
            return Problem.SIZE
        if not etag_matches(found, blob.md5_hex) and not (
            blob.part_md5s
            and etag_matches(found, multipart_etag(bytes.fromhex(m) for m in blob.part_md5s))
        ):
            return Problem.MD5
        if uploader is not None and found.get(_UPLOADER_HEADER) != uploader:
            return Problem.UPLOADER
        return None


def _upload_headers(md5_hex: str, length: int) -> dict[str, str]:
    """What an upload of ``length`` bytes with MD5 ``md5_hex`` must send, signed: S3
    refuses other bytes (``Content-MD5``) and another size (the signature)."""
    return {"Content-MD5": md5_base64(md5_hex), "Content-Length": str(length)}
