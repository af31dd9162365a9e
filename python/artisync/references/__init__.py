"""References to objects artisync does not store: S3, GCS and HTTP(S).

The daemon expands them into manifest entries and downloads fetch exactly the version
an entry recorded, both with :class:`artisync.references.remote.RemoteReferences`.
That module (and the S3/GCS clients it loads) is imported by its users only: the SDK
needs the naming rules, not aiobotocore.
"""

from artisync.references.errors import (
    ReferenceAccessError,
    ReferenceChangedError,
    ReferenceFailure,
    ReferenceNotFoundError,
    ReferenceUnavailableError,
    TooManyObjectsError,
)
from artisync.references.uri import (
    REMOTE_SCHEMES,
    RefEntry,
    RemoteURI,
    default_name,
    parse_remote,
)

__all__ = [
    "REMOTE_SCHEMES",
    "RefEntry",
    "ReferenceAccessError",
    "ReferenceChangedError",
    "ReferenceFailure",
    "ReferenceNotFoundError",
    "ReferenceUnavailableError",
    "RemoteURI",
    "TooManyObjectsError",
    "default_name",
    "parse_remote",
]
