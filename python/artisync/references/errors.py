"""What can go wrong with a reference to an object in S3, GCS or on an HTTP server.

Two kinds, because the daemon treats them differently: :class:`ReferenceFailure`
subclasses are the user's to fix (a missing object, a wrong credential, a prefix over
``max_objects``) and reject the version with their message; a
:class:`ReferenceUnavailableError` is the network or the server failing for now, which
the daemon retries with backoff, as it does a store outage.
"""

from __future__ import annotations

from artisync.errors import ArtisyncError
from artisync.store.base import StoreUnavailableError

__all__ = [
    "ReferenceAccessError",
    "ReferenceChangedError",
    "ReferenceFailure",
    "ReferenceNotFoundError",
    "ReferenceUnavailableError",
    "TooManyObjectsError",
]


class ReferenceFailure(ArtisyncError):
    """A reference that cannot be expanded or fetched until the user acts.

    ``uri`` is the reference concerned; the message says what is wrong and what to do.
    """

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri


class ReferenceAccessError(ReferenceFailure):
    """The server refused us: no credentials, wrong credentials, or no permission."""


class ReferenceNotFoundError(ReferenceFailure, LookupError):
    """The bucket, object, prefix or pinned version does not exist (any more)."""


class ReferenceChangedError(ReferenceFailure):
    """The object is there but is no longer the version that was logged."""

    def __init__(self, uri: str, message: str, expected: str, actual: str) -> None:
        super().__init__(uri, message)
        self.expected = expected
        self.actual = actual


class TooManyObjectsError(ReferenceFailure):
    """A prefix holds more objects than ``max_objects`` allows."""

    def __init__(self, uri: str, limit: int, count: int, exact: bool) -> None:
        held = f"{count:,}" if exact else f"more than {count:,}"
        super().__init__(
            uri,
            f"reference {uri!r} holds {held} objects, more than max_objects={limit:,}; "
            "pass a larger max_objects to add_reference, or reference a narrower prefix",
        )
        self.limit = limit
        self.count = count
        self.exact = exact


class ReferenceUnavailableError(StoreUnavailableError):
    """The server could not be reached or failed (5xx, throttling): retry later."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(uri, reason)
        self.args = (f"cannot reach {uri} now: {reason} (retried with backoff)",)

    def __str__(self) -> str:
        return str(self.args[0])
