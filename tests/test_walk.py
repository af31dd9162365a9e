"""walk: every regular file under a root, as os.walk and os.stat see it, sorted by path."""

from __future__ import annotations

import errno
import os
import random
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from artisync._core import WalkEntry, walk, walk_listing
from artisync.errors import SymlinkLoopError

Listing = dict[str, tuple[int, int, int]]
T = TypeVar("T")

DIRS = [
    "",
    "a",
    "a b",  # "a b/..." sorts before "a/..." byte-wise: " " < "/"
    "a/b",
    "a/b/c d",
    "a/b/c d/e",
    "päth with spaces",
    "päth with spaces/ファイル",
    "z",
    "empty/nested/dirs",
]


def make_tree(root: Path, files: int = 300) -> None:
    """A tree of `files` small files over nested dirs, with varied sizes and mtimes."""
    rng = random.Random(42)
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(files):
        d = DIRS[i % 9]  # never the "empty" dirs
        path = root / d / f"file {i:03d} ß.bin"
        path.write_bytes(rng.randbytes(rng.randrange(0, 3000)))
        mtime = rng.randrange(10**18, 2 * 10**18)
        os.utime(path, ns=(mtime, mtime))


def reference_walk(root: Path, follow_symlinks: bool) -> Listing:
    """What os.walk and os.stat say walk should find."""
    found: Listing = {}
    for dirpath, _, filenames in os.walk(root, followlinks=follow_symlinks):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not follow_symlinks and os.path.islink(path):
                continue
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode):
                found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


def as_listing(entries: list[WalkEntry]) -> Listing:
    listing = {e.path: (e.size, e.mtime_ns, e.inode) for e in entries}
    assert len(listing) == len(entries), "a file was listed twice"
    return listing


def assert_agrees_with_os_walk(root: Path, follow_symlinks: bool, **kwargs: int | None) -> None:
    entries = walk(root, follow_symlinks, **kwargs)
    paths = [e.path for e in entries]
    assert paths == sorted(paths)
    assert as_listing(entries) == reference_walk(root, follow_symlinks)


def call_with_deadline(call: Callable[[], T], seconds: float) -> T:
    """Run `call` on a thread and return or raise what it did; fail if it takes longer."""
    outcome: list[T] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as e:
            raised.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if raised:
        raise raised[0]
    return outcome[0]


@pytest.mark.parametrize("follow_symlinks", [True, False], ids=["following", "not_following"])
@pytest.mark.parametrize("threads", [1, 3, None], ids=["one_thread", "three_threads", "default"])
def test_a_generated_tree_agrees_with_os_walk_and_os_stat(
    tmp_path: Path, follow_symlinks: bool, threads: int | None
) -> None:
    make_tree(tmp_path)

    assert_agrees_with_os_walk(tmp_path, follow_symlinks, threads=threads)
    assert len(walk(tmp_path, follow_symlinks, threads=threads)) == 300


