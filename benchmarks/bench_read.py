"""Speed of downloads, each figure a ratio against a peer measured in the same run.

    python benchmarks/bench_read.py            # the issue's size (10,000 files of 4 KiB)
    python benchmarks/bench_read.py --quick    # small sizes: checks the script runs

The version is committed once (untimed) by a real ``artisync daemon`` on a scratch
home, with the SDK, and its manifest read back from the store, as ``artisync get``
does. Then, each round (ours and the peers alternating, a ``sync`` before every call,
so nobody pays for the writeback of the call before):

- ``cp -r`` of the logged tree into a new directory (the peer);
- a download into a new, empty directory (straight from the local store);
- the same download again into that directory: every file is already there and
  unchanged, so it is skipped after a ``stat``;
- a download into a new directory through the blob cache, as a remote store's would
  be, with every blob already cached (information: it has no target).

A figure's ratio is best time against best time (noise only ever adds time), with
the median of the per-round ratios beside it; see ``bench_write.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import artisync
from artisync.config import Config
from artisync.download import BlobCache, download_manifest
from artisync.manifest import Manifest
from artisync.registry import SqliteRegistry
from artisync.store import open_store
from bench_write import daemon, make_tree, rounds, timed
from figures import Figure, add_common_arguments, report


def commit_version(work: Path, tree: Path) -> tuple[Config, Manifest]:
    """Log ``tree`` through a real daemon; returns the home's config and the manifest
    of the committed version, read from the store."""
    home = work / "home"
    with daemon(home) as config, artisync.init(project="bench", home=home) as run:
        artifact = artisync.Artifact("tree", "dataset")
        artifact.add_dir(tree, policy="immutable")
        run.log_artifact(artifact)
        artifact.wait()
    registry = SqliteRegistry(config.registry)
    try:
        version = registry.get_version("bench", "tree", "latest")
    finally:
        registry.close()
    store = open_store(config.store, config.home)
    data = asyncio.run(store.get_manifest(version.manifest_key))
    return config, Manifest.from_json(json.loads(data))


class Bench:
    """The rounds of one run."""

    def __init__(self, work: Path, files: int, repeat: int) -> None:
        self.work, self.repeat = work, repeat
        self.tree = make_tree(work / "tree", files)
        self.config, self.manifest = commit_version(work, self.tree)
        # A bound far above the version, so the cached figure never evicts.
        self.cache = BlobCache(work / "cache", max_bytes=1 << 40)
        self.count = 0
        self.last_root: Path | None = None

    def new_dir(self, kind: str) -> Path:
        self.count += 1
        return self.work / f"{kind}{self.count}"  # kept to the end, like bench_write's

    def cp_r(self) -> float:
        dst = self.new_dir("cp")
        return timed(lambda: subprocess.run(["cp", "-r", str(self.tree), str(dst)], check=True))

    def download(self, root: Path, use_cache: bool = False) -> None:
        download_manifest(
            self.config.store,
            self.manifest,
            root,
            cache=self.cache,
            use_cache=use_cache,
            home=self.config.home,
        )

    def first(self) -> float:
        self.last_root = self.new_dir("dl")
        root = self.last_root
        return timed(lambda: self.download(root))

    def again(self) -> float:
        assert self.last_root is not None
        root = self.last_root
        return timed(lambda: self.download(root))

    def cached(self) -> float:
        root = self.new_dir("cached")
        return timed(lambda: self.download(root, use_cache=True))

    def figures(self) -> list[Figure]:
        self.download(self.new_dir("warm"), use_cache=True)  # fills the cache, untimed
        peer, first, again, cached = rounds(
            self.repeat, self.cp_r, self.first, self.again, self.cached
        )
        n = f"{len(self.manifest):,}"
        return [
            Figure(f"download of {n} files of 4 KiB into an empty dir vs cp -r", first, peer, 0.5),
            Figure("download again into the same dir (unchanged) vs the first", again, first, 5.0),
            Figure("download through the cache, blobs cached, vs cp -r", cached, peer, None),
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, repeat=5, dir_help="scratch directory (in /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asr-", dir=args.dir or "/tmp") as tmp:
        os.environ["ARTISYNC_HOME"] = str(Path(tmp) / "home")  # nothing of the user's
        bench = Bench(Path(tmp), 300 if args.quick else 10_000, args.repeat)
        figures = bench.figures()
    print(f"artisync {artisync.__version__}, {os.cpu_count()} cores, {args.repeat} rounds")
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
