"""VersionEntries: the compact entries write the very bytes and digest Manifest does."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artisync.daemon.expand import Item
from artisync.daemon.version_entries import DuplicatePathError, PathConflictError, VersionEntries
from artisync.manifest import Manifest, ManifestEntry
from artisync.store import LocalStore


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _reference_json(items: list[Item]) -> tuple[str, bytes]:
    manifest = Manifest(
        {
            item.path: ManifestEntry(
                item.path, item.digest or "", item.size, ref=item.ref, extra=item.extra
            )
            for item in items
        }
    )
    return manifest.digest(), json.dumps(manifest.to_json(), separators=(",", ":")).encode()


_path_part = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in {".", ".."})
_paths = st.lists(_path_part, min_size=1, max_size=3).map("/".join)


def _no_file_is_a_directory(paths: list[str]) -> bool:
    """A manifest cannot hold both ``a`` and ``a/b`` (the daemon refuses that version)."""
    directories = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    directories |= {d.rsplit("/", 1)[0] for d in directories if "/" in d}
    return not directories & set(paths)


@st.composite
def _item(draw: st.DrawFn, path: str) -> Item:
    kind = draw(st.sampled_from(["plain", "reference", "uri", "odd_digest"]))
    if kind == "plain":
        size = draw(st.integers(0, 2**40))
        return Item(path, "/src", size, digest=_md5_b64(path.encode()))
    if kind == "reference":
        extra = draw(st.dictionaries(st.sampled_from(["etag", "versionID"]), st.text(max_size=5)))
        return Item(
            path,
            None,
            draw(st.none() | st.integers(0, 10**9)),
            digest=draw(st.text(min_size=1, max_size=30)),
            stored=False,
            ref=f"s3://bucket/{path}",
            extra=extra,
        )
    if kind == "uri":  # checksum=False: the digest is the URI, no size
        return Item(path, None, None, digest=f"s3://b/{path}", stored=False, ref=f"s3://b/{path}")
    # 24 characters that are base64 but not canonical: kept as written.
    return Item(path, "/src", 3, digest="AAAAAAAAAAAAAAAAAAAAAB==")


@given(
    st.lists(_paths, unique=True, max_size=40)
    .filter(_no_file_is_a_directory)
    .flatmap(lambda ps: st.tuples(*map(_item, ps)))
)
@settings(max_examples=200, deadline=None)
def test_manifest_bytes_and_digest_equal_manifest_to_json(items: tuple[Item, ...]) -> None:
    entries = VersionEntries()
    # Added in chunks, out of order: the manifest sorts.
    entries.add(items[::2])
    entries.add(items[1::2])
    digest, data = entries.manifest()
    assert (digest, bytes(data)) == _reference_json(list(items))
    assert len(entries) == len(items)
    assert sorted(entries.entries(), key=lambda e: e.path) == sorted(
        (ManifestEntry(i.path, i.digest or "", i.size, ref=i.ref, extra=i.extra) for i in items),
        key=lambda e: e.path,
    )


def test_empty_version_has_the_empty_manifest() -> None:
    assert VersionEntries().manifest() == _reference_json([])


def test_stored_bytes_count_content_not_references() -> None:
    entries = VersionEntries()
    entries.add([Item("a", "/a", 10, digest=_md5_b64(b"a"))])
    entries.add([Item("r", None, 99, digest="etag", stored=False, ref="s3://b/r")])
    assert entries.stored_bytes == 10


def test_two_entries_with_one_path_are_refused_by_name() -> None:
    entries = VersionEntries()
    entries.add([Item("x/a.txt", "/1", 1, digest=_md5_b64(b"1"))])
    entries.add([Item("x/a.txt", None, 1, digest="e", stored=False, ref="s3://b/a.txt")])
    with pytest.raises(
        DuplicatePathError, match=r"two entries of the artifact are named 'x/a.txt'"
    ):
        entries.manifest()


def test_the_manifest_written_to_a_file_is_the_one_built_in_memory(tmp_path: Path) -> None:
    entries = VersionEntries()
    entries.add([Item(f"d/{i:03d}", "/s", i, digest=_md5_b64(b"%d" % i)) for i in range(300)])
    entries.add([Item("r", None, 1, digest="e", stored=False, ref="s3://b/r", extra={"etag": "e"})])
    with open(tmp_path / "m.json", "wb") as f:
        digest = entries.write_manifest(f.write)
    in_memory_digest, in_memory = entries.manifest()
    assert (digest, (tmp_path / "m.json").read_bytes()) == (in_memory_digest, bytes(in_memory))


async def test_the_local_store_takes_a_manifest_from_a_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = b'{"version":1,"contents":{}}'
    (tmp_path / "m.json").write_bytes(data)
    key = await store.put_manifest_file("0" * 32, tmp_path / "m.json")
    assert key == await store.put_manifest("0" * 32, b"ignored: the first one stays")
    assert await store.get_manifest(key) == data


# Paths the core writes (ASCII, quotes, backslashes and control characters included).
_ascii_part = st.text(
    alphabet=st.characters(max_codepoint=127, blacklist_characters="/"), min_size=1, max_size=6
)
_ascii_paths = st.lists(_ascii_part, min_size=1, max_size=3).map("/".join)


def _written_in_python(entries: VersionEntries) -> tuple[str, bytes]:
    out = bytearray()
    return entries.write_manifest(out.extend), bytes(out)


@given(st.lists(st.lists(_ascii_paths, max_size=12), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_a_version_of_files_is_written_by_the_core_as_by_python(
    chunks: list[list[str]],
) -> None:
    entries = VersionEntries()
    for chunk in chunks:  # each chunk a run of its own, in no order
        entries.add([Item(p, "/s", len(p), digest=_md5_b64(p.encode())) for p in chunk])
    try:
        expected: tuple[str, bytes] | BaseException = _written_in_python(entries)
    except DuplicatePathError as e:
        expected = e
    try:
        digest, data = entries.manifest()
        got: tuple[str, bytes] | BaseException = (digest, bytes(data))
    except DuplicatePathError as e:
        got = e
    if isinstance(expected, BaseException):
        assert isinstance(got, BaseException), got
        assert (type(got), str(got)) == (type(expected), str(expected))
    else:
        assert got == expected


def test_a_file_that_is_also_a_directory_is_refused_by_the_core_by_name() -> None:
    entries = VersionEntries()
    entries.add([Item("a/b", "/1", 1, digest=_md5_b64(b"1"))])
    entries.add([Item("a", "/2", 1, digest=_md5_b64(b"2"))])
    with pytest.raises(PathConflictError, match=r"an entry 'a' and an entry 'a/b' inside"):
        entries.manifest()
