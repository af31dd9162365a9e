"""Reference URIs: what they name, and the entry paths their objects get.

The naming rules are the seed's (W&B's ``add_reference``), one function for the SDK
(the name a reference shows under before the daemon expands it) and the daemon (the
names of the objects it finds):

- a single object is named by ``name``, else by the last component of its key
  (``s3://my-bucket/model.h5`` → ``model.h5``; ``name="models/mymodel.h5"`` renames);
- the objects under a prefix are named relative to the prefix, under ``name`` when
  given (``s3://my-bucket/images`` → ``cat.png``, ``dog.png``; ``name="images"`` →
  ``images/cat.png``);
- a reference with ``checksum=False`` is one entry named like a single object (the
  bucket, or the host, when there is no key).

A prefix ``images`` means the "directory" ``images/``: it holds ``images/cat.png`` but
not ``images2/x``, which W&B's plain string prefix would take (and then fail to name).
S3 and GCS keys are taken from the URI as written, not percent-decoded (as W&B does:
an object key is not a URL path); an HTTP URL's path is percent-decoded for its name.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from artisync.errors import InvalidInputError
from artisync.names import normalize_entry_path
from artisync.references.errors import ReferenceFailure

__all__ = [
    "REFERENCE_SCHEMES",
    "REMOTE_SCHEMES",
    "PageSink",
    "RefEntry",
    "RemoteURI",
    "check_reference",
    "default_name",
    "object_name",
    "parse_remote",
    "prefix_of",
    "unchecked_digest",
]

REMOTE_SCHEMES: Final = ("s3", "gs", "http", "https")
"""Schemes whose references the daemon expands over the network."""

REFERENCE_SCHEMES: Final = ("file", *REMOTE_SCHEMES)
"""URI schemes ``add_reference`` accepts."""

# Longest reference URI: the longest entry path, plus room for a scheme, a bucket and a
# version. artisync's bound; a URI is stored in every entry it expands to.
_URI_MAX_BYTES: Final = 8192


@dataclass(frozen=True, slots=True)
class RemoteURI:
    """A parsed ``s3://``, ``gs://`` or ``http(s)://`` reference.

    Attributes:
        uri: The reference as the user gave it.
        scheme: ``s3``, ``gs``, ``http`` or ``https`` (lowercase).
        bucket: The bucket (S3, GCS) or the host and port (HTTP).
        key: The object key or prefix, without the leading ``/`` (HTTP: the path).
        version: The pinned version: S3's ``?versionId=``, GCS's ``#generation``.
    """

    uri: str
    scheme: str
    bucket: str
    key: str
    version: str | None = None

    @property
    def base(self) -> str:
        """The URI without its version: what entries record as ``ref``."""
        if self.scheme in ("http", "https"):
            return self.uri
        return f"{self.scheme}://{self.bucket}/{self.key}"

    def child(self, key: str) -> str:
        """The ``ref`` of the object ``key`` in the same bucket."""
        return f"{self.scheme}://{self.bucket}/{key}"


@dataclass(slots=True)
class RefEntry:
    """One manifest entry found by expanding a reference."""

    path: str
    ref: str
    digest: str
    size: int | None
    extra: dict[str, Any] = field(default_factory=dict)


PageSink = Callable[[list[RefEntry]], None]
"""Takes a listing's entries a page at a time (see ``RemoteReferences.expand``)."""


