"""``verify_root`` re-hashes a root and lists every difference from the version at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artisync.download import (
    BlobCache,
    UnsupportedEntryError,
    VerificationError,
    download_manifest,
    verify_root,
)
from artisync.manifest import Manifest, ManifestEntry
from download_harness import FILES, build_version, digest_of


@pytest.fixture
def downloaded(tmp_path: Path) -> tuple[Path, Manifest]:
    store, manifest = build_version(tmp_path / "store", FILES)
    download_manifest(store, manifest, tmp_path / "out", cache=BlobCache(tmp_path / "cache"))
    return tmp_path / "out", manifest


def test_a_fresh_download_verifies(downloaded: tuple[Path, Manifest]) -> None:
    out, manifest = downloaded
    verify_root(manifest, out)


def test_every_modified_missing_and_extra_file_is_reported_in_one_error(
    downloaded: tuple[Path, Manifest],
) -> None:
    out, manifest = downloaded
    target = out / "nested" / "c.txt"
    st = os.stat(target)
    with open(target, "r+b") as f:  # same size, mtime put back: only a re-hash sees it
        f.write(b"G")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    (out / "a.txt").write_bytes(b"other")
    (out / "images" / "dog.png").unlink()
    (out / "empty.bin").unlink()
    (out / "notes.md").write_bytes(b"mine")
    (out / "images" / "extra").mkdir()
    (out / "images" / "extra" / "x").write_bytes(b"")
    with pytest.raises(VerificationError) as caught:
        verify_root(manifest, out)
    error = caught.value
    assert error.modified == ["a.txt", "nested/c.txt"]
    assert error.missing == ["empty.bin", "images/dog.png"]
    assert error.extra == ["images/extra/x", "notes.md"]
    message = str(error)
    assert "2 modified" in message and "2 missing" in message and "2 extra" in message
    assert "'nested/c.txt'" in message and "'notes.md'" in message


def test_path_prefix_checks_only_the_entries_and_files_under_it(
    downloaded: tuple[Path, Manifest],
) -> None:
    out, manifest = downloaded
    (out / "a.txt").write_bytes(b"other")  # outside the prefix: not looked at
    (out / "notes.md").write_bytes(b"mine")
    verify_root(manifest, out, path_prefix="images/")
    (out / "images" / "stray.png").write_bytes(b"")
    with pytest.raises(VerificationError) as caught:
        verify_root(manifest, out, path_prefix="images/")
    assert (caught.value.modified, caught.value.missing, caught.value.extra) == (
        [],
        [],
        ["images/stray.png"],
    )


def test_a_missing_root_reports_every_file_missing(tmp_path: Path) -> None:
    _, manifest = build_version(tmp_path / "store", FILES)
    with pytest.raises(VerificationError) as caught:
        verify_root(manifest, tmp_path / "nowhere")
    assert caught.value.missing == sorted(FILES)


def test_a_remote_reference_cannot_be_verified_yet(downloaded: tuple[Path, Manifest]) -> None:
    out, manifest = downloaded
    manifest.entries["r"] = ManifestEntry("r", digest_of(b"r"), 1, ref="s3://b/r")
    with pytest.raises(UnsupportedEntryError, match="'r'"):
        verify_root(manifest, out)
