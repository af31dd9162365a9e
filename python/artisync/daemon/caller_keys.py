"""Whose API key a submission is committed with, when the registry is a server.

The daemon acts for the user who calls it (DESIGN.md, "Many nodes"): it reads their files
with their rights (``callers``) and commits with their key, so the server applies that
user's rights, not the daemon's. The key comes sealed in the submission
(:mod:`artisync.sealed_keys`); everything the daemon asks the server for that submission
then runs under :func:`~artisync.registry.http.acting.acting_as` that key.

- A sealed key is opened for the submission's id, its caller's uid and the daemon's own
  server; one that does not open rejects the submission, saying to log it again.
- No sealed key: the daemon's own user is served with the daemon's own key (its
  environment, or its ``artisync login``), as before; anyone else is rejected, told how
  to give one. The daemon never lends its key to another user.
- The server's refusals of that key are the submission's answer, never a retry: an
  unknown or revoked key (401), or a project the caller may not write or see (403, 404).
"""

from __future__ import annotations

from artisync.daemon.callers import Caller
from artisync.daemon.expand import Rejected
from artisync.errors import NotFoundError, RegistryError, SealedKeyError, UnauthorizedError
from artisync.registry import DEFAULT_ENTITY
from artisync.sealed_keys import PUBLIC_NAME, KeyOpener
from artisync.spool import Submission

__all__ = ["CallerKeys", "refusal"]


class CallerKeys:
    """The keys of the callers of a daemon whose registry is the server ``server``."""

    def __init__(self, server: str, opener: KeyOpener) -> None:
        self.server = server.rstrip("/")
        self._opener = opener

    def key_for(self, sub: Submission, caller: Caller) -> str | None:
        """The key to commit ``sub`` with; None for the daemon's own. Raises
        :class:`Rejected` when there is none to use."""
        sealed = sub.sealed_key
        if sealed is None:
            if caller.trusted:
                return None
            raise Rejected(
                "validate",
                f"submission {sub.id} of {caller.name} carries no API key for the registry "
                f"server {self.server}, and the daemon commits for each user only with "
                f"their own: run `artisync login` as {caller.name} on this node, or set "
                "ARTISYNC_API_KEY, then log the artifact again (a submission written "
                "before this daemon first started carries none either: log it again)",
            )
        if sealed.server.rstrip("/") != self.server:
            raise Rejected(
                "validate",
                f"submission {sub.id} carries an API key for the registry server "
                f"{sealed.server[:200]!r}, but this daemon commits to {self.server}: the "
                "training script and the daemon read different settings (check "
                "ARTISYNC_REGISTRY and config.toml), then log the artifact again",
            )
        try:
            return self._opener.open(
                sealed.sealed, submission_id=sub.id, uid=caller.uid, server=self.server
            )
        except SealedKeyError as e:
            raise Rejected(
                "validate",
                f"{caller.name}'s API key in submission {sub.id} cannot be used: {e}. Log "
                f"the artifact again (the SDK seals with the daemon's key in {PUBLIC_NAME} "
                f"as it is now); if it fails again, run `artisync login` as {caller.name}",
            ) from None


def refusal(error: RegistryError, sub: Submission, caller: Caller, server: str | None) -> Rejected:
    """The rejection of ``sub`` for a registry's refusal of its caller's request."""
    where = f"registry server {server}" if server else "the registry"
    if isinstance(error, UnauthorizedError):
        whose = "the daemon's own API key" if sub.sealed_key is None else "the API key"
        return Rejected(
            "commit",
            f"the {where} refused {whose} of {caller.name} ({error}): run `artisync "
            f"login` as {caller.name} on this node with a valid key, or set "
            "ARTISYNC_API_KEY, then log the artifact again",
        )
    project = f"{sub.entity or DEFAULT_ENTITY}/{sub.project}"
    hidden = " (or may not see it)" if isinstance(error, NotFoundError) else ""
    return Rejected(
        "commit",
        f"the {where} refused {caller.name}'s version of {sub.artifact.name!r} in project "
        f"{project}: {error}. {caller.name} may not write to {project}{hidden}: log to a "
        "project of their own, or ask an admin of its team to add them",
    )
