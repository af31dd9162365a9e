"""Artifact manifests in W&B's ``artifact_manifest_v1`` format, and artifact digests.

A manifest lists an artifact version's entries: for each path inside the artifact, the
digest of its content (base64 of the raw MD5) or, for a reference, the URI it points
to. :class:`Manifest` reads and writes the JSON W&B keeps as ``wandb_manifest.json``;
:func:`artifact_digest` is the digest W&B gives the whole version, which decides
whether logging the same content again makes a new version.

The format comes from W&B's ``artifact_manifest_v1.py``, ``artifact_manifest_entry.py``
and ``_models/storage.py`` (``wandb/sdk/artifacts/``) and from ``core/pkg/artifacts/
manifest.go``, which writes the file W&B uploads. A manifest may hold a million
entries, so entries are small slotted objects and are checked only where JSON comes in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import Any, Final

from artisync.errors import InvalidInputError, ManifestError
from artisync.names import normalize_entry_path

__all__ = [
    "DIGEST_HEADER",
    "MANIFEST_VERSION",
    "STORAGE_LAYOUTS",
    "STORAGE_POLICY",
    "Manifest",
    "ManifestEntry",
    "artifact_digest",
    "entry_json",
    "md5_b64_to_hex",
    "md5_hex_to_b64",
]

MANIFEST_VERSION: Final = 1
"""The ``version`` of an ``artifact_manifest_v1`` manifest."""

STORAGE_POLICY: Final = "wandb-storage-policy-v1"
"""The only ``storagePolicy`` W&B defines."""

STORAGE_LAYOUTS: Final = ("V1", "V2")
"""Values W&B allows for ``storagePolicyConfig.storageLayout``."""

DIGEST_HEADER: Final = b"wandb-artifact-manifest-v1\n"

# Entries hashed per `update` call: one join per batch instead of one call per entry,
# without building a single string the size of a million-entry manifest.
_DIGEST_BATCH: Final = 4096

# Every entry without `extra` shares this one read-only mapping, so a million plain
# files cost no million empty dicts.
_NO_EXTRA: Final[Mapping[str, Any]] = MappingProxyType({})


def _no_extra() -> Mapping[str, Any]:
    return _NO_EXTRA


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One path of an artifact version: where its content is and how to check it.

    Attributes:
        path: The entry's path inside the artifact, ``/``-separated, as
            :func:`artisync.names.normalize_entry_path` returns it.
        digest: Base64 of the raw MD5 of the content; for a reference, the digest its
            store reports (e.g. an ETag), or the URI itself when added with
            ``checksum=False``.
        size: Size in bytes; ``None`` when unknown (a reference without checksum).
        ref: The URI a reference entry points to; ``None`` for content artisync stores.
        birth_artifact_id: The id of the artifact version that first stored this
            content, which W&B records for each uploaded file.
        extra: Store-specific facts about a reference, e.g. ``etag`` and ``versionID``.
    """

    path: str
    digest: str
    size: int | None
    ref: str | None = None
    birth_artifact_id: str | None = None
    # Left out of the hash (not of equality) so entries stay hashable: dicts are not.
    extra: Mapping[str, Any] = field(default_factory=_no_extra, hash=False)

    def __repr__(self) -> str:
        # Only the fields that are set, as W&B shows entries; most have no ref or extra.
        shown = [f"path={self.path!r}", f"digest={self.digest!r}", f"size={self.size!r}"]
        if self.ref is not None:
            shown.append(f"ref={self.ref!r}")
        if self.birth_artifact_id is not None:
            shown.append(f"birth_artifact_id={self.birth_artifact_id!r}")
        if self.extra:
            shown.append(f"extra={dict(self.extra)!r}")
        return f"ManifestEntry({', '.join(shown)})"


