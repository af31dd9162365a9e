"""What only the local store does: in-place writes and their journal, snapshots linked
into place, batching, durability, and which errors blame the source (reject) and which
the store (retry). The contract it keeps with every backend (layout, idempotent writes,
changed sources, manifests, listing) is tested in test_store_contract.py."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from artisync import _core
from artisync.errors import InvalidInputError
from artisync.store import (
    BlobItem,
    LocalStore,
    StoreUnavailableError,
    blob_key,
    manifest_key,
    open_store,
)
from artisync.store import local as local_module


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def source(directory: Path, data: bytes, name: str | None = None) -> tuple[str, Path]:
    """A file holding ``data``, and its MD5 hex."""
    md5_hex = hashlib.md5(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or md5_hex)
    path.write_bytes(data)
    return md5_hex, path


# Blobs up to this size are written at their names (rust/local_store/in_place.rs MAX_SIZE).
IN_PLACE_MAX = 64 << 10


def blob_path(store: LocalStore, md5_hex: str) -> Path:
    return store.root / "blobs" / "md5" / md5_hex[:2] / md5_hex


def tmp_entries(store: LocalStore) -> list[str]:
    return sorted(os.listdir(store.root / "tmp"))


# -- blobs ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["A" * 32, "a" * 31, "a" * 32 + "\n" + "b" * 32, "../" + "a" * 29])
async def test_a_bad_digest_anywhere_in_a_batch_is_named_and_nothing_is_stored(
    store: LocalStore, tmp_path: Path, bad: str
) -> None:
    # The batch's digests are checked as one match; a bad one is still named by itself.
    good = [source(tmp_path / "src", b"%d" % i) for i in range(50)]
    items = [*good[:20], (bad, good[20][1]), *good[20:]]
    with pytest.raises(InvalidInputError, match=re.escape(repr(bad))):
        await store.put_blobs([BlobItem(md5_hex, path, None) for md5_hex, path in items])
    assert not (store.root / "blobs" / "md5").exists() or not any(
        (store.root / "blobs" / "md5").iterdir()
    )


async def test_move_links_the_source_into_place(store: LocalStore, tmp_path: Path) -> None:
    md5_hex, staged = source(tmp_path / "staging", b"a staged snapshot")
    inode = staged.stat().st_ino

    assert await store.put_blob(md5_hex, staged, 17, move=True)

    # Linked, not copied: the caller's name goes with its staging area.
    assert blob_path(store, md5_hex).stat().st_ino == inode
    assert blob_path(store, md5_hex).read_bytes() == b"a staged snapshot"


# In a private mount namespace (unprivileged: a user namespace maps us to root there),
# the staging directory is bind-mounted elsewhere: same st_dev, yet the kernel refuses
# a rename out of the bind mount with EXDEV.
_BIND_MOUNT_CHILD = """
import asyncio, json, os, sys
from pathlib import Path
from artisync.store import LocalStore

root, md5_hex, staged = sys.argv[1:4]
store = LocalStore(Path(root))
stored = asyncio.run(store.put_blob(md5_hex, Path(staged), os.stat(staged).st_size, move=True))
print(json.dumps({"stored": stored, "staged_inode": os.stat(staged).st_ino}))
"""


def test_move_falls_back_to_a_copy_when_the_rename_crosses_filesystems(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare (util-linux) for a private bind mount")
    root = tmp_path / "store"
    LocalStore(root)
    md5_hex, staged = source(tmp_path / "staging", b"on another mount")
    bound = tmp_path / "bound"
    bound.mkdir()
    command = [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        'mount --bind "$1" "$2" && shift 2 && exec "$@"',
        "sh",
        str(staged.parent),
        str(bound),
        sys.executable,
        "-c",
        _BIND_MOUNT_CHILD,
        *(str(root), md5_hex, str(bound / staged.name)),
    ]
    child = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if child.returncode != 0 and child.stderr.startswith(("unshare:", "mount:")):
        pytest.skip(f"no private bind mount here: {child.stderr.strip()}")
    assert child.returncode == 0, child.stderr

    report = json.loads(child.stdout)
    assert report["stored"] is True
    blob = root / "blobs" / "md5" / md5_hex[:2] / md5_hex
    assert blob.read_bytes() == b"on another mount"
    assert blob.stat().st_ino != report["staged_inode"], "copied, not renamed"
    assert staged.exists(), "the snapshot stays where it was"
    assert os.listdir(root / "tmp") == []


async def test_move_from_another_filesystem_copies(store: LocalStore) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == store.root.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's tmp_path")
    directory = shm / f"artisync-test-{os.getpid()}"
    try:
        md5_hex, staged = source(directory, b"from tmpfs")

        assert await store.put_blob(md5_hex, staged, 10, move=True)

        assert blob_path(store, md5_hex).read_bytes() == b"from tmpfs"
        assert tmp_entries(store) == []
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# Run in a child process whose files may not grow past 1,000 bytes (RLIMIT_FSIZE; the
# interpreter ignores SIGXFSZ): writing the copy fails midway, on the store's side.
_FILE_SIZE_LIMIT_CHILD = """
import asyncio, json, resource, sys
from pathlib import Path
from artisync.store import LocalStore, StoreUnavailableError

