"""Moving bytes without the server: the presigned grants nodes upload and download with.

``GET /api/v1/store`` says which store the server serves and how nodes reach it. With a
bucket (``transfers: "presigned"``), a node holds no bucket credentials:

- ``POST /api/v1/uploads``: grants for up to 1,000 blobs of a version the caller may
  write. A blob the caller has proven they hold (:mod:`artisync.server.blob_index`: in a
  committed version they may read, or uploaded by them) is answered ``stored``; any
  other gets a grant, whether or not the bucket holds it, so nothing is told of blobs
  the caller may not read (DESIGN.md, "Many nodes": a digest alone proves nothing).
- ``POST /api/v1/uploads/complete``: the server completes a multipart upload (S3).
- ``POST /api/v1/manifests/uploads``: a grant that can only create a version's manifest.
- ``POST /api/v1/downloads`` and ``GET /api/v1/manifests``: URLs that read blobs and
  manifests of versions the caller may read; anything else is answered as absent.

What a caller sent is checked at the commit (:mod:`artisync.server.content`), not here:
a grant proves nothing about what was done with it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from artisync.errors import NotFoundError
from artisync.names import validate_entity, validate_project
from artisync.registry import DEFAULT_ENTITY
from artisync.server.access.policy import Action
from artisync.server.arguments import Arguments
from artisync.server.blob_index import BlobIndex
from artisync.server.content import ContentCheck
from artisync.server.routes import API, Awaited, Call, Route
from artisync.server.routes_runs import writing
from artisync.store.base import check_manifest_key, check_md5_hex
from artisync.store.grant_wire import grant_to_json
from artisync.store.grants import (
    BlobSpec,
    Grants,
)

__all__ = ["ROUTES"]

MAX_BLOBS: Final = 1000
"""Blobs one request may ask grants for: a node asks in batches; a bound keeps one
request's work (and its answer) small."""


def _served(call: Call) -> tuple[ContentCheck, Grants, BlobIndex]:
    """The server's bucket, its grants and its index; :class:`NotFoundError` (what a
    route that does not exist answers) when the server serves no bucket."""
    content = call.content
    if content is None or content.grants is None or content.index is None:
        raise NotFoundError(
            "this server hands out no transfers: it serves no bucket (start it with "
            "--store s3://… or gs://…), so nodes write to their own store"
        )
    return content, content.grants, content.index


async def _may_write(call: Call, entity: str, project: str) -> None:
    """Return if the caller may write ``entity/project`` (the cache's answer on the
    event loop when it has one), else raise what the registry routes raise."""
    if not call.guard.allowed_from_cache(entity, project, Action.WRITE):
        await call.run(lambda r: writing(call, entity, project))


def store(call: Call) -> Awaited:
    async def answer() -> dict[str, Any]:
        content = call.content
        if content is None:
            return {"url": None, "transfers": None}
        described: dict[str, Any] = {"url": content.store.url, "transfers": "files"}
        if content.grants is not None:
            described["transfers"] = "presigned"
            parts = content.grants.parts()
            if parts is not None:
                described["multipart_threshold"], described["part_size"] = parts
        return described

    return Awaited(answer())


def _project(call: Call, body: Arguments) -> tuple[str, str]:
    entity = body.optional_name("entity", validate_entity) or DEFAULT_ENTITY
    return entity, body.name("project", validate_project)


def _spec(blob: Arguments) -> BlobSpec:
    """A blob as a node declares it, checked."""
    md5 = blob.name("md5", check_md5_hex)
    size = blob.count("size")
    part_size = blob.count("part_size", required=False, default=0) or None
    part_md5s = tuple(blob.names("part_md5s", check_md5_hex))
    return BlobSpec(md5, size, part_size, part_md5s)