@dataclass(slots=True)
class Manifest:
    """The entries of one artifact version, keyed by path, with W&B's storage config.

    ``entries`` maps each entry's ``path`` to the entry; keeping the two equal is the
    caller's job (:meth:`from_json` guarantees it for what it reads).

    Attributes:
        entries: The entries, keyed by path.
        storage_layout: ``storagePolicyConfig.storageLayout``: ``"V2"`` (what W&B
            writes today), ``"V1"``, or ``None`` for a manifest that had none.
        storage_region: ``storagePolicyConfig.storageRegion``, when set.
    """

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    storage_layout: str | None = "V2"
    storage_region: str | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def digest(self) -> str:
        """The artifact digest of these entries; see :func:`artifact_digest`."""
        return artifact_digest(self.entries.values())

    def size(self) -> int:
        """Total size in bytes of the entries whose size is known."""
        return sum(entry.size for entry in self.entries.values() if entry.size)

    def to_json(self) -> dict[str, Any]:
        """Return the manifest as the ``artifact_manifest_v1`` JSON object W&B writes.

        Entries come sorted by path, as in the file W&B uploads, so equal manifests
        serialize to equal bytes. Each entry has ``digest``; ``ref``, ``size``,
        ``birthArtifactID`` and ``extra`` only when set (``size`` is left out when
        unknown, as W&B's Python SDK does).
        """
        config: dict[str, Any] = {}
        if self.storage_layout is not None:
            config["storageLayout"] = self.storage_layout
        if self.storage_region is not None:
            config["storageRegion"] = self.storage_region
        contents = {
            path: entry_json(entry)
            for path, entry in sorted(self.entries.items(), key=itemgetter(0))
        }
        return {
            "version": MANIFEST_VERSION,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": config,
            "contents": contents,
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Read an ``artifact_manifest_v1`` JSON object (as ``json.load`` returns it).

        Accepts what W&B writes, including the client-side entry keys its uploader
        leaves in (``local_path``, ``skip_cache``), which are checked and dropped.
        Anything else is rejected: another version or storage policy, a missing,
        unknown or mistyped key, or an entry path that is not already in the form
        :func:`artisync.names.normalize_entry_path` gives.

        Raises:
            ManifestError: naming the offending key or entry path and what was expected.
        """
        if not isinstance(data, dict):
            raise _manifest_error("the manifest", "must be a JSON object", data)
        _check_keys(data, _TOP_KEYS, "the manifest", required=_TOP_KEYS)
        version = data["version"]
        if type(version) is not int or version != MANIFEST_VERSION:
            raise _manifest_error(
                "'version'", f"must be {MANIFEST_VERSION} (artifact_manifest_v1)", version
            )
        policy = data["storagePolicy"]
        if policy != STORAGE_POLICY:
            raise _manifest_error("'storagePolicy'", f"must be {STORAGE_POLICY!r}", policy)
        layout, region = _read_policy_config(data["storagePolicyConfig"])
        contents = data["contents"]
        if not isinstance(contents, dict):
            raise _manifest_error("'contents'", "must be a JSON object", contents)
        entries = {path: _read_entry(path, item) for path, item in contents.items()}
        return cls(entries=entries, storage_layout=layout, storage_region=region)


def entry_json(entry: ManifestEntry) -> dict[str, Any]:
    """One entry's object in ``contents``: ``digest``, then ``ref``, ``size``,
    ``birthArtifactID`` and ``extra`` when set, in the order W&B writes them."""
    item: dict[str, Any] = {"digest": entry.digest}
    if entry.ref is not None:
        item["ref"] = entry.ref
    if entry.size is not None:
        item["size"] = entry.size
    if entry.birth_artifact_id is not None:
        item["birthArtifactID"] = entry.birth_artifact_id
    if entry.extra:
        item["extra"] = dict(entry.extra)
    return item


def artifact_digest(entries: Iterable[ManifestEntry]) -> str:
    """Return the artifact digest W&B computes for a version with these entries.

    It is the hex MD5 of ``"wandb-artifact-manifest-v1\\n"`` followed by
    ``"{path}:{digest}\\n"`` (UTF-8) for each entry in order of path. Only paths and
    digests count: sizes, references and ``extra`` do not. Paths are expected to be
    unique, as they are in a :class:`Manifest`.
    """
    ordered = sorted(entries, key=attrgetter("path"))
    hasher = hashlib.md5(DIGEST_HEADER, usedforsecurity=False)
    for start in range(0, len(ordered), _DIGEST_BATCH):
        batch = ordered[start : start + _DIGEST_BATCH]
        hasher.update("".join([f"{e.path}:{e.digest}\n" for e in batch]).encode("utf-8"))
    return hasher.hexdigest()


def md5_b64_to_hex(b64: str) -> str:
    """Turn an MD5 digest from base64 (manifest form) into lowercase hex (store form).

    Raises:
        InvalidInputError: if ``b64`` is not the base64 of exactly 16 bytes.
    """
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        raise InvalidInputError(
            f"Invalid MD5 digest {b64!r}: expected the base64 of 16 bytes "
            "(24 characters ending in '==')"
        )
    return raw.hex()


def md5_hex_to_b64(hex_digest: str) -> str:
    """Turn an MD5 digest from hex (either case) into base64 (manifest form).

    Raises:
        InvalidInputError: if ``hex_digest`` is not 32 hexadecimal digits.
    """
    try:
        raw = bytes.fromhex(hex_digest) if len(hex_digest) == 32 else b""
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        raise InvalidInputError(
            f"Invalid MD5 digest {hex_digest!r}: expected 32 hexadecimal digits"
        )
    return base64.b64encode(raw).decode("ascii")


# --- reading JSON -------------------------------------------------------------------

_TOP_KEYS: Final = frozenset({"version", "storagePolicy", "storagePolicyConfig", "contents"})
_CONFIG_KEYS: Final = frozenset({"storageLayout", "storageRegion"})
_ENTRY_REQUIRED: Final = frozenset({"digest"})
# `local_path` and `skip_cache` are upload-side state that wandb-core leaves in the
# manifest it uploads; accepted so W&B's own manifests read, and then dropped.
_ENTRY_KEYS: Final = frozenset(
    {"digest", "ref", "size", "birthArtifactID", "extra", "local_path", "skip_cache"}
)


def _manifest_error(where: str, rule: str, value: Any) -> ManifestError:
    return ManifestError(f"Invalid artifact manifest: {where} {rule}, got {value!r}")


def _check_keys(
    obj: dict[Any, Any], allowed: frozenset[str], where: str, required: frozenset[str]
) -> None:
    if missing := required - obj.keys():
        names = ", ".join(repr(k) for k in sorted(missing))
        raise ManifestError(f"Invalid artifact manifest: {where} is missing the key(s) {names}")
    if unknown := obj.keys() - allowed:
        names = ", ".join(repr(k) for k in sorted(unknown, key=str))
        known = ", ".join(repr(k) for k in sorted(allowed))
        raise ManifestError(
            f"Invalid artifact manifest: {where} has unknown key(s) {names}; allowed are {known}"
        )


def _read_policy_config(config: Any) -> tuple[str | None, str | None]:
    where = "'storagePolicyConfig'"
    if not isinstance(config, dict):
        raise _manifest_error(where, "must be a JSON object", config)
    _check_keys(config, _CONFIG_KEYS, where, required=frozenset())
    # W&B reads null as "not set" for both keys.
    layout = config.get("storageLayout")
    if layout is not None and layout not in STORAGE_LAYOUTS:
        raise _manifest_error(
            "'storagePolicyConfig.storageLayout'", f"must be one of {STORAGE_LAYOUTS}", layout
        )
    region = config.get("storageRegion")
    if region is not None and not (isinstance(region, str) and region.strip()):
        raise _manifest_error(
            "'storagePolicyConfig.storageRegion'", "must be a non-empty string", region
        )
    return layout, region


def _read_entry(path: Any, item: Any) -> ManifestEntry:
    where = f"'contents'[{path!r}]"
    try:
        clean = normalize_entry_path(path)
    except InvalidInputError as exc:
        raise ManifestError(f"Invalid artifact manifest: entry path in 'contents': {exc}") from None
    if clean != path:
        raise ManifestError(
            f"Invalid artifact manifest: entry path {path!r} in 'contents' is not in "
            f"canonical form; it should be {clean!r}"
        )
    if not isinstance(item, dict):
        raise _manifest_error(where, "must be a JSON object", item)
    # A cheap test for the common case; _check_keys then says which key is wrong.
    if not item.keys() <= _ENTRY_KEYS or "digest" not in item:
        _check_keys(item, _ENTRY_KEYS, where, required=_ENTRY_REQUIRED)

    digest = item["digest"]
    if not isinstance(digest, str) or not digest:
        raise _manifest_error(f"{where}['digest']", "must be a non-empty string", digest)
    size = item.get("size")
    if size is not None and (type(size) is not int or size < 0):
        raise _manifest_error(f"{where}['size']", "must be a non-negative integer", size)
    ref = item.get("ref")
    if ref is not None and (not isinstance(ref, str) or not ref):
        raise _manifest_error(f"{where}['ref']", "must be a non-empty string", ref)
    birth = item.get("birthArtifactID")
    if birth is not None and (not isinstance(birth, str) or not birth):
        raise _manifest_error(f"{where}['birthArtifactID']", "must be a non-empty string", birth)
    extra: Mapping[str, Any] = _NO_EXTRA
    if "extra" in item:
        raw_extra = item["extra"]
        if not isinstance(raw_extra, dict) or not all(isinstance(k, str) for k in raw_extra):
            raise _manifest_error(
                f"{where}['extra']", "must be a JSON object with string keys", raw_extra
            )
        if raw_extra:
            # A copy, so later changes to the caller's JSON do not reach the entry.
            extra = dict(raw_extra)
    if "local_path" in item and not isinstance(item["local_path"], str | None):
        raise _manifest_error(f"{where}['local_path']", "must be a string", item["local_path"])
    if "skip_cache" in item and not isinstance(item["skip_cache"], bool):
        raise _manifest_error(f"{where}['skip_cache']", "must be true or false", item["skip_cache"])
    return ManifestEntry(path, digest, size, ref, birth, extra)
