"""The check every fault test ends with: nothing lost, nothing doubled, order kept,
every byte where the manifests say.

A test records what it logged (:class:`Logged`), lets the daemon finish, and calls
:func:`check_consistency`. It checks, from the outside (spool files, a read-only
registry, downloads through the SDK):

- each submission finished exactly once: a receipt in ``done/`` or an error file in
  ``failed/`` with a reason, never both, nothing of it left in ``tmp/``, ``new/``,
  ``work/`` or ``staging/``; those made to be rejected were, the others committed;
- the registry agrees with the receipts, and a rejected submission took no version;
- every version of the collections involved came from exactly one logged
  submission, numbered without gaps;
- order: within a collection, submissions logged one after another (by their
  ``index``, and by wall clock when known) got increasing version numbers, and each
  version's ``metadata["index"]`` is that of its submission;
- every version downloads through the SDK (which checks each blob's MD5 as it places
  it), and the files re-hash to the manifest's digests, whose artifact digest is the
  version's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import artisync
from artisync.config import Config
from artisync.errors import NotFoundError
from artisync.manifest import Manifest
from artisync.registry import SqliteRegistry, Version
from artisync.sdk.manifest_view import read_committed_manifest
from artisync.spool import Spool
from artisync.store import LocalStore, open_store
from artisync.store.base import blob_key
from daemon_harness import wait_for
from remote_versions import point_sdk_at


@dataclass(frozen=True, slots=True)
class Logged:
    """One submission a test made, and what it expects of it.

    ``index`` is its place in its artifact's log order (also logged as
    ``metadata["index"]``), ``None`` if it has none. ``started_ns`` and
    ``returned_ns`` bracket the ``log_artifact`` call (0: not recorded). ``bad``: made
    to be rejected.
    """

    sub_id: str
    project: str
    name: str
    index: int | None = None
    started_ns: int = 0
    returned_ns: int = 0
    bad: bool = False

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Logged:
        """One line of a client's record (see :func:`record_line`)."""
        return cls(**obj)


def record_line(logged: Logged) -> str:
    """A JSON line a client process writes for each submission it logged."""
    return json.dumps(
        {
            "sub_id": logged.sub_id,
            "project": logged.project,
            "name": logged.name,
            "index": logged.index,
            "started_ns": logged.started_ns,
            "returned_ns": logged.returned_ns,
            "bad": logged.bad,
        }
    )


@dataclass(slots=True)
class Outcome:
    """What the check found: committed versions by submission, rejection reasons."""

    versions: dict[str, Version] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def check_consistency(
    home: Path,
    logged: Sequence[Logged],
    download_root: Path,
    *,
    store_url: str | None = None,
    spool_root: Path | None = None,
) -> Outcome:
    """Fail (``AssertionError``) unless the daemon's work on ``home`` is consistent.

    ``store_url`` is the daemon's ``--store`` when it is not the home's default (the
    SDK is pointed at it to download). Call it once the daemon has finished every
    submission (e.g. after :func:`daemon_harness.result_of` for each).
    """
    config = Config.load(home)
    spool = Spool(spool_root or config.spool)
    ids = [item.sub_id for item in logged]
    assert len(set(ids)) == len(ids), "a submission id was logged twice"
    outcome = Outcome()
    results = {item.sub_id: _spool_result(spool, item) for item in logged}
    try:
        wait_for(lambda: not _leftovers(spool, set(ids)), 10.0, "the spool to empty")
    except AssertionError as e:
        left = _leftovers(spool, set(ids))
        inside = [str(p) for name in left for p in spool.folder("staging").glob(f"{name}/**/*")]
        raise AssertionError(f"{e}: left {left}, holding {inside}") from None
    with SqliteRegistry(config.registry, read_only=True) as registry:
        for item in logged:
            result = results[item.sub_id]
            committed = registry.submission_result(item.sub_id)
            if result["status"] == "rejected":
                assert item.bad, f"{item} was rejected: {result['reason']}"
                assert committed is None, f"rejected {item.sub_id} has version {committed}"
                outcome.reasons[item.sub_id] = result["reason"]
                continue
            assert not item.bad, f"{item} was made to be rejected but committed: {result}"
            assert committed is not None, f"{item.sub_id} has a receipt but no registry record"
            version = committed.version
            assert (result["version_id"], result["digest"]) == (version.id, version.digest)
            outcome.versions[item.sub_id] = version
        collections = {(item.project, item.name) for item in logged}
        listed = {key: _versions(registry, *key) for key in collections}
    _check_exactly_once(logged, outcome, listed)
    _check_order(logged, outcome)
    if store_url is not None:
        point_sdk_at(home, store_url)
    _check_blobs(home, [v for versions in listed.values() for v in versions], download_root)
    return outcome


def _versions(registry: SqliteRegistry, project: str, name: str) -> list[Version]:
    try:
        return registry.list_versions(project, name)
    except NotFoundError:  # every submission of it was rejected
        return []


def _spool_result(spool: Spool, item: Logged) -> dict[str, Any]:
    """The one result the spool holds for ``item``: a receipt or a rejection."""
    done = list(spool.folder("done").glob(f"*-{item.sub_id}.json"))
    errors = list(spool.folder("failed").glob(f"*-{item.sub_id}.error.json"))
    assert len(done) + len(errors) == 1, f"{item}: receipts {done}, rejections {errors}"
    if done:
        receipt = dict(json.loads(done[0].read_bytes()))
        assert receipt["status"] == "committed" and receipt["id"] == item.sub_id, receipt
        return receipt
    error = dict(json.loads(errors[0].read_bytes()))
    assert error["status"] == "rejected" and error["id"] == item.sub_id, error
    assert isinstance(error.get("reason"), str) and error["reason"].strip(), error
    submission = errors[0].with_name(errors[0].name.replace(".error.json", ".json"))
    wait_for(submission.exists, what=f"the rejected submission {submission} in failed/")
    return error