def uploads(call: Call) -> Awaited:
    body = call.body
    entity, project = _project(call, body)
    asked = []
    for blob in body.objects("blobs", limit=MAX_BLOBS):
        upload_id = blob.optional_name("upload_id")
        asked.append((_spec(blob), upload_id))
        blob.finish("a blob to upload")
    body.finish("an upload request")

    async def answer() -> dict[str, Any]:
        await _may_write(call, entity, project)
        _, grants, index = _served(call)
        md5s = {spec.md5_hex for spec, _ in asked}
        proof = await asyncio.to_thread(index.proven, call.caller, md5s)
        held = proof.held | proof.uploaded

        async def grant(spec: BlobSpec, upload_id: str | None) -> dict[str, Any]:
            if spec.md5_hex in held:
                return {"md5": spec.md5_hex, **grant_to_json(None)}
            made = await grants.upload(spec, uploader=call.caller.user, upload_id=upload_id)
            return {"md5": spec.md5_hex, **grant_to_json(made)}

        return {"grants": list(await asyncio.gather(*(grant(*a) for a in asked)))}

    return Awaited(answer())


def complete(call: Call) -> Awaited:
    body = call.body
    entity, project = _project(call, body)
    blob = Arguments(body.json_object("blob") or {}, "blob.")
    spec = _spec(blob)
    blob.finish("a blob")
    upload_id = body.name("upload_id")
    body.finish("a completion")

    async def answer() -> dict[str, Any]:
        await _may_write(call, entity, project)
        _, grants, index = _served(call)
        await grants.complete(spec, upload_id)
        await asyncio.to_thread(index.record_upload, call.caller.user, spec.md5_hex)
        return {}

    return Awaited(answer())


def manifest_upload(call: Call) -> Awaited:
    body = call.body
    entity, project = _project(call, body)
    digest = body.name("digest", check_md5_hex)
    md5 = body.name("md5", check_md5_hex)
    size = body.count("size")
    body.finish("a manifest upload request")

    async def answer() -> dict[str, Any]:
        await _may_write(call, entity, project)
        _, grants, _ = _served(call)
        return grant_to_json(await grants.manifest_upload(digest, md5, size))

    return Awaited(answer())


def downloads(call: Call) -> Awaited:
    body = call.body
    md5s = body.names("blobs", check_md5_hex, required=True)
    if not md5s or len(md5s) > MAX_BLOBS:
        raise body.bad("blobs", f"must name 1 to {MAX_BLOBS} blobs, not {len(md5s)}")
    body.finish("a download request")

    async def answer() -> dict[str, Any]:
        _, grants, index = _served(call)
        readable = await asyncio.to_thread(index.readable, call.caller, set(md5s))

        async def grant(md5: str) -> dict[str, Any]:
            # One the caller may not read is answered as one the bucket does not hold.
            if md5 not in readable:
                return {"md5": md5, "url": None, "expires_at": None}
            made = await grants.download(md5)
            return {"md5": md5, "url": made.url, "expires_at": made.expires_at}

        return {"grants": list(await asyncio.gather(*(grant(m) for m in md5s)))}

    return Awaited(answer())


def manifest_download(call: Call) -> Awaited:
    key = call.query.name("key", check_manifest_key)
    call.query.finish("a manifest download")

    async def answer() -> dict[str, Any]:
        content, grants, index = _served(call)
        if not await asyncio.to_thread(index.manifest_readable, call.caller, key):
            raise NotFoundError(f"no manifest {key} in {content.store.url}")
        made = await grants.manifest_download(key)
        return {"url": made.url, "expires_at": made.expires_at}

    return Awaited(answer())


ROUTES: Final = (
    Route("GET", f"{API}/store", store, "The store this server serves, and how nodes reach it"),
    Route("POST", f"{API}/uploads", uploads, "Grants to upload blobs (or: stored)"),
    Route("POST", f"{API}/uploads/complete", complete, "Complete a multipart upload"),
    Route("POST", f"{API}/manifests/uploads", manifest_upload, "A grant to store a manifest"),
    Route("GET", f"{API}/manifests", manifest_download, "A URL that reads a manifest"),
    Route("POST", f"{API}/downloads", downloads, "URLs that read blobs"),
)