def test_paths_are_relative_slash_separated_and_sorted_bytewise(tmp_path: Path) -> None:
    for rel in ["z", "a/x", "a b/x", "a/b/c", "ä", "ファイル/f"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")

    paths = [e.path for e in walk(str(tmp_path))]

    assert paths == ["a b/x", "a/b/c", "a/x", "z", "ä", "ファイル/f"]


def make_tree_with_symlinks(tmp_path: Path) -> Path:
    root, other = tmp_path / "root", tmp_path / "other"
    make_tree(root, files=30)
    (other / "sub").mkdir(parents=True)
    (other / "x.bin").write_bytes(b"outside the root")
    (other / "sub" / "y.bin").write_bytes(b"deeper outside")
    (root / "linked dir").symlink_to(other)
    (root / "a" / "linked file.bin").symlink_to(other / "x.bin")
    return root


def test_symlinked_files_and_directories_are_followed_when_asked(tmp_path: Path) -> None:
    root = make_tree_with_symlinks(tmp_path)

    listing = as_listing(walk(root, follow_symlinks=True))

    assert {"linked dir/x.bin", "linked dir/sub/y.bin", "a/linked file.bin"} <= set(listing)
    assert listing["a/linked file.bin"][2] == os.stat(tmp_path / "other" / "x.bin").st_ino
    assert_agrees_with_os_walk(root, follow_symlinks=True)


def test_symlinked_files_and_directories_are_skipped_when_not_following(tmp_path: Path) -> None:
    root = make_tree_with_symlinks(tmp_path)

    listing = as_listing(walk(root, follow_symlinks=False))

    assert not any(p.startswith("linked dir/") or p == "a/linked file.bin" for p in listing)
    assert len(listing) == 30
    assert_agrees_with_os_walk(root, follow_symlinks=False)


@pytest.mark.parametrize(
    "target",
    ["", "a", "a/b"],
    ids=["to_the_root", "to_a_grandparent", "to_its_own_directory"],
)
def test_a_symlink_to_an_ancestor_raises_symlink_loop_error_quickly(
    tmp_path: Path, target: str
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"f")
    link = tmp_path / "a" / "b" / "up"
    link.symlink_to(tmp_path / target)

    with pytest.raises(SymlinkLoopError) as caught:
        call_with_deadline(lambda: walk(tmp_path, follow_symlinks=True), seconds=10)

    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.ELOOP
    assert caught.value.filename == str(link)
    # Not following, the same tree lists fine.
    assert [e.path for e in walk(tmp_path, follow_symlinks=False)] == ["a/b/f"]


def test_a_dangling_symlink_raises_file_not_found_naming_it_when_following(
    tmp_path: Path,
) -> None:
    (tmp_path / "real").write_bytes(b"real")
    dangling = tmp_path / "sub" / "dangling"
    dangling.parent.mkdir()
    dangling.symlink_to(tmp_path / "nowhere")

    with pytest.raises(FileNotFoundError) as caught:
        walk(tmp_path, follow_symlinks=True)

    assert caught.value.filename == str(dangling)
    assert [e.path for e in walk(tmp_path, follow_symlinks=False)] == ["real"]


@pytest.mark.parametrize("follow_symlinks", [True, False], ids=["following", "not_following"])
def test_a_fifo_is_skipped(tmp_path: Path, follow_symlinks: bool) -> None:
    (tmp_path / "real").write_bytes(b"real")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link to pipe").symlink_to(tmp_path / "pipe")

    # A walk that opened the FIFO would block forever: bound it.
    entries = call_with_deadline(lambda: walk(tmp_path, follow_symlinks), seconds=10)

    assert [e.path for e in entries] == ["real"]


def test_walking_a_missing_root_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    with pytest.raises(FileNotFoundError) as caught:
        walk(missing)

    assert caught.value.filename == str(missing)


def test_walking_a_file_raises_not_a_directory_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"not a dir")

    with pytest.raises(NotADirectoryError) as caught:
        walk(path)

    assert caught.value.errno == errno.ENOTDIR
    assert caught.value.filename == str(path)


def test_zero_threads_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        walk(tmp_path, threads=0)


def test_a_listing_hands_out_the_walk_in_runs_and_forgets_what_it_gave(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"d{i % 4}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 4}" / f"f{i:02d}").write_bytes(b"x" * i)
    listing = walk_listing(tmp_path)
    assert (len(listing), listing.total_size) == (50, sum(range(50)))
    runs = []
    while run := listing.take(7):
        runs.append(run)
        assert len(listing) == 50 - sum(map(len, runs))
    assert [len(r) for r in runs] == [7] * 7 + [1]
    taken = [(e.path, e.size, e.mtime_ns, e.inode) for r in runs for e in r]
    assert taken == [(e.path, e.size, e.mtime_ns, e.inode) for e in walk(tmp_path)]
    assert listing.take(7) == [] and listing.total_size == sum(range(50))
