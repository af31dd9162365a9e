"""Grants as the server's HTTP API carries them (``docs/openapi.json``), both ways: the
server writes them (:mod:`artisync.server.routes_transfers`), a node reads them
(:mod:`artisync.store.granted`). One module, so the two cannot drift apart.

An upload grant is an object with a ``kind``: ``stored`` (the caller holds the blob:
nothing to send), ``put`` (``url``, ``headers``, ``expires_at``), ``parts``
(``upload_id``, ``parts``: ``number``, ``url``, ``headers`` each, ``expires_at``) or
``session`` (``url``, ``size``). A blob is asked for as ``md5``, ``size`` and, in parts,
``part_size`` and ``part_md5s``, with the ``upload_id`` of an upload to resume.
"""

from __future__ import annotations

from typing import Any

from artisync.errors import InvalidInputError, RegistryError
from artisync.store.grants import (
    BlobSpec,
    PartGrant,
    PartsGrant,
    PutGrant,
    SessionGrant,
    UploadGrant,
)

__all__ = ["grant_from_json", "grant_to_json", "spec_to_json"]


def grant_to_json(grant: UploadGrant | None) -> dict[str, Any]:
    """How an upload grant goes over the wire (None: ``stored``)."""
    if grant is None:
        return {"kind": "stored"}
    if isinstance(grant, PutGrant):
        return {"kind": "put", "url": grant.url, "headers": grant.headers,
                "expires_at": grant.expires_at}  # fmt: skip
    if isinstance(grant, PartsGrant):
        parts = [{"number": p.number, "url": p.url, "headers": p.headers} for p in grant.parts]
        return {"kind": "parts", "upload_id": grant.upload_id, "parts": parts,
                "expires_at": grant.expires_at}  # fmt: skip
    if isinstance(grant, SessionGrant):
        return {"kind": "session", "url": grant.url, "size": grant.size}
    raise InvalidInputError(f"no wire form for a {type(grant).__name__}")


def grant_from_json(answer: Any, server: str) -> UploadGrant | None:
    """The grant ``server`` sent (None: ``stored``); :class:`RegistryError` if it is
    none (a server of another version)."""
    try:
        kind = answer["kind"]
        if kind == "stored":
            return None
        if kind == "put":
            return PutGrant(str(answer["url"]), _headers(answer), float(answer["expires_at"]))
        if kind == "parts":
            parts = tuple(
                PartGrant(int(p["number"]), str(p["url"]), _headers(p)) for p in answer["parts"]
            )
            return PartsGrant(str(answer["upload_id"]), parts, float(answer["expires_at"]))
        if kind == "session":
            return SessionGrant(str(answer["url"]), int(answer["size"]))
    except (KeyError, TypeError, ValueError):
        pass
    raise RegistryError(
        f"registry server {server} answered {str(answer)[:200]!r} where a grant was due; "
        "is it an artisync server of this version?"
    )


def _headers(answer: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(answer["headers"]).items()}


def spec_to_json(blob: BlobSpec, upload_id: str | None = None) -> dict[str, Any]:
    """How a node asks for a grant to upload ``blob`` (resuming ``upload_id``)."""
    spec: dict[str, Any] = {"md5": blob.md5_hex, "size": blob.size}
    if blob.part_size is not None:
        spec["part_size"] = blob.part_size
        spec["part_md5s"] = list(blob.part_md5s)
    if upload_id is not None:
        spec["upload_id"] = upload_id
    return spec
