"""``s3://`` references: expansion into entries, and fetching the recorded version.

Expansion follows W&B's S3 handler: the key names one object if there is one (a HEAD),
else a prefix, listed page by page. On a versioned bucket the listing is
ListObjectVersions, which gives every object's ETag *and* version id in the same
pages (1,000 objects a request): W&B asks for each object's version with a request of
its own. Entries are W&B's: digest = the ETag without quotes (``hex-N`` for an object
uploaded in N parts), ``extra = {"etag", "versionID"}`` (no ``versionID`` on an
unversioned bucket). Folder markers (empty keys ending in ``/``) are not objects.

Credentials come from where every AWS tool finds them (botocore's chain: the
``AWS_*`` variables, ``AWS_PROFILE`` and the config files, SSO, instance roles).
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``, or W&B's ``AWS_S3_ENDPOINT_URL``)
selects another S3 server, addressed path-style.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import exceptions as boto_errors
from botocore.loaders import create_loader

from artisync.references.errors import (
    ReferenceAccessError,
    ReferenceChangedError,
    ReferenceFailure,
    ReferenceNotFoundError,
    ReferenceUnavailableError,
    TooManyObjectsError,
)
from artisync.references.uri import PageSink, RefEntry, RemoteURI, object_name, prefix_of

__all__ = ["LIST_PAGE", "S3References", "enter_s3_client", "new_s3_client", "new_session"]

LIST_PAGE: Final = 1000
"""Objects per list request: S3's maximum."""

COUNT_FACTOR: Final = 10
"""Over ``max_objects``, how far the listing goes on counting (``max_objects`` times
this) to say how many objects a prefix holds, before it says "more than"."""

_CHUNK = 1 << 20
_CREDENTIALS_HELP = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
    "temporary credentials), or AWS_PROFILE to a profile in ~/.aws/config, in the "
    "daemon's environment"
)
_ACCESS_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "403",
    }
)
_MISSING_CODES: Final = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_TRANSIENT_CODES: Final = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
# Servers that do not implement versions listing (rclone, some gateways), or users
# allowed s3:ListBucket but not s3:ListBucketVersions.
_NO_VERSIONS_CODES: Final = frozenset({"NotImplemented", "AccessDenied", "MethodNotAllowed"})


def endpoint_url() -> str | None:
    """The S3 endpoint from the environment, or ``None`` for AWS itself."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT_URL"):
        if value := os.environ.get(name):
            return value
    return None


# botocore's service data (S3's model and endpoint rules are large JSON files), parsed
# once per process: a new session would parse them again for every expansion, and
# opening a client that way costs more than the listing of a small prefix.
_LOADER: Final = create_loader()


def new_session() -> AioSession:
    """A new aiobotocore session (credentials, profile and region read now) that shares
    the process's parsed service data."""
    session = AioSession()
    session.register_component("data_loader", _LOADER)
    return session


async def enter_s3_client(stack: contextlib.AsyncExitStack, ref: RemoteURI) -> Any:
    """A new S3 client, closed with ``stack``; a configuration that cannot give one (a
    profile that does not exist) is the :class:`ReferenceFailure` saying so, for ``ref``."""
    try:
        return await stack.enter_async_context(new_s3_client(new_session()))
    except Exception as e:
        translated = _translate(e, ref, None)
        if translated is e:
            raise
        raise translated from e