# <seq>-<id> at the start of any spool file of a submission (its journals, scratch files).
_SUBMISSION_FILE = re.compile(r"[0-9.]+-([0-9a-f]{32})\.")


def _named_id(name: str) -> str | None:
    """The submission id a spool file's name carries, if any."""
    match = _SUBMISSION_FILE.match(name)
    return match.group(1) if match else None


def _leftovers(spool: Spool, ids: set[str]) -> list[str]:
    """What is left of finished submissions where only unfinished ones belong."""
    left = [
        p.name
        for folder in ("tmp", "new", "work")
        for p in spool.folder(folder).iterdir()
        if _named_id(p.name) in ids or p.name.removesuffix(".json") in ids
    ]
    left += [p.name for p in spool.folder("staging").iterdir() if p.name.split(".")[0] in ids]
    return left


def _check_exactly_once(
    logged: Sequence[Logged], outcome: Outcome, listed: dict[tuple[str, str], list[Version]]
) -> None:
    by_collection: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in logged:
        if item.sub_id in outcome.versions:
            by_collection[(item.project, item.name)].append(item.sub_id)
    for key, versions in listed.items():
        mine = [outcome.versions[sub_id].id for sub_id in by_collection[key]]
        assert len(set(mine)) == len(mine), f"{key}: two submissions share a version"
        assert sorted(mine) == sorted(v.id for v in versions), (
            f"{key}: versions {[v.version for v in versions]} are not one per committed "
            f"submission ({len(mine)})"
        )
        indices = sorted(v.index for v in versions)
        assert indices == list(range(len(indices))), f"{key}: version numbers {indices}"


def _check_order(logged: Sequence[Logged], outcome: Outcome) -> None:
    by_collection: dict[tuple[str, str], list[Logged]] = defaultdict(list)
    for item in logged:
        if item.sub_id in outcome.versions:
            by_collection[(item.project, item.name)].append(item)
    for key, items in by_collection.items():
        numbered = sorted(items, key=lambda i: outcome.versions[i.sub_id].index)
        indexed = [i.index for i in numbered if i.index is not None]
        assert indexed == sorted(indexed), f"{key}: versions in log order {indexed}"
        for item in numbered:
            metadata = outcome.versions[item.sub_id].metadata
            if item.index is not None:
                assert metadata.get("index") == item.index, (item, metadata)
        timed = [i for i in numbered if i.returned_ns]
        for earlier_pos, a in enumerate(timed):
            for b in timed[:earlier_pos]:
                # b has the lower version: it must not have started after a returned.
                assert not a.returned_ns < b.started_ns, (
                    f"{key}: {a.sub_id} returned before {b.sub_id} was logged, yet got "
                    f"{outcome.versions[a.sub_id].version} after "
                    f"{outcome.versions[b.sub_id].version}"
                )


def _check_blobs(home: Path, versions: list[Version], download_root: Path) -> None:
    """The newest version of each collection through the SDK's download, then every
    blob of every version, each fetched once, against its manifest."""
    api = artisync.Api(home=home)
    newest: dict[tuple[str, str], Version] = {}
    for version in versions:
        key = (version.project, version.name)
        if key not in newest or version.index > newest[key].index:
            newest[key] = version
    for version in newest.values():
        root = download_root / f"{version.project}-{version.name}-{version.version}"
        api.artifact(f"{version.project}/{version.name}:{version.version}").download(root)
        manifest = read_committed_manifest(Config.load(home).store, version.manifest_key, home)
        for path, entry in manifest.entries.items():
            data = (root / path).read_bytes()
            assert (_md5_b64(data), len(data)) == (entry.digest, entry.size), (version, path)
        shutil.rmtree(root)
    asyncio.run(_check_every_blob(home, versions, download_root / "blobs"))


async def _check_every_blob(home: Path, versions: list[Version], scratch: Path) -> None:
    store = open_store(Config.load(home).store, home)
    blobs: dict[str, tuple[int | None, str]] = {}
    try:
        for version in versions:
            manifest = Manifest.from_json(
                json.loads(await store.get_manifest(version.manifest_key))
            )
            what = f"{version.project}/{version.name}:{version.version}"
            assert manifest.digest() == version.digest, f"{what}: manifest digest"
            for path, entry in manifest.entries.items():
                if entry.ref is None:
                    blobs.setdefault(
                        base64.b64decode(entry.digest).hex(), (entry.size, f"{what} {path}")
                    )
        scratch.mkdir(parents=True, exist_ok=True)
        slots = asyncio.Semaphore(16)

        async def check(md5_hex: str, size: int | None, what: str) -> None:
            if isinstance(store, LocalStore):
                data = (store.root / blob_key(md5_hex)).read_bytes()
            else:
                dest = scratch / md5_hex
                async with slots:
                    await store.get_blob(md5_hex, dest)  # type: ignore[attr-defined]
                data = dest.read_bytes()
                dest.unlink()
            assert hashlib.md5(data).hexdigest() == md5_hex, f"{what}: blob {md5_hex} corrupt"
            assert size is None or len(data) == size, f"{what}: blob {md5_hex} size"

        await asyncio.gather(*(check(h, size, what) for h, (size, what) in blobs.items()))
    finally:
        await store.close()


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()
