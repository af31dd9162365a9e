"""The exceptions artisync raises.

Everything artisync raises on purpose derives from :class:`ArtisyncError`, so a
training script can catch the whole family in one place. I/O failures from the
Rust core stay :class:`OSError` subclasses (``FileNotFoundError``,
``PermissionError``, ...) with ``filename`` set, because that is what Python code
already expects of file operations; :class:`SymlinkLoopError` is one of them.
"""

from __future__ import annotations

from artisync._core import SymlinkLoopError

__all__ = [
    "ArtisyncError",
    "DiskFullError",
    "ForbiddenError",
    "InvalidInputError",
    "ManifestError",
    "MissingDependencyError",
    "NoDaemonWarning",
    "NotFoundError",
    "RegistryError",
    "RegistryUnavailableError",
    "RejectedError",
    "SameContentWarning",
    "SealedKeyError",
    "SubmissionError",
    "SymlinkLoopError",
    "TypeConflictError",
    "UnauthorizedError",
]


class ArtisyncError(Exception):
    """Base of every error artisync raises on purpose."""


class InvalidInputError(ArtisyncError, ValueError):
    """A name, alias, path, metadata value or submission that artisync cannot accept.

    The message says which input was wrong and what a valid one looks like.
    """


class ManifestError(InvalidInputError):
    """A manifest that is not valid ``artifact_manifest_v1`` JSON."""


class SubmissionError(InvalidInputError):
    """A spool submission file that is malformed or of an unknown format version."""


class RejectedError(ArtisyncError):
    """The daemon rejected a logged artifact; the message is the daemon's reason."""

    def __init__(self, reason: str, *, submission_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.submission_id = submission_id


class RegistryError(ArtisyncError):
    """The registry refused an operation or could not be read."""


class RegistryUnavailableError(RegistryError):
    r"""The registry could not be reached: its database, or the ``artisync server`` in
    front of it, is down, unreachable or too busy to answer in time.

    Unlike other :class:`RegistryError`\ s this says nothing about the request: asking
    again later may succeed (the daemon retries commits that meet it). The message
    names the registry and what to check.
    """


class TypeConflictError(RegistryError):
    """An artifact name is already registered in the project with another type."""


class NotFoundError(RegistryError, LookupError):
    """A project, artifact, version, alias or run that does not exist (or that the
    caller may not see: a server never tells the difference)."""


class UnauthorizedError(RegistryError):
    """The server knows no valid API key for the request: none was given, or it is
    unknown or revoked. The message says where a key comes from."""


class ForbiddenError(RegistryError):
    """The caller may see the project but not do this there (a viewer writing, anyone
    but a team admin changing visibility)."""


class SealedKeyError(ArtisyncError):
    """An API key sealed for the node's daemon (:mod:`artisync.sealed_keys`) that cannot
    be sealed or opened: the daemon's key file is missing, unsafe or was replaced, or the
    sealed key was made for another submission, user or server."""


class DiskFullError(ArtisyncError, OSError):
    """A write failed because its filesystem is full or the user's quota is used up.

    An :class:`OSError` with ``errno`` (``ENOSPC`` or ``EDQUOT``) and ``filename`` (the
    path being written) set, so code that handles file errors still catches it. It also
    names the filesystem: ``mount_point``, ``fstype`` and ``free_bytes``. Whatever was
    half-written is removed before it is raised; free space and call again.
    """

    def __init__(
        self,
        code: int,
        path: str,
        message: str,
        *,
        mount_point: str,
        fstype: str,
        free_bytes: int | None,
    ) -> None:
        super().__init__(code, message, path)
        self.mount_point = mount_point
        self.fstype = fstype
        self.free_bytes = free_bytes

    def __str__(self) -> str:
        return str(self.strerror)


class MissingDependencyError(ArtisyncError, ImportError):
    """An optional package a feature needs is not installed (Pillow for images).

    An :class:`ImportError`, so code that already guards optional imports catches it;
    the message names the package and the ``pip install`` line that brings it.
    """


class NoDaemonWarning(UserWarning):
    """A submission was queued in the spool and no daemon will pick it up by itself
    (autostart is off, or systemd manages the home): someone has to start one."""


class SameContentWarning(UserWarning):
    """A logged artifact's content was identical to an existing version, which was
    returned instead of a new one, and what the log gave that a version records once
    (description, metadata, TTL) differed from that version's and was not applied."""