def check_reference(uri: object) -> str:
    """Return ``uri`` if it is a reference the daemon can expand, else raise.

    The SDK checks at ``add_reference`` and the daemon when it reads a submission, with
    this one function. The scheme must be one of :data:`REFERENCE_SCHEMES`. A
    ``file://`` URI must name an absolute local path: ``file:///data/x`` or
    ``file://localhost/data/x``; ``file://data/x`` names the host ``data``, and
    ``file:x``, ``file://`` or ``file://../x`` are relative (to wherever the daemon runs).
    ``s3://`` and ``gs://`` need a bucket, ``http(s)://`` a host.

    Raises:
        InvalidInputError: naming the URI, what is wrong and what a valid one looks like.
    """
    if not isinstance(uri, str):
        raise InvalidInputError(
            f"Invalid reference {uri!r}: must be a URI string such as 's3://bucket/key', "
            f"not {type(uri).__name__}"
        )
    if len(uri) * 4 > _URI_MAX_BYTES and len(uri.encode("utf-8", "surrogatepass")) > (
        _URI_MAX_BYTES
    ):
        raise InvalidInputError(
            f"Invalid reference {uri[:100]!r}...: longer than {_URI_MAX_BYTES} bytes"
        )
    if "\0" in uri:
        raise InvalidInputError(f"Invalid reference {uri!r}: must not contain NUL bytes")
    try:
        parts = urlsplit(uri)
    except ValueError as e:  # "Invalid IPv6 URL", a bad port
        raise InvalidInputError(f"Invalid reference {uri!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in REFERENCE_SCHEMES:
        raise InvalidInputError(
            f"Invalid reference {uri!r}: unsupported scheme {parts.scheme or '(none)'!r}; "
            "references may be file://, s3://, gs://, http:// or https:// URIs"
        )
    if scheme == "file":
        if not uri[len(scheme) :].startswith("://") or parts.netloc not in ("", "localhost"):
            raise InvalidInputError(
                f"Invalid reference {uri!r}: a file:// URI needs an absolute path on this "
                "machine, e.g. 'file:///data/train' (three slashes) or "
                "'file://localhost/data/train'"
            )
        if not posixpath.isabs(parts.path):
            raise InvalidInputError(
                f"Invalid reference {uri!r}: a file:// URI needs an absolute path after "
                "'file://', e.g. 'file:///data/train' (three slashes)"
            )
        return uri
    parse_remote(uri)
    return uri


def parse_remote(uri: str) -> RemoteURI:
    """Parse a remote reference.

    Raises:
        InvalidInputError: not an ``s3``, ``gs`` or ``http(s)`` URI with a bucket or host,
            or an empty version.
    """
    try:
        parts = urlsplit(uri)
    except ValueError as e:
        raise InvalidInputError(f"Invalid reference {uri!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in REMOTE_SCHEMES:
        raise InvalidInputError(
            f"Invalid reference {uri!r}: expected s3://bucket/key, gs://bucket/key or an "
            "http(s):// URL"
        )
    if scheme in ("http", "https") and not parts.hostname:
        raise InvalidInputError(
            f"Invalid reference {uri!r}: {scheme}:// URLs need a host, "
            f"e.g. '{scheme}://example.com/data.csv'"
        )
    if not parts.netloc:
        raise InvalidInputError(
            f"Invalid reference {uri!r}: {scheme}:// URIs need a bucket, "
            f"e.g. '{scheme}://my-bucket/key'"
        )
    if scheme in ("http", "https"):
        return RemoteURI(uri, scheme, parts.netloc, parts.path.lstrip("/"))
    key = parts.path[1:] if parts.path.startswith("/") else parts.path
    version: str | None = None
    if scheme == "s3":
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if "versionId" in query:
            version = query["versionId"]
            if not version:
                raise InvalidInputError(f"Invalid reference {uri!r}: versionId is empty")
    elif parts.fragment or uri.endswith("#"):
        version = parts.fragment
        if not version.isdigit():
            raise InvalidInputError(
                f"Invalid reference {uri!r}: the generation after '#' must be a number"
            )
    if version is not None and (not key or key.endswith("/")):
        raise InvalidInputError(
            f"Invalid reference {uri!r}: a version pins one object, not a bucket or a prefix"
        )
    return RemoteURI(uri, scheme, parts.netloc, key, version)


def default_name(uri: str) -> str:
    """The entry name of a reference given without ``name``, as one entry.

    The last component of the key (or of the URL path, decoded), else the bucket or
    host. The daemon names a prefix's objects relative to it instead.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    path = unquote(parts.path) if scheme in ("file", "http", "https") else parts.path
    return posixpath.basename(path.rstrip("/")) or parts.netloc or uri


def unchecked_digest(uri: str) -> str:
    """The digest of a reference added with ``checksum=False``: the URI, as W&B writes
    it (``scheme://bucket/key``, without a version) for buckets, as given otherwise."""
    if urlsplit(uri).scheme.lower() in ("s3", "gs"):
        return parse_remote(uri).base
    return uri


def prefix_of(key: str) -> str:
    """The listing prefix of a reference's key: the key as a directory (``a`` → ``a/``)."""
    return key if key == "" or key.endswith("/") else key + "/"


def object_name(ref: RemoteURI, name: str, object_key: str | None) -> str:
    """The entry path of an object found for ``ref``.

    ``name`` is the user's name (``""`` when not given); ``object_key`` is the key of an
    object under the reference's prefix, or ``None`` for the one object the reference
    names itself.

    Raises:
        ReferenceFailure: the key makes no valid entry path (``..`` components, …).
    """
    if object_key is None:
        path = name or default_name(ref.uri)
    else:
        rel = object_key[len(prefix_of(ref.key)) :]
        path = posixpath.join(name, rel) if name else rel
    try:
        return normalize_entry_path(path)
    except InvalidInputError as e:
        raise ReferenceFailure(
            ref.uri,
            f"reference {ref.uri!r}: the object {object_key or ref.key!r} cannot be an "
            f"entry of the artifact: {e}",
        ) from None
