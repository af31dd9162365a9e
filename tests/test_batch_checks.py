"""Batch checks: a column of entries passes as a whole only where every entry would
pass its one-at-a-time check unchanged; anything else goes to those checks."""

from __future__ import annotations

import base64
import binascii
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from artisync.daemon.expand import Item, md5_hexes
from artisync.errors import InvalidInputError, SubmissionError
from artisync.names import normalize_entry_path
from artisync.spool import ArtifactInfo, StagedEntry, Submission
from artisync.spool.batch_checks import all_canonical_md5, all_normal_paths, all_staged_under

SUB_ID = "0123456789abcdef0123456789abcdef"

# Mostly what the checks turn on: separators, dots, drive letters, NUL, newlines.
_tricky = st.text(alphabet="ab./\\:\0\n\x7fé", max_size=12) | st.text(max_size=12)
_long = st.integers(250, 260).map(lambda n: "d/" + "x" * n)


def _normal_as_is(path: str) -> bool:
    try:
        return normalize_entry_path(path) == path
    except InvalidInputError:
        return False


@given(st.lists(_tricky | _long, max_size=4))
@settings(max_examples=1000, deadline=None)
def test_paths_pass_as_a_batch_only_if_each_is_already_normal(paths: list[str]) -> None:
    if all_normal_paths(paths):
        assert all(_normal_as_is(p) for p in paths)


def test_the_paths_the_sdk_writes_pass_as_a_batch() -> None:
    paths = [f"d{i // 100:03d}/f{i:05d}.bin" for i in range(1000)] + ["a b/.x/...", "~"]
    assert all_normal_paths(paths)
    for bad in ("", ".", "a/../b", "/a", "a//b", "./a", "a/", "C:x", "a\\b", "é", "a\0"):
        assert not all_normal_paths([*paths, bad]), bad


def _canonical(digest: str) -> bool:
    try:
        raw = binascii.a2b_base64(digest, strict_mode=True)
    except binascii.Error:
        return False
    return len(raw) == 16 and base64.b64encode(raw).decode() == digest


_digests = st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode())


@given(st.lists(_digests | st.text(alphabet="AQgw=+/\nab", max_size=26), max_size=3))
@settings(max_examples=1000, deadline=None)
def test_digests_pass_as_a_batch_only_if_each_is_canonical(digests: list[str]) -> None:
    if all_canonical_md5(digests):
        assert all(_canonical(d) for d in digests)
    elif all(_canonical(d) for d in digests):
        raise AssertionError(f"canonical digests refused: {digests}")


def _inside(staged: str) -> bool:  # daemon.expand's check of one snapshot, lexically
    parts = staged.split("/")
    return len(parts) >= 3 and parts[:2] == ["staging", SUB_ID] and not {"", ".", ".."} & set(parts)


@given(st.lists(st.text(alphabet="ab./\n", max_size=8).map(lambda s: f"staging/{SUB_ID}/{s}")))
@settings(max_examples=500, deadline=None)
def test_snapshots_pass_as_a_batch_only_if_each_is_inside_the_staging_area(
    staged: list[str],
) -> None:
    if all_staged_under(staged, SUB_ID):
        assert all(_inside(s) for s in staged)
    elif "\n" not in "".join(staged):
        assert not all(_inside(s) for s in staged)
    assert not all_staged_under([f"staging/{SUB_ID[::-1]}/a"], SUB_ID)


def _submission(entries: list[StagedEntry]) -> bytes:
    info = ArtifactInfo(name="tree", type="dataset")
    return Submission(SUB_ID, 1, "p", info, list(entries)).dumps()


def _fields(entry: StagedEntry) -> tuple[str, str, str, int]:
    return entry.path, entry.staged, entry.digest, entry.size


def _entry(i: int) -> StagedEntry:
    digest = base64.b64encode(hashlib.md5(b"%d" % i).digest()).decode()
    return StagedEntry(f"d/f{i}", f"staging/{SUB_ID}/t.d/d/f{i}", digest, i)


def test_a_submission_read_as_a_batch_is_the_one_read_entry_by_entry() -> None:
    entries = [_entry(i) for i in range(50)]
    batch = Submission.loads(_submission(entries))
    # One path not in normal form sends every entry down the one-at-a-time checks.
    odd = [*entries[:-1], StagedEntry("./d//f49", *_fields(entries[-1])[1:])]
    one_by_one = Submission.loads(_submission(odd))
    assert batch == one_by_one
    assert batch.entries == entries


def test_a_bad_entry_among_many_is_named_as_before() -> None:
    entries = [_entry(i) for i in range(50)]
    entries[30] = StagedEntry("a/../b", *_fields(entries[30])[1:])
    try:
        Submission.loads(_submission(entries))
    except SubmissionError as e:
        assert "Invalid artifact entry path 'a/../b'" in str(e)
    else:
        raise AssertionError("accepted a path with '..'")
    entries[30] = StagedEntry("d/f30", *_fields(entries[30])[1:3], -1)
    try:
        Submission.loads(_submission(entries))
    except SubmissionError as e:
        assert str(e).startswith("entries[30] (staged) size is -1")
    else:
        raise AssertionError("accepted a negative size")


def test_hex_names_of_items_are_those_of_each_item() -> None:
    items = [Item(f"f{i}", "/s", 1, digest=_entry(i).digest) for i in range(20)]
    assert md5_hexes(items) == [item.md5_hex for item in items]
    items.append(Item("odd", "/s", 1, digest="AAAAAAAAAAAAAAAAAAAAAB=="))  # not canonical
    assert md5_hexes(items) == [item.md5_hex for item in items]
