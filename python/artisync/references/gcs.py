"""``gs://`` references: expansion into entries, and fetching the recorded generation.

As W&B's GCS handler: the key names one object if there is one, else a prefix. Entries
have the object's ``md5Hash`` (base64 MD5, the manifest's own digest form) as digest
and ``extra = {"etag", "versionID": generation}``; a composite object, which has no
MD5, gets its ETag as digest. ``gs://b/k#generation`` pins one generation.

gcloud-aio-storage lists one page per call: :meth:`GCSReferences._list` pages with
``maxResults`` and ``pageToken`` itself. Its downloads read whole objects into memory
and cannot ask for a generation, so objects and pinned metadata are read here with
aiohttp against the same JSON API, with the library's token.

Credentials: ``STORAGE_EMULATOR_HOST`` (an emulator, no auth), else
``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default credentials, or the
metadata server on GCE, as Google's own libraries look for them.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from gcloud.aio.auth import Token
from gcloud.aio.storage import Storage
from gcloud.aio.storage.storage import init_api_root

from artisync.references.errors import (
    ReferenceAccessError,
    ReferenceFailure,
    ReferenceNotFoundError,
    ReferenceUnavailableError,
    TooManyObjectsError,
)
from artisync.references.uri import PageSink, RefEntry, RemoteURI, object_name, prefix_of

__all__ = ["LIST_PAGE", "GCSReferences"]

LIST_PAGE: Final = 1000
"""Objects per list request: the JSON API's maximum."""

COUNT_FACTOR: Final = 10
"""As for S3: how far past ``max_objects`` a listing goes on counting."""

_SCOPES: Final = ["https://www.googleapis.com/auth/devstorage.read_only"]
_CHUNK = 1 << 20
_CREDENTIALS_HELP = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file (or run "
    "'gcloud auth application-default login') in the daemon's environment; "
    "STORAGE_EMULATOR_HOST selects an emulator"
)