def new_s3_client(session: AioSession) -> Any:
    """An aiobotocore S3 client context manager (``async with``)."""
    endpoint = endpoint_url()
    config = AioConfig(
        # Attempts per request: botocore's default (3), or AWS_MAX_ATTEMPTS.
        retries={"mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=32,
        # Other S3 servers are addressed by path (moto, MinIO, rclone); AWS by host.
        s3={"addressing_style": "path"} if endpoint else None,
    )
    return session.create_client("s3", endpoint_url=endpoint, config=config)


class S3References:
    """Expands and fetches ``s3://`` references with one aiobotocore client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def expand(
        self, ref: RemoteURI, name: str, max_objects: int, sink: PageSink | None = None
    ) -> list[RefEntry]:
        """The entries of ``ref``: the one object it names, else its prefix's objects
        (given to ``sink`` a page at a time instead, when there is one)."""
        if ref.version is not None:
            head = await self._call(ref, "head_object", Key=ref.key, VersionId=ref.version)
            return [self._single(ref, name, head)]
        if ref.key and not ref.key.endswith("/"):
            try:
                head = await self._call(ref, "head_object", Key=ref.key)
            except ReferenceNotFoundError:
                pass  # no such object: a prefix, as in W&B
            else:
                if "x-directory" not in head.get("ContentType", ""):
                    return [self._single(ref, name, head)]
        entries, count = await self._list(ref, name, max_objects, sink)
        if not count:
            raise ReferenceNotFoundError(
                ref.uri,
                f"reference {ref.uri!r}: there is no object {ref.key!r} in bucket "
                f"{ref.bucket!r} and no object under the prefix {prefix_of(ref.key)!r}",
            )
        return entries

    def _single(self, ref: RemoteURI, name: str, head: dict[str, Any]) -> RefEntry:
        etag = str(head["ETag"]).strip('"')
        return RefEntry(
            object_name(ref, name, None),
            ref.base,
            etag,
            int(head["ContentLength"]),
            _extra(etag, head.get("VersionId")),
        )

    async def _list(
        self, ref: RemoteURI, name: str, max_objects: int, sink: PageSink | None
    ) -> tuple[list[RefEntry], int]:
        prefix = prefix_of(ref.key)
        entries: list[RefEntry] = []
        count = 0
        cap = max_objects * COUNT_FACTOR
        versions = True
        params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": LIST_PAGE}
        while True:
            if versions:
                try:
                    page = await self._call(ref, "list_object_versions", **params)
                except (ReferenceFailure, ReferenceUnavailableError) as e:
                    if _code(e.__cause__) not in _NO_VERSIONS_CODES:
                        raise
                    versions = False  # no versions listing here: plain listing, no versionID
                    params = {"Prefix": prefix, "MaxKeys": LIST_PAGE}
                    continue
                found = [v for v in page.get("Versions", ()) if v.get("IsLatest")]
            else:
                page = await self._call(ref, "list_objects_v2", **params)
                found = page.get("Contents", [])
            page_entries: list[RefEntry] = []
            for obj in found:
                key = obj["Key"]
                if key.endswith("/") and int(obj.get("Size", 0)) == 0:
                    continue  # a folder marker, not content
                count += 1
                if count <= max_objects:
                    etag = str(obj["ETag"]).strip('"')
                    page_entries.append(
                        RefEntry(
                            object_name(ref, name, key),
                            ref.child(key),
                            etag,
                            int(obj["Size"]),
                            _extra(etag, obj.get("VersionId")),
                        )
                    )
            if sink is None:
                entries += page_entries
            else:
                sink(page_entries)
            more = bool(page.get("IsTruncated"))
            if count > max_objects and (not more or count > cap):
                raise TooManyObjectsError(ref.uri, max_objects, min(count, cap), exact=not more)
            if not more:
                return entries, count
            if versions:
                params["KeyMarker"] = page["NextKeyMarker"]
                params["VersionIdMarker"] = page.get("NextVersionIdMarker", "")
            else:
                params["ContinuationToken"] = page["NextContinuationToken"]

    async def fetch(self, ref: str, digest: str, extra: dict[str, Any], dest: Path) -> int:
        """Write the recorded version of ``ref`` into the new file ``dest``; return its size.

        The version is ``extra["versionID"]`` when recorded, else the object as it is
        now; either way its ETag must still be the recorded one.

        Raises:
            ReferenceNotFoundError: the object or its recorded version is gone.
            ReferenceChangedError: the object now has another ETag.
        """
        parsed = RemoteURI(ref, "s3", *_split(ref))
        params: dict[str, Any] = {"Key": parsed.key}
        version = extra.get("versionID")
        if version:
            params["VersionId"] = str(version)
        expected = str(extra.get("etag") or digest).strip('"')
        response = await self._call(parsed, "get_object", **params)
        body = response["Body"]
        try:
            actual = str(response["ETag"]).strip('"')
            if actual != expected:
                what = f"version {version} of {ref}" if version else ref
                gone = "" if version else " (no version was recorded: the bucket was not versioned)"
                message = f"{what} has ETag {actual}, not {expected} as when it was logged{gone}"
                raise ReferenceChangedError(ref, message, expected, actual)
            size = 0
            with open(dest, "xb") as out:
                while chunk := await _read(parsed, body):
                    out.write(chunk)
                    size += len(chunk)
            return size
        finally:
            body.close()

    async def _call(self, ref: RemoteURI, operation: str, **params: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await getattr(self.client, operation)(
                Bucket=ref.bucket, **params
            )
        except Exception as e:
            raise _translate(e, ref, params.get("VersionId")) from e
        return result


def _split(ref: str) -> tuple[str, str]:
    rest = ref.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _extra(etag: str, version: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"etag": etag}
    if version and version != "null":
        extra["versionID"] = version
    return extra


async def _read(ref: RemoteURI, body: Any) -> bytes:
    try:
        chunk: bytes = await body.read(_CHUNK)
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        raise ReferenceUnavailableError(ref.uri, f"the download broke off: {e}") from e
    return chunk


def _code(error: BaseException | None) -> str:
    if isinstance(error, boto_errors.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def _translate(e: Exception, ref: RemoteURI, version: str | None) -> Exception:
    """The artisync error for a failed S3 call on ``ref``; ``e`` itself if unknown."""
    uri = ref.uri
    if isinstance(e, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return ReferenceAccessError(uri, f"no AWS credentials to read {uri}: {_CREDENTIALS_HELP}")
    if isinstance(e, boto_errors.ProfileNotFound):
        where = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
        return ReferenceAccessError(
            uri,
            f"cannot read {uri}: {e}; set AWS_PROFILE to a profile in {where} (or unset "
            "it for the default credentials)",
        )
    if isinstance(e, boto_errors.ClientError):
        code = _code(e)
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = e.response.get("Error", {}).get("Message") or code
        if code == "NoSuchBucket":
            return ReferenceNotFoundError(uri, f"{uri}: the bucket {ref.bucket!r} does not exist")
        if code in _MISSING_CODES or status == 404:
            what = f"version {version} of {ref.base}" if version else f"no object {ref.base}"
            return ReferenceNotFoundError(
                uri, f"{what} {'does not exist' if version else 'exists'} (S3 said {code})"
            )
        if code in _ACCESS_CODES or status in (401, 403):
            return ReferenceAccessError(
                uri,
                f"S3 refused access to {uri} ({code}: {message}): check the credentials "
                f"and their permissions on bucket {ref.bucket!r}; {_CREDENTIALS_HELP}",
            )
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return ReferenceUnavailableError(uri, f"S3 answered {status} {code}: {message}")
        return ReferenceFailure(uri, f"S3 refused a request for {uri}: {code}: {message}")
    if isinstance(
        e,
        boto_errors.EndpointConnectionError
        | boto_errors.ConnectionError
        | boto_errors.HTTPClientError
        | aiohttp.ClientError
        | asyncio.TimeoutError
        | OSError,
    ):
        return ReferenceUnavailableError(uri, str(e) or type(e).__name__)
    return e
