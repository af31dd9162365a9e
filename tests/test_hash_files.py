"""hash_files: MD5 and stat of each file, in input order, errors naming the first bad path."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import file_digests
from artisync._core import FileDigest, hash_files

BUF = 1 << 20  # the core's read buffer: sizes around it catch off-by-one chunking

# An mtime with non-zero nanoseconds, so a core that rounds to microseconds is caught.
MTIME_NS = 1_700_000_000_123_456_789


def write(path: Path, data: bytes) -> Path:
    return file_digests.write(path, data, MTIME_NS)


def assert_digest_of(result: FileDigest, path: Path, data: bytes) -> None:
    assert result.path == str(path)
    file_digests.assert_digest_of(result, path, data, MTIME_NS)


@pytest.mark.parametrize(
    "size",
    [0, 1, BUF - 1, BUF, BUF + 1, 9 * BUF + 3],
    ids=[
        "an_empty_file",
        "a_one_byte_file",
        "a_file_one_byte_under_the_buffer",
        "a_file_of_exactly_one_buffer",
        "a_file_one_byte_over_the_buffer",
        "a_large_file",
    ],
)
def test_digest_and_stat_equal_hashlib_and_os_stat_for(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = write(tmp_path / "f.bin", data)

    [result] = hash_files([path])

    assert_digest_of(result, path, data)


def test_names_with_spaces_and_non_ascii_characters_are_hashed(tmp_path: Path) -> None:
    data = "contenu non-ASCII: ファイル".encode()
    path = write(tmp_path / "päth with spaces" / "ファイル.bin", data)

    [result] = hash_files([path])

    assert_digest_of(result, path, data)


@pytest.mark.parametrize("threads", [1, 3, None], ids=["one_thread", "three_threads", "default"])
def test_results_keep_input_order_for_many_files(tmp_path: Path, threads: int | None) -> None:
    files = {
        write(tmp_path / f"f{i:03d}", f"file number {i}".encode() * (i % 7)): f"file number {i}"
        for i in range(500)
    }
    # Neither sorted nor creation order: the output must follow the input, nothing else.
    paths = list(files)
    random.Random(7).shuffle(paths)

    results = hash_files(paths, threads=threads)

    assert [r.path for r in results] == [str(p) for p in paths]
    for result, path in zip(results, paths, strict=True):
        assert_digest_of(result, path, path.read_bytes())


def test_str_and_pathlib_paths_are_both_accepted(tmp_path: Path) -> None:
    a = write(tmp_path / "a", b"as a str")
    b = write(tmp_path / "b", b"as a Path")

    results = hash_files([str(a), b])

    assert_digest_of(results[0], a, b"as a str")
    assert_digest_of(results[1], b, b"as a Path")


def test_a_missing_file_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.bin"

    with pytest.raises(FileNotFoundError) as caught:
        hash_files([missing])

    assert caught.value.errno == errno.ENOENT
    assert caught.value.filename == str(missing)


def test_a_directory_raises_is_a_directory_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "a dir"
    directory.mkdir()

    with pytest.raises(IsADirectoryError) as caught:
        hash_files([directory])

    assert caught.value.errno == errno.EISDIR
    assert caught.value.filename == str(directory)


# Run in a child process: as root, that child drops the capabilities that let root read
# any file, so a mode-000 file is unreadable to it as it would be to any other user.
_UNREADABLE_CHILD = """
import json, sys
from artisync._core import hash_files

path = sys.argv[1]
report = {}
try:
    open(path, "rb").close()
except OSError as e:
    report["open"] = type(e).__name__
try:
    hash_files([path])
except OSError as e:
    report["hash_files"] = [type(e).__name__, e.errno, e.filename]
print(json.dumps(report))
"""


def test_an_unreadable_file_raises_permission_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.bin", b"no peeking")
    path.chmod(0o000)
    command = [sys.executable, "-c", _UNREADABLE_CHILD, str(path)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]

    child = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)

    report = json.loads(child.stdout)
    assert report.get("open") == "PermissionError", "the child could still read the file"
    assert report.get("hash_files") == ["PermissionError", errno.EACCES, str(path)]


@pytest.mark.parametrize("threads", [1, 3, None], ids=["one_thread", "three_threads", "default"])
def test_in_a_batch_the_error_names_the_first_bad_path_in_input_order(
    tmp_path: Path, threads: int | None
) -> None:
    paths = [write(tmp_path / f"ok{i:03d}", b"x" * i) for i in range(300)]
    directory = tmp_path / "a dir"
    directory.mkdir()
    missing = tmp_path / "missing"
    # The missing file comes first; the directory (a different error) comes after it.
    paths[120] = missing
    paths[250] = directory
    paths.append(tmp_path / "also missing")

    with pytest.raises(FileNotFoundError) as caught:
        hash_files(paths, threads=threads)
    assert caught.value.filename == str(missing)

    paths[120], paths[250] = directory, missing
    with pytest.raises(IsADirectoryError) as caught_dir:
        hash_files(paths, threads=threads)
    assert caught_dir.value.filename == str(directory)


def test_zero_threads_raises_value_error(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"data")

    with pytest.raises(ValueError):
        hash_files([path], threads=0)