class GCSReferences:
    """Expands and fetches ``gs://`` references over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._dev, self._root = init_api_root(None)
        self._token: Token | None = None
        self._storage: Storage | None = None

    def _client(self, uri: str) -> Storage:
        if self._storage is None:
            if not self._dev:
                try:
                    service_file = _service_file(uri)
                    # gcloud-aio's hints name requests' Session (its sync twin); aiohttp's is right.
                    self._token = Token(
                        service_file=service_file,
                        scopes=_SCOPES,
                        session=self.session,  # type: ignore[arg-type]
                    )
                except (OSError, ValueError, KeyError) as e:
                    raise ReferenceAccessError(
                        uri,
                        f"cannot load Google credentials to read {uri}: {e}; {_CREDENTIALS_HELP}",
                    ) from e
            try:
                # api_is_dev=False keeps TLS checks for a real endpoint given by api_root.
                self._storage = Storage(
                    token=self._token,
                    session=self.session,  # type: ignore[arg-type]
                    api_root=self._root,
                    api_is_dev=self._dev,
                )
            except (OSError, ValueError, KeyError) as e:
                raise ReferenceAccessError(
                    uri, f"cannot set up a GCS client to read {uri}: {e}; {_CREDENTIALS_HELP}"
                ) from e
        return self._storage

    async def _headers(self, uri: str) -> dict[str, str]:
        self._client(uri)
        if self._token is None:
            return {}
        try:
            token = await self._token.get()
        except Exception as e:
            raise ReferenceAccessError(
                uri, f"cannot get a Google access token to read {uri}: {e}; {_CREDENTIALS_HELP}"
            ) from e
        return {"Authorization": f"Bearer {token}"}

    async def expand(
        self, ref: RemoteURI, name: str, max_objects: int, sink: PageSink | None = None
    ) -> list[RefEntry]:
        """The entries of ``ref``: the one object it names, else its prefix's objects
        (given to ``sink`` a page at a time instead, when there is one)."""
        if ref.version is not None or (ref.key and not ref.key.endswith("/")):
            try:
                meta = await self._metadata(ref, ref.key, ref.version)
            except ReferenceNotFoundError:
                if ref.version is not None:
                    raise
            else:
                return [_entry(object_name(ref, name, None), ref.base, meta)]
        entries, count = await self._list(ref, name, max_objects, sink)
        if not count:
            raise ReferenceNotFoundError(
                ref.uri,
                f"reference {ref.uri!r}: there is no object {ref.key!r} in bucket "
                f"{ref.bucket!r} and no object under the prefix {prefix_of(ref.key)!r}",
            )
        return entries

    async def _metadata(self, ref: RemoteURI, key: str, generation: str | None) -> dict[str, Any]:
        params = {"alt": "json"} if generation is None else {"generation": generation}
        async with await self._get(ref, key, params) as response:
            data: dict[str, Any] = json.loads(await response.read())
        return data

    async def _list(
        self, ref: RemoteURI, name: str, max_objects: int, sink: PageSink | None
    ) -> tuple[list[RefEntry], int]:
        storage = self._client(ref.uri)
        params = {"prefix": prefix_of(ref.key), "maxResults": str(LIST_PAGE)}
        entries: list[RefEntry] = []
        count = 0
        cap = max_objects * COUNT_FACTOR
        while True:
            try:
                page = await storage.list_objects(
                    ref.bucket, params=params, headers=await self._headers(ref.uri)
                )
            except Exception as e:
                raise _translate(e, ref, None) from e
            page_entries: list[RefEntry] = []
            for obj in page.get("items", ()):
                key = obj["name"]
                if key.endswith("/") and int(obj.get("size", 0)) == 0:
                    continue  # a folder marker, not content
                count += 1
                if count <= max_objects:
                    page_entries.append(_entry(object_name(ref, name, key), ref.child(key), obj))
            if sink is None:
                entries += page_entries
            else:
                sink(page_entries)
            token = page.get("nextPageToken")
            if count > max_objects and (not token or count > cap):
                raise TooManyObjectsError(ref.uri, max_objects, min(count, cap), exact=not token)
            if not token:
                return entries, count
            params["pageToken"] = token

    async def fetch(self, ref: str, digest: str, extra: dict[str, Any], dest: Path) -> int:
        """Write the recorded generation of ``ref`` into the new file ``dest``; return
        its size. The caller checks the bytes against ``digest`` (their MD5).

        Raises:
            ReferenceNotFoundError: the object or its recorded generation is gone.
        """
        bucket, _, key = ref.split("://", 1)[1].partition("/")
        parsed = RemoteURI(ref, "gs", bucket, key)
        params = {"alt": "media"}
        generation = extra.get("versionID")
        if generation is not None:
            params["generation"] = str(generation)
        size = 0
        async with await self._get(parsed, key, params, str(generation or "")) as response:
            with open(dest, "xb") as out:
                try:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        out.write(chunk)
                        size += len(chunk)
                except (TimeoutError, aiohttp.ClientError) as e:
                    raise ReferenceUnavailableError(ref, f"the download broke off: {e}") from e
        return size

    async def _get(
        self, ref: RemoteURI, key: str, params: dict[str, str], generation: str = ""
    ) -> aiohttp.ClientResponse:
        url = f"{self._root}/storage/v1/b/{quote(ref.bucket, safe='')}/o/{quote(key, safe='')}"
        headers = await self._headers(ref.uri)
        try:
            response = await self.session.get(
                url, params=params, headers=headers, auto_decompress=False
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise ReferenceUnavailableError(ref.uri, str(e) or type(e).__name__) from e
        if response.status >= 400:
            text = (await response.text(errors="replace"))[:300]
            response.release()
            raise _status_error(ref, response.status, text, generation or ref.version)
        return response


def _service_file(uri: str) -> str | None:
    """The credentials file to use, checked here: gcloud-aio-auth takes an unreadable
    one for "none" and then asks the GCE metadata server, which off GCE only fails
    slowly with a message about the network. ``None``: no file, use the metadata server.
    """
    explicit = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if explicit:
        path = Path(explicit)
    else:
        config = os.environ.get("CLOUDSDK_CONFIG") or os.path.expanduser("~/.config/gcloud")
        path = Path(config) / "application_default_credentials.json"
        if not path.is_file():
            return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        where = "GOOGLE_APPLICATION_CREDENTIALS" if explicit else "the gcloud default credentials"
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ReferenceAccessError(
            uri,
            f"cannot read {where} file {str(path)!r} to read {uri}: {reason}; {_CREDENTIALS_HELP}",
        ) from None
    if not isinstance(data, dict) or "type" not in data:
        raise ReferenceAccessError(
            uri, f"{str(path)!r} is not a Google credentials file (no 'type'); {_CREDENTIALS_HELP}"
        )
    return str(path)


def _entry(path: str, ref: str, obj: dict[str, Any]) -> RefEntry:
    etag = str(obj.get("etag", ""))
    extra: dict[str, Any] = {"etag": etag}
    if "generation" in obj:
        extra["versionID"] = int(obj["generation"])
    digest = obj.get("md5Hash") or etag
    return RefEntry(path, ref, str(digest), int(obj.get("size", 0)), extra)


def _status_error(ref: RemoteURI, status: int, text: str, generation: str | None) -> Exception:
    uri = ref.uri
    if status == 404:
        if generation:
            return ReferenceNotFoundError(
                uri, f"generation {generation} of gs://{ref.bucket}/{ref.key} does not exist"
            )
        return ReferenceNotFoundError(uri, f"no object gs://{ref.bucket}/{ref.key} exists")
    if status in (401, 403):
        return ReferenceAccessError(
            uri, f"GCS refused access to {uri} ({status}: {text.strip()}); {_CREDENTIALS_HELP}"
        )
    if status >= 500 or status in (408, 429):
        return ReferenceUnavailableError(uri, f"GCS answered {status}: {text.strip()}")
    return ReferenceFailure(uri, f"GCS refused a request for {uri} ({status}: {text.strip()})")


def _translate(e: Exception, ref: RemoteURI, generation: str | None) -> Exception:
    if isinstance(e, ReferenceFailure | ReferenceUnavailableError):
        return e
    if isinstance(e, aiohttp.ClientResponseError):
        if e.status == 404:
            return ReferenceNotFoundError(
                ref.uri, f"{ref.uri}: the bucket {ref.bucket!r} does not exist"
            )
        return _status_error(ref, e.status, e.message, generation)
    if isinstance(e, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return ReferenceUnavailableError(ref.uri, str(e) or type(e).__name__)
    return e