root, md5_hex, source, size = sys.argv[1:5]
store = LocalStore(Path(root))
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
try:
    asyncio.run(store.put_blob(md5_hex, Path(source), int(size)))
    report = ["no error"]
except StoreUnavailableError as e:
    report = ["StoreUnavailableError", e.path, e.reason]
except OSError as e:
    report = [type(e).__name__, e.filename, str(e)]
print(json.dumps(report))
"""


@pytest.mark.parametrize("size", [5000, 3 << 20], ids=["in_place", "in_kernel"])
async def test_invariant_no_mode_bits_means_incomplete_a_failed_write_is_not_trusted(
    store: LocalStore, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    md5_hex, path = source(tmp_path / "src", data)
    command = [sys.executable, "-c", _FILE_SIZE_LIMIT_CHILD]
    command += [str(store.root), md5_hex, str(path), str(size)]

    child = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)

    kind, failed_path, reason = json.loads(child.stdout)
    assert kind == "StoreUnavailableError", "a failed write is the store's fault: retried"
    assert reason == "File too large"
    blob = blob_path(store, md5_hex)
    if size <= IN_PLACE_MAX:
        # Written at its name: left without permission bits (never trusted), and named
        # by the batch's journal for the next start to check.
        assert failed_path == str(blob) and blob.stat().st_mode & 0o777 == 0
        assert [name.rsplit(".", 1)[-1] for name in tmp_entries(store)] == ["blobs"]
    else:
        assert failed_path.startswith(str(store.root / "tmp")) and not blob.exists()
        assert tmp_entries(store) == []
    assert await store.has_blobs([md5_hex]) == set()
    assert await store.put_blob(md5_hex, path, size), "a retry succeeds"
    assert blob.read_bytes() == data and blob.stat().st_mode & 0o777
    await store.cleanup_tmp()  # as the next start does: the whole blob stays
    assert blob.read_bytes() == data and tmp_entries(store) == []


async def test_invariant_after_a_crash_what_a_journal_names_is_checked(
    store: LocalStore, tmp_path: Path
) -> None:
    """A power cut can keep a blob's name and permission bits without its bytes: the
    journal its batch left names it, and cleanup_tmp (run at start) re-hashes it."""
    whole_hex, whole = source(tmp_path / "src", b"whole")
    torn_hex, torn = source(tmp_path / "src", b"torn apart")
    assert await store.put_blobs([(whole_hex, whole, 5, False), (torn_hex, torn, 10, False)])
    blob_path(store, torn_hex).write_bytes(b"")  # what the power cut kept
    journal = _core.blob_journal(store.root / "tmp", "crashed")
    journal.write_text(f"{whole_hex}\n{torn_hex}\n")

    assert await store.cleanup_tmp() == 1

    assert await store.has_blobs([whole_hex, torn_hex]) == {whole_hex}
    assert tmp_entries(store) == []


def _short_sysfs_file() -> Path | None:
    """A file whose stat says 4096 bytes but that reads shorter: sysfs attributes."""
    for candidate in (
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "/sys/power/state",
        "/sys/kernel/profiling",
    ):
        path = Path(candidate)
        try:
            if path.stat().st_size == 4096 and 0 < len(path.read_bytes()) < 4096:
                return path
        except OSError:
            continue
    return None


async def test_a_file_of_the_kernels_is_refused_by_name_and_leaves_no_blob(
    store: LocalStore,
) -> None:
    # A sysfs attribute's stat always says 4096 bytes, whatever it reads: not content.
    # (A source cut while it is copied is rust/local_store/source.rs's test.)
    path = _short_sysfs_file()
    if path is None:
        pytest.skip("no sysfs attribute that reads shorter than its stat")

    with pytest.raises(OSError, match="a file of the kernel's") as caught:
        await store.put_blob("0" * 32, path, None)

    assert caught.value.filename == str(path)
    assert not blob_path(store, "0" * 32).exists()
    assert tmp_entries(store) == []


@pytest.mark.parametrize("hashed", [True, False], ids=["with_digest", "hashed_on_the_way"])
async def test_a_fifo_is_blamed_on_the_source_without_hanging(
    store: LocalStore, tmp_path: Path, hashed: bool
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    with pytest.raises(OSError) as caught:
        if hashed:
            await store.put_blob("0" * 32, fifo, None)
        else:
            async for _ in store.stage_files([(fifo, None)]):
                pass

    assert not isinstance(caught.value, StoreUnavailableError)
    assert (caught.value.errno, caught.value.filename) == (errno.EINVAL, str(fifo))
    assert "a FIFO (named pipe), not a file" in str(caught.value)
    assert tmp_entries(store) == []


async def test_a_directory_source_raises_is_a_directory(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as caught:
        await store.put_blob("0" * 32, tmp_path, None)

    assert caught.value.filename == str(tmp_path)


# -- batches -------------------------------------------------------------------------


async def test_put_blobs_of_2000_small_files_is_one_batch(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [source(tmp_path / "src", f"small file {i}".encode()) for i in range(2000)]
    items = [(h, p, p.stat().st_size, False) for h, p in files]
    real_to_thread = asyncio.to_thread
    hops: list[str] = []

    async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)

    assert await store.put_blobs(items) == 2000

    assert len(hops) == 1, "one thread hop for the whole batch, not one per file"
    for h, p in files:
        assert blob_path(store, h).read_bytes() == p.read_bytes()
    assert await store.has_blobs([h for h, _ in files]) == {h for h, _ in files}
    assert await store.put_blobs(items) == 0
    assert tmp_entries(store) == []


async def test_put_blobs_over_the_batch_limits_stores_everything(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "BATCH_FILES", 7)
    monkeypatch.setattr(local_module, "BATCH_BYTES", 100)
    files = [source(tmp_path / "src", f"file {i} ".encode() * (i % 5 * 8)) for i in range(40)]
    items = [(h, p, p.stat().st_size, False) for h, p in files]
    items.append(items[3])  # a duplicate within the call counts once

    assert await store.put_blobs(items) == len({h for h, _ in files})

    for h, p in files:
        assert blob_path(store, h).read_bytes() == p.read_bytes()


# -- durability and leftovers --------------------------------------------------------


def traced(script: str, *args: str) -> list[tuple[str, str]]:
    """Run ``script`` in a child under strace: its syncfs, fsync and rename calls in
    order, each with the path it was about (the fd's, or the rename's or link's
    target); files created are ``create``."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("needs strace to watch the order of syscalls")
    with tempfile.TemporaryDirectory() as out:
        log = Path(out) / "trace"
        command = [strace, "-f", "-qq", "-y", "-e", "signal=none", "-o", str(log)]
        syscalls = "syncfs,fsync,fdatasync,rename,renameat,renameat2,link,linkat,openat,fchmod"
        command += ["-e", f"trace={syscalls}"]
        child = subprocess.run(
            [*command, sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if child.returncode != 0 and "ptrace" in child.stderr:
            pytest.skip(f"strace cannot trace here: {child.stderr.strip()}")
        assert child.returncode == 0, child.stderr
        lines = log.read_text().splitlines()
    calls = []
    for line in lines:
        # Calls on two threads at once are split: "name(args <unfinished ...>" first.
        match = re.match(
            r"\d+\s+(\w+)\((.*?)(?:\)\s+=\s+(?:0|\d+<[^>]*>)|\s*<unfinished \.\.\.>)$", line
        )
        if match:
            name, arguments = match.groups()
            if name == "openat":
                if "O_CREAT" not in arguments:
                    continue  # only files made, not files read
                name = "create"
            paths = re.findall(r'<([^>]*)>|"([^"]*)"', arguments)
            about = [a or b for a, b in paths]
            for kind in ("rename", "link"):
                name = kind if name.startswith(kind) else name
            calls.append((name, about[-1]))
    return calls


_DURABILITY_CHILD = """
import asyncio, hashlib, sys
from pathlib import Path
from artisync.store import LocalStore

root, src, syncfs = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "syncfs"

async def main():
    store = LocalStore(Path(root))
    if not syncfs:
        store._syncfs = None  # as where libc has no syncfs
    files = []
    for i in range(3):
        data = f"file {i}".encode()
        (src / str(i)).write_bytes(data)
        files.append((hashlib.md5(data).hexdigest(), src / str(i), len(data), False))
    (src / "moved").write_bytes(b"moved")
    files.append((hashlib.md5(b"moved").hexdigest(), src / "moved", 5, True))
    await store.put_blobs(files)
    await store.put_manifest(hashlib.md5(b"artifact").hexdigest(), b"{}")
    print("synced from here", file=sys.stderr, flush=True)
    await store.sync()
    await store.sync()

asyncio.run(main())
"""


def test_invariant_bytes_on_disk_before_a_name_with_syncfs(
    tmp_path: Path,
) -> None:
    # Names before data would let a power cut leave empty files at final names, which
    # has_blobs would then report as present forever.
    root, src = tmp_path / "store", tmp_path / "src"
    src.mkdir()

    calls = traced(_DURABILITY_CHILD, str(root), str(src), "syncfs")

    blobs = str(root / "blobs" / "md5")
    watched = [
        (name, about)
        for name, about in calls
        if name == "syncfs" or about.startswith(blobs) or about.endswith(".blobs")
    ]
    order = [n if n == "syncfs" or a.startswith(blobs) else f"{n} journal" for n, a in watched]
    # The three small files are written at their names (no permission bits until
    # whole) and the moved snapshot is linked there, all after their journal is on
    # disk; then one syncfs for the batch, one per sync(). (A create shows twice where
    # it first found no fan-out directory.)
    assert order[:2] == ["create journal", "fsync journal"], order
    writes = [(n, a) for n, a in watched[2:] if n in ("create", "fchmod", "link")]
    assert order[2 + len(writes) :] == ["syncfs", "syncfs", "syncfs"], order
    assert [n for n, _ in writes].count("link") == 1
    written = {a for n, a in writes if n == "fchmod"}
    assert len(written) == 3
    for path in written:
        events = [n for n, a in writes if a == path]
        assert events[-1] == "fchmod" and set(events[:-1]) == {"create"}, events
    fsyncs = [about for name, about in calls if name == "fsync"]
    assert len(fsyncs) == 3, "the journal, its directory, and the manifest's own fsync only"


def test_invariant_bytes_on_disk_before_a_name_without_syncfs(
    tmp_path: Path,
) -> None:
    root, src = tmp_path / "store", tmp_path / "src"
    src.mkdir()

    calls = traced(_DURABILITY_CHILD, str(root), str(src), "fsync")

    assert "syncfs" not in {name for name, _ in calls}
    blobs = str(root / "blobs" / "md5")
    renames = [i for i, (name, about) in enumerate(calls) if name in ("rename", "link")]
    blob_renames = [i for i in renames if calls[i][1].startswith(blobs)]
    assert len(blob_renames) == 4
    synced_before = {about for name, about in calls[: blob_renames[0]] if name == "fsync"}
    assert len(synced_before) == 4, "each blob's data is durable before any name"
    assert str(src / "moved") in synced_before, "the moved snapshot too"
    directories = {about for name, about in calls[renames[-1] + 1 :] if name == "fsync"}
    renamed_into = {str(Path(calls[i][1]).parent) for i in blob_renames}
    assert renamed_into <= directories, "every directory that received a rename"
    assert blobs in directories, "and where new fan-out dirs were made"
    assert str(root / "manifests") in directories, "and the manifest's"
    tail = [name for name, _ in calls[renames[-1] + 1 :]]
    assert tail.count("fsync") == len(directories), "the second sync has nothing to do"


async def test_cleanup_tmp_removes_what_interrupted_writes_left(store: LocalStore) -> None:
    tmp = store.root / "tmp"
    (tmp / "0123.blob.4242.deadbeef.0").write_bytes(b"half a blob")
    (tmp / "a dir").mkdir()
    (tmp / "a dir" / "inside").write_bytes(b"x")

    assert await store.cleanup_tmp() == 2

    assert tmp_entries(store) == []
    assert await store.cleanup_tmp() == 0


def test_the_layout_is_created_and_reopening_keeps_the_content(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store"
    first = LocalStore(root)
    md5_hex, path = source(tmp_path / "src", b"kept")
    asyncio.run(first.put_blob(md5_hex, path, 4))

    again = LocalStore(root)

    assert {p.name for p in root.iterdir()} == {"blobs", "manifests", "tmp"}
    assert again.root == root and again.url == root.as_uri()
    assert asyncio.run(again.has_blob(md5_hex))


# Run in a child process: as root, that child drops the capabilities that let root
# write anywhere, so a mode-555 store is read-only to it as it would be to anyone.
_UNWRITABLE_CHILD = """
import asyncio, json, sys
from pathlib import Path
from artisync.store import LocalStore, StoreUnavailableError

root, md5_hex, source, unreadable_root, unreadable = sys.argv[1:6]

async def attempt(call):
    try:
        await call()
    except StoreUnavailableError as e:
        return ["StoreUnavailableError", e.path, str(e)]
    except OSError as e:
        return [type(e).__name__, e.filename, str(e)]
    return ["no error"]

async def main():
    store = LocalStore(Path(root))
    writable = LocalStore(Path(unreadable_root))
    return {
        "copy": await attempt(lambda: store.put_blob(md5_hex, Path(source), 4)),
        "move": await attempt(lambda: store.put_blob(md5_hex, Path(source), 4, move=True)),
        "manifest": await attempt(lambda: store.put_manifest(md5_hex, b"{}")),
        "unreadable source": await attempt(
            lambda: writable.put_blob(md5_hex, Path(unreadable), 4)
        ),
    }

print(json.dumps(asyncio.run(main())))
"""


def test_an_unwritable_store_is_unavailable_and_an_unreadable_source_is_not(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    LocalStore(root)
    md5_hex, path = source(tmp_path / "src", b"data")
    # The fan-out directories exist, so the writes fail on the files themselves.
    for key in (blob_key(md5_hex), manifest_key(md5_hex)):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o555)
    _, unreadable = source(tmp_path / "secret", b"data")
    unreadable.chmod(0o000)
    command = [
        sys.executable,
        "-c",
        _UNWRITABLE_CHILD,
        *(str(root), md5_hex, str(path), str(tmp_path / "other"), str(unreadable)),
    ]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]

    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    finally:
        for directory, _, _ in os.walk(root):
            os.chmod(directory, 0o755)

    report = json.loads(child.stdout)
    for operation in ("copy", "move", "manifest"):
        kind, failed_path, message = report[operation]
        assert kind == "StoreUnavailableError", (operation, report[operation])
        assert failed_path.startswith(str(root)), (operation, failed_path)
        assert failed_path in message and "Permission denied" in message
    assert path.exists(), "a refused move leaves the source where it was"
    assert report["unreadable source"][:2] == ["PermissionError", str(unreadable)]


# -- open_store ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("{tmp}/abs", "abs"),
        ("file://{tmp}/from%20url", "from url"),
        ("file://localhost{tmp}/localhost", "localhost"),
        ("relative/st:ore", "home/relative/st:ore"),
    ],
    ids=["an_absolute_path", "a_file_url", "a_file_url_with_localhost", "a_relative_path"],
)
def test_open_store_gives_a_local_store_for(tmp_path: Path, url: str, where: str) -> None:
    store = open_store(url.format(tmp=tmp_path), tmp_path / "home")

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / where
    assert (store.root / "blobs" / "md5").is_dir()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3://Not_A_Bucket!/prefix", "is not a bucket name"),
        ("gs://bucket/../prefix", "may not contain '.' or '..'"),
        ("http://example.com/store", "unknown scheme 'http'"),
        ("file://otherhost/store", "not host 'otherhost'"),
        ("file://relative", "not host 'relative'"),
        ("  ", "empty"),
    ],
)
def test_open_store_refuses_with_a_clear_error(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_store(url, tmp_path)

    assert says in str(caught.value)
    assert not any(tmp_path.iterdir()), "nothing is created for a refused URL"
