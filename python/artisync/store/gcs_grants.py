"""Presigned transfers on GCS (:mod:`artisync.store.grants`), for a server's GCSStore.

Uploads go through a resumable session the server opens for the blob's own name
(:func:`~artisync.store.gcs_upload.open_session`, the one the store uses for itself):
its metadata carries the blob's ``md5Hash`` and the uploader, its
``X-Upload-Content-Length`` the size, and ``ifGenerationMatch`` lets it create the
object or replace only the generation the server saw. GCS refuses to finish the object
with other bytes or another size. The session
URI is the capability: the node sends chunks to it with no credentials. GCS keeps a
session for a week, whatever ``expires_in`` says.

fake-gcs-server checks none of ``md5Hash``, the declared size or ``ifGenerationMatch``
on a session (it computes ``md5Hash`` from the bytes it got): there,
:meth:`GcsGrants.verify` catches what the bucket let in.

Downloads: a V4 signed URL, signed with the private key of the server's credentials (a
service-account key file, as gcloud-aio-storage signs); on an emulator
(``STORAGE_EMULATOR_HOST``, :attr:`GCSStore.emulated`), which checks no signature, the
plain media URL instead: a branch on the store's endpoint, not a fallback.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gcloud.aio.storage import Bucket

from artisync.errors import InvalidInputError
from artisync.store.base import (
    StoreAccessError,
    check_manifest_key,
    check_md5_hex,
    manifest_key,
    md5_base64,
)
from artisync.store.gcs import GCSStore
from artisync.store.gcs_errors import CREDENTIAL_HINT
from artisync.store.gcs_upload import open_session
from artisync.store.grants import (
    DEFAULT_EXPIRES,
    UPLOADER_METADATA,
    BlobSpec,
    DownloadGrant,
    Problem,
    SessionGrant,
    Verification,
    check_expires,
    verify_each,
)

__all__ = ["GcsGrants"]


class GcsGrants:
    """Presigned transfers of one :class:`~artisync.store.gcs.GCSStore` (a
    :class:`~artisync.store.grants.Grants`). Part sizes and part MD5s a node declares
    are not used: GCS checks the whole object's MD5."""

    def __init__(self, store: GCSStore) -> None:
        self.store = store

    def parts(self) -> None:
        """None: a session takes a blob whole, in chunks the node chooses."""
        return None

    async def upload(
        self,
        blob: BlobSpec,
        *,
        uploader: str,
        upload_id: str | None = None,
        expires_in: int = DEFAULT_EXPIRES,
    ) -> SessionGrant:
        """A resumable session for ``blob`` whose object records ``uploader``.

        It creates the object (``ifGenerationMatch=0``) or, when the bucket holds one
        under the blob's name, replaces exactly that generation: harmless, since GCS
        takes only the bytes of the declared MD5, and the node learns nothing of what
        the bucket held (whether it may be told is the server's call). Anything that
        writes the object meanwhile makes GCS refuse the session (412): ask again.
        """
        check_expires(expires_in)
        if upload_id is not None:
            raise InvalidInputError(
                f"{blob.describe()}: GCS sessions have no upload id: resume by asking the "
                "session URI where it stands (PUT with Content-Range: bytes */size)"
            )
        name = self.store.blob_object(blob.md5_hex)
        found = await self.store.metadata(name)
        generation = int(found.get("generation") or 0) if found is not None else 0
        url = await open_session(
            self.store,
            name,
            md5_base64(blob.md5_hex),
            blob.size,
            generation=generation,
            metadata={UPLOADER_METADATA: uploader},
        )
        return SessionGrant(url, blob.size)

    async def complete(self, blob: BlobSpec, upload_id: str) -> None:
        """Refused: a session completes with its last chunk, never at the server."""
        raise InvalidInputError(
            f"{blob.describe()}: a GCS session completes with its last chunk; there is no "
            f"upload {upload_id!r} to complete"
        )

    async def download(self, md5_hex: str, *, expires_in: int = DEFAULT_EXPIRES) -> DownloadGrant:
        """A V4 signed GET of the blob ``md5_hex`` (an emulator's plain media URL).

        :class:`StoreAccessError` if the credentials hold no private key to sign with
        (user credentials, a VM's metadata server): a key file is needed.
        """
        return await self._download(self.store.blob_object(check_md5_hex(md5_hex)), expires_in)

    async def manifest_upload(
        self, digest: str, md5_hex: str, size: int, *, expires_in: int = DEFAULT_EXPIRES
    ) -> SessionGrant:
        """A session that may only create the manifest (``ifGenerationMatch=0``): GCS
        answers 412 at its last chunk when the manifest is there, and keeps it."""
        check_expires(expires_in)
        name = self.store.key(manifest_key(digest))
        url = await open_session(self.store, name, md5_base64(check_md5_hex(md5_hex)), size)
        return SessionGrant(url, size)

    async def manifest_download(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES
    ) -> DownloadGrant:
        """A V4 signed GET of the manifest at ``key`` (an emulator's plain media URL)."""
        return await self._download(self.store.key(check_manifest_key(key)), expires_in)

    async def _download(self, name: str, expires_in: int) -> DownloadGrant:
        check_expires(expires_in)
        if self.store.emulated:
            # An emulator checks no signature, and it is where the tests run.
            return DownloadGrant(f"{self.store.object_url(name)}?alt=media", None)
        token = await self.store.token()
        service: dict[str, Any] = token.service_data if token is not None else {}
        if not (service.get("private_key") and service.get("client_email")):
            raise StoreAccessError(
                f"store {self.store.url}: the server's Google credentials cannot sign URLs "
                f"(no service-account private key): {CREDENTIAL_HINT}"
            )
        expires_at = time.time() + expires_in
        bucket = Bucket(await self.store.storage(), self.store.bucket)
        try:
            url = await bucket.new_blob(name).get_signed_url(
                expires_in, http_method="GET", token=token
            )
        except ValueError as e:  # a private key that cryptography cannot load
            raise StoreAccessError(f"store {self.store.url}: cannot sign URLs: {e}") from None
        return DownloadGrant(url, expires_at)

    async def verify(
        self, blobs: Sequence[BlobSpec], *, uploader: str | None = None
    ) -> Verification:
        """Read every blob's metadata (as many at once as the store's ``concurrency``):
        missing, another ``size``, another ``md5Hash``, or (with ``uploader``) stored by
        another uploader's session."""

        async def problem(blob: BlobSpec) -> Problem | None:
            found = await self.store.metadata(self.store.blob_object(blob.md5_hex))
            if found is None:
                return Problem.MISSING
            wrong = _problem(blob, found)
            if wrong is None and uploader is not None:
                custom = found.get("metadata") or {}
                if custom.get(UPLOADER_METADATA) != uploader:
                    return Problem.UPLOADER
            return wrong

        return await verify_each(blobs, problem, self.store.concurrency)


def _problem(blob: BlobSpec, metadata: dict[str, Any]) -> Problem | None:
    """What is wrong with the object of ``metadata`` as ``blob``, if anything."""
    if str(metadata.get("size")) != str(blob.size):
        return Problem.SIZE
    if metadata.get("md5Hash") != md5_base64(blob.md5_hex):
        return Problem.MD5
    return None
