"""artifact_manifest_v1 JSON, artifact digests and MD5 encodings, as W&B defines them."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
from typing import Any

import pytest

from artisync.errors import InvalidInputError, ManifestError
from artisync.manifest import (
    Manifest,
    ManifestEntry,
    artifact_digest,
    md5_b64_to_hex,
    md5_hex_to_b64,
)

HEADER = b"wandb-artifact-manifest-v1\n"


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def expected_digest(pairs: list[tuple[str, str]]) -> str:
    """The artifact digest computed straight from its definition, with hashlib."""
    text = "".join(f"{path}:{digest}\n" for path, digest in sorted(pairs))
    return hashlib.md5(HEADER + text.encode("utf-8")).hexdigest()


HELLO_B64 = "XUFAKrxLKna5cZ2REBfFkg=="  # base64 MD5 of b"hello"
HELLO_HEX = "5d41402abc4b2a76b9719d911017c592"


# --- artifact digest ------------------------------------------------------------------


def test_empty_manifest_digest_is_md5_of_the_header_alone() -> None:
    assert artifact_digest([]) == hashlib.md5(HEADER).hexdigest()
    assert Manifest().digest() == "64e7c61456b10382e2f3b571ac24b659"


@pytest.mark.parametrize(
    ("entries", "wandb_digest"),
    [
        # Values asserted by W&B's own test suite for the same content.
        ([("file1.txt", b"hello")], "a00c2239f036fb656c1dcbf9a32d89b4"),
        ([("great-file.txt", b"hello")], "585b9ada17797e37c9cbab391e69b8c5"),
        ([("subdir/file1.txt", b"hello")], "a757208d042e8627b2970d72a71bed5b"),
        (
            [("nest/nest/file3.txt", b"dude"), ("file1.txt", b"hello"), ("nest/file2.txt", b"my")],
            "72414374bfd4b0f60a116e7267845f71",
        ),
    ],
)
def test_artifact_digest_matches_wandb_for_the_same_files(
    entries: list[tuple[str, bytes]], wandb_digest: str
) -> None:
    manifest_entries = [ManifestEntry(p, b64_md5(data), len(data)) for p, data in entries]
    pairs = [(e.path, e.digest) for e in manifest_entries]
    assert artifact_digest(manifest_entries) == expected_digest(pairs) == wandb_digest


def test_artifact_digest_of_unchecksummed_reference_hashes_the_uri() -> None:
    uri = "ref://example.com/somefile.txt"
    entry = ManifestEntry("ref", uri, None, ref=uri)
    assert artifact_digest([entry]) == "410ade94865e89ebe1f593f4379ac228"


def test_artifact_digest_sorts_entries_by_path_whatever_the_input_order() -> None:
    entries = [
        ManifestEntry("b.txt", b64_md5(b"b"), 1),
        ManifestEntry("a/z.txt", b64_md5(b"z"), 1),
        ManifestEntry("a.txt", b64_md5(b"a"), 1),
    ]
    want = expected_digest([(e.path, e.digest) for e in entries])
    assert artifact_digest(entries) == want
    assert artifact_digest(reversed(entries)) == want


def test_artifact_digest_hashes_paths_with_spaces_and_non_ascii_as_utf8() -> None:
    path = "données d'entraînement/日本 語.txt"
    entry = ManifestEntry(path, b64_md5(b"x"), 1)
    raw = HEADER + f"{path}:{entry.digest}\n".encode()
    assert artifact_digest([entry]) == hashlib.md5(raw).hexdigest()


def test_artifact_digest_orders_paths_by_code_point_like_wandb_core() -> None:
    # Code-point order equals the UTF-8 byte order Go's sort uses: uppercase before
    # lowercase, ASCII before accented letters, BMP before astral characters.
    paths = ["z", "Z", "é", "a/b", "a-b", "日本", "\U0001f600", "\uffef"]
    entries = [ManifestEntry(p, b64_md5(p.encode()), 1) for p in paths]
    by_bytes = sorted(entries, key=lambda e: e.path.encode("utf-8"))
    raw = HEADER + b"".join(f"{e.path}:{e.digest}\n".encode() for e in by_bytes)
    assert artifact_digest(entries) == hashlib.md5(raw).hexdigest()


def test_artifact_digest_counts_only_paths_and_digests() -> None:
    plain = ManifestEntry("a.txt", HELLO_B64, 5)
    decorated = ManifestEntry(
        "a.txt", HELLO_B64, 999, ref="s3://b/a.txt", birth_artifact_id="QXJ0", extra={"etag": "x"}
    )
    assert artifact_digest([plain]) == artifact_digest([decorated])


def test_artifact_digest_of_many_entries_equals_one_shot_hash() -> None:
    entries = [
        ManifestEntry(f"dir/{i:06d}.bin", b64_md5(str(i).encode()), i) for i in range(10_001)
    ]
    assert artifact_digest(entries) == expected_digest([(e.path, e.digest) for e in entries])


# --- MD5 encodings --------------------------------------------------------------------


def test_md5_b64_to_hex_and_back_for_a_known_digest() -> None:
    assert hashlib.md5(b"hello").hexdigest() == HELLO_HEX
    assert md5_b64_to_hex(HELLO_B64) == HELLO_HEX
    assert md5_hex_to_b64(HELLO_HEX) == HELLO_B64


def test_md5_hex_to_b64_accepts_uppercase_hex() -> None:
    assert md5_hex_to_b64(HELLO_HEX.upper()) == HELLO_B64


@pytest.mark.parametrize(
    "bad", ["", "not base64!", "XUFAKrxLKna5cZ2REBfF", "aGVsbG8=", HELLO_HEX, HELLO_B64 + "AAAA"]
)
def test_md5_b64_to_hex_rejects_anything_but_16_bytes_of_base64(bad: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(repr(bad))):
        md5_b64_to_hex(bad)


@pytest.mark.parametrize("bad", ["", "5d41", HELLO_HEX + "00", "g" * 32, HELLO_B64, " " * 32])
def test_md5_hex_to_b64_rejects_anything_but_32_hex_digits(bad: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(repr(bad))):
        md5_hex_to_b64(bad)


# --- JSON shape -----------------------------------------------------------------------


def sample_manifest() -> Manifest:
    entries = [
        ManifestEntry("model.h5", HELLO_B64, 5, birth_artifact_id="QXJ0aWZhY3Q6MQ=="),
        ManifestEntry(
            "data/train.csv",
            "d41d8cd98f00b204e9800998ecf8427e",
            0,
            ref="s3://bucket/data/train.csv",
            extra={"etag": "d41d8cd98f00b204e9800998ecf8427e", "versionID": "v1"},
        ),
        ManifestEntry("raw", "gs://bucket/raw", None, ref="gs://bucket/raw"),
        ManifestEntry("dir with space/é.txt", b64_md5(b"x"), 1),
    ]
    return Manifest({e.path: e for e in entries})


def test_to_json_writes_the_artifact_manifest_v1_object_wandb_writes() -> None:
    assert sample_manifest().to_json() == {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {
            "data/train.csv": {
                "digest": "d41d8cd98f00b204e9800998ecf8427e",
                "ref": "s3://bucket/data/train.csv",
                "size": 0,
                "extra": {"etag": "d41d8cd98f00b204e9800998ecf8427e", "versionID": "v1"},
            },
            "dir with space/é.txt": {"digest": b64_md5(b"x"), "size": 1},
            "model.h5": {
                "digest": HELLO_B64,
                "size": 5,
                "birthArtifactID": "QXJ0aWZhY3Q6MQ==",
            },
            # W&B leaves `size` out when it is unknown (a reference without checksum).
            "raw": {"digest": "gs://bucket/raw", "ref": "gs://bucket/raw"},
        },
    }


def test_to_json_orders_keys_like_the_manifest_wandb_uploads() -> None:
    data = sample_manifest().to_json()
    assert list(data) == ["version", "storagePolicy", "storagePolicyConfig", "contents"]
    assert list(data["contents"]) == ["data/train.csv", "dir with space/é.txt", "model.h5", "raw"]
    assert list(data["contents"]["data/train.csv"]) == ["digest", "ref", "size", "extra"]
    assert list(data["contents"]["model.h5"]) == ["digest", "size", "birthArtifactID"]


def test_equal_manifests_serialize_to_equal_bytes_whatever_the_insertion_order() -> None:
    manifest = sample_manifest()
    reordered = Manifest(dict(reversed(list(manifest.entries.items()))))
    assert json.dumps(manifest.to_json()) == json.dumps(reordered.to_json())


def test_to_json_writes_storage_region_and_omits_an_unset_layout() -> None:
    assert Manifest(storage_region="coreweave-us").to_json()["storagePolicyConfig"] == {
        "storageLayout": "V2",
        "storageRegion": "coreweave-us",
    }
    assert Manifest(storage_layout=None).to_json()["storagePolicyConfig"] == {}


def test_to_json_output_does_not_alias_entry_extra() -> None:
    manifest = sample_manifest()
    manifest.to_json()["contents"]["data/train.csv"]["extra"]["etag"] = "changed"
    assert manifest.entries["data/train.csv"].extra["etag"] == "d41d8cd98f00b204e9800998ecf8427e"


# --- reading JSON ---------------------------------------------------------------------


def test_json_round_trip_preserves_entries_config_and_digest() -> None:
    manifest = sample_manifest()
    manifest.storage_region = "us-east-1"
    text = json.dumps(manifest.to_json())
    again = Manifest.from_json(json.loads(text))
    assert again == manifest
    assert again.digest() == manifest.digest()
    assert json.dumps(again.to_json()) == text


def test_from_json_reads_the_manifest_wandb_core_uploads() -> None:
    # wandb-core's uploader writes `size` always, and keeps `local_path` and
    # `skip_cache`; those two are client-side state and are dropped.
    data = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {
            "file1.txt": {
                "digest": HELLO_B64,
                "size": 5,
                "local_path": "/home/u/.cache/wandb/artifacts/obj/md5/5d/41402abc",
                "birthArtifactID": "QXJ0aWZhY3Q6MTIz",
                "skip_cache": False,
            },
            "ref": {"digest": "ref://x/y", "ref": "ref://x/y", "size": 0, "skip_cache": False},
        },
    }
    manifest = Manifest.from_json(data)
    assert manifest.entries["file1.txt"] == ManifestEntry(
        "file1.txt", HELLO_B64, 5, birth_artifact_id="QXJ0aWZhY3Q6MTIz"
    )
    assert manifest.entries["ref"] == ManifestEntry("ref", "ref://x/y", 0, ref="ref://x/y")
    assert manifest.digest() == expected_digest([("file1.txt", HELLO_B64), ("ref", "ref://x/y")])


def test_from_json_reads_nulls_and_missing_optional_keys_as_unset() -> None:
    data = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": None},
        "contents": {
            "a": {"digest": "d", "size": None, "ref": None, "birthArtifactID": None},
            "b": {"digest": "d", "extra": {}},
        },
    }
    manifest = Manifest.from_json(data)
    assert manifest.storage_layout is None
    assert manifest.entries["a"] == ManifestEntry("a", "d", None)
    assert manifest.entries["b"] == ManifestEntry("b", "d", None)
    assert manifest.to_json()["contents"] == {"a": {"digest": "d"}, "b": {"digest": "d"}}


def test_from_json_reads_a_v1_storage_layout_and_an_empty_config() -> None:
    data = sample_manifest().to_json()
    data["storagePolicyConfig"] = {"storageLayout": "V1"}
    assert Manifest.from_json(data).storage_layout == "V1"
    data["storagePolicyConfig"] = {}
    assert Manifest.from_json(data).storage_layout is None


def test_from_json_copies_extra_so_later_changes_to_the_input_do_not_leak() -> None:
    data = sample_manifest().to_json()
    manifest = Manifest.from_json(data)
    data["contents"]["data/train.csv"]["extra"]["etag"] = "changed"
    assert manifest.entries["data/train.csv"].extra["etag"] != "changed"


def _valid() -> dict[str, Any]:
    return {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"a.txt": {"digest": HELLO_B64, "size": 5}},
    }


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(_valid())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _without(*path: str) -> dict[str, Any]:
    data = copy.deepcopy(_valid())
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


def _with_entry(path: Any, entry: Any = None) -> dict[str, Any]:
    data = _valid()
    data["contents"] = {path: {"digest": HELLO_B64} if entry is None else entry}
    return data


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ([], "must be a JSON object"),
        (_without("version"), "'version'"),
        (_without("storagePolicy"), "'storagePolicy'"),
        (_without("storagePolicyConfig"), "'storagePolicyConfig'"),
        (_without("contents"), "'contents'"),
        (_with(("extraKey",), 1), "'extraKey'"),
        (_with(("version",), 2), "'version'"),
        (_with(("version",), "1"), "'version'"),
        (_with(("version",), True), "'version'"),
        (_with(("storagePolicy",), "s3-policy"), "'storagePolicy'"),
        (_with(("storagePolicyConfig",), None), "'storagePolicyConfig'"),
        (_with(("storagePolicyConfig", "storageLayout"), "V3"), "storageLayout"),
        (_with(("storagePolicyConfig", "storageRegion"), ""), "storageRegion"),
        (_with(("storagePolicyConfig", "bucket"), "b"), "'bucket'"),
        (_with(("contents",), []), "'contents'"),
        (_with(("contents", "a.txt"), "digest"), "'a.txt'"),
        (_without("contents", "a.txt", "digest"), "'digest'"),
        (_with(("contents", "a.txt", "digest"), ""), "'digest'"),
        (_with(("contents", "a.txt", "digest"), 5), "'digest'"),
        (_with(("contents", "a.txt", "size"), -1), "'size'"),
        (_with(("contents", "a.txt", "size"), "5"), "'size'"),
        (_with(("contents", "a.txt", "size"), 5.0), "'size'"),
        (_with(("contents", "a.txt", "size"), True), "'size'"),
        (_with(("contents", "a.txt", "ref"), ""), "'ref'"),
        (_with(("contents", "a.txt", "ref"), 1), "'ref'"),
        (_with(("contents", "a.txt", "birthArtifactID"), 7), "'birthArtifactID'"),
        (_with(("contents", "a.txt", "extra"), ["etag"]), "'extra'"),
        (_with(("contents", "a.txt", "extra"), None), "'extra'"),
        (_with(("contents", "a.txt", "md5"), "x"), "'md5'"),
        (_with(("contents", "a.txt", "skip_cache"), "no"), "'skip_cache'"),
        (_with(("contents", "a.txt", "local_path"), 3), "'local_path'"),
    ],
)
def test_from_json_rejects_malformed_manifests_naming_the_key(data: Any, named: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(named)):
        Manifest.from_json(data)


@pytest.mark.parametrize(
    "path",
    ["", ".", "../x", "a/../../x", "a/../b", "/abs", "C:x", "C:\\x", "a\x00b", "./a", "a//b", "a/"],
)
def test_from_json_rejects_entry_paths_that_are_not_clean_relative_paths(path: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(repr(path))):
        Manifest.from_json(_with_entry(path))


def test_from_json_names_the_canonical_form_of_an_unclean_path() -> None:
    with pytest.raises(ManifestError, match="should be 'a/b'"):
        Manifest.from_json(_with_entry("./a//b"))


def test_manifest_errors_are_invalid_input_errors() -> None:
    with pytest.raises(InvalidInputError):
        Manifest.from_json({})


# --- entries --------------------------------------------------------------------------


def test_manifest_entries_are_immutable() -> None:
    entry = ManifestEntry("a.txt", HELLO_B64, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.digest = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.extra["etag"] = "x"  # type: ignore[index]


def test_manifest_entries_carry_no_per_instance_dict() -> None:
    entry = ManifestEntry("a.txt", HELLO_B64, 5)
    assert not hasattr(entry, "__dict__")


def test_equal_entries_hash_equal_even_with_extra() -> None:
    one = ManifestEntry("a", "d", 1, ref="s3://b/a", extra={"etag": "e"})
    two = ManifestEntry("a", "d", 1, ref="s3://b/a", extra={"etag": "e"})
    assert one == two
    assert hash(one) == hash(two)


def test_entry_repr_shows_only_the_fields_that_are_set() -> None:
    assert repr(ManifestEntry("a.txt", "d", 5)) == "ManifestEntry(path='a.txt', digest='d', size=5)"
    ref = ManifestEntry("r", "e", None, ref="s3://b/r", extra={"etag": "e"})
    assert repr(ref) == (
        "ManifestEntry(path='r', digest='e', size=None, ref='s3://b/r', extra={'etag': 'e'})"
    )


def test_manifest_size_sums_the_known_sizes() -> None:
    assert sample_manifest().size() == 5 + 0 + 1
    assert len(sample_manifest()) == 4
