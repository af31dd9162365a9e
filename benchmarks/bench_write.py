"""Speed of the write path, each figure a ratio against a peer measured in the same run.

    python benchmarks/bench_write.py            # the issue's sizes (10,000 files, 1 GiB)
    python benchmarks/bench_write.py --quick    # small sizes: checks the script runs
    python benchmarks/bench_write.py --only small  # 10,000 files committed vs cp -r only

Peers: ``wandb.Artifact.add_dir`` (``pip install wandb``; its figures are skipped when
it is missing; it runs in a child process, because wandb leaves threads and a service
behind), ``cp -r``, and ``md5sum`` followed by ``cp``. A real ``artisync daemon`` runs
on a scratch home with the local store.

How the figures stay fair on a shared, noisy machine:

- the data is written once and every side reads the same files; each of our rounds
  runs against a new daemon on an empty home (started untimed), so deduplication
  never helps (new files per round kept the filesystem journal busy for minutes, and
  rewriting them in place made ``cp -r`` 4x slower);
- every call starts after a ``sync`` (untimed), so nobody pays for the writeback of
  the one before;
- the sustained rate: three trees of different content logged as versions back to back,
  timed until the last commits, against ``cp -r`` of each (the daemon overlaps one
  version's syncfs and renames with the next one's copies);
- ours and the peer alternate round by round; a figure's ratio is best time against
  best time, and the median of the per-round ratios is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import artisync
from artisync import _core
from artisync.config import Config
from artisync.sdk.client import DaemonClient
from artisync.spool import ArtifactInfo, Entry, Spool, StagedEntry, Submission
from figures import Figure, add_common_arguments, report

MiB = 1 << 20

# Times W&B's add_dir alone; the import is not part of the figure.
_WANDB_ADD_DIR = """
import sys, time, wandb
artifact = wandb.Artifact("tree", "dataset")
start = time.perf_counter()
artifact.add_dir(sys.argv[1], policy=sys.argv[2])
print(time.perf_counter() - start)
"""


@dataclass
class Sizes:
    files: int
    big: int
    stream: int = 3  # trees logged back to back for the sustained-rate figure


FULL = Sizes(files=10_000, big=1024 * MiB)
QUICK = Sizes(files=300, big=8 * MiB, stream=2)


def make_tree(root: Path, count: int) -> Path:
    for i in range(count):
        directory = root / f"d{i // 100:03d}"
        if i % 100 == 0:
            directory.mkdir(parents=True)
        (directory / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    return root


def make_big(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    return path


def wandb_version() -> str | None:
    """wandb's version if it is installed (it is a peer, not a dependency)."""
    try:
        return version("wandb")
    except PackageNotFoundError:
        return None


@contextmanager
def daemon(
    home: Path, store: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Config]:
    """A daemon on ``home`` (with ``--store`` if given, in the environment ``env`` if
    given), logging (with per-stage timings) to home/daemon.log."""
    home.mkdir(parents=True, exist_ok=True)
    store_args = ["--store", store] if store else []
    with open(home / "daemon.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "artisync.cli", "--home", str(home), "daemon", *store_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        config = Config.load(home)
        deadline = time.monotonic() + 30
        while DaemonClient(config).queue_status() is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the daemon did not start; see {home / 'daemon.log'}")
            time.sleep(0.05)
        try:
            yield config
        finally:
            proc.terminate()
            proc.wait(30)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rounds(repeat: int, *fns: Callable[[], float]) -> list[list[float]]:
    """Each function's time per round; rounds interleave, each call after a sync."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            os.sync()
            times[i].append(fn())
    return times


class Bench:
    """The figures of one run."""

    def __init__(self, work: Path, sizes: Sizes, repeat: int) -> None:
        self.work, self.sizes, self.repeat = work, sizes, repeat
        self.tree = make_tree(work / "tree", sizes.files)
        # Different content per tree, so no version of the stream deduplicates another.
        self.trees = [self.tree] + [
            make_tree(work / f"tree{i}", sizes.files) for i in range(1, sizes.stream)
        ]
        self.big = make_big(work / "big.bin", sizes.big)
        self.homes = 0
        self.copies = 0
        self.other_user: pwd.struct_passwd | None = None

    @contextmanager
    def fresh_run(self) -> Iterator[artisync.Run]:
        """A run against a new daemon on an empty home (started and stopped untimed)."""
        self.homes += 1
        home = self.work / f"h{self.homes}"
        with daemon(home), artisync.init(project="bench", home=home) as run:
            yield run
        # The home stays until the end: deleting 10,000 blobs here would load the
        # filesystem journal during the next measurement.

    def log_dir(self, policy: str, wait: bool) -> Callable[[], float]:
        def go() -> float:
            with self.fresh_run() as run:
                artifact = artisync.Artifact("tree", "dataset")

                def call() -> None:
                    artifact.add_dir(self.tree, policy=policy)
                    run.log_artifact(artifact)
                    if wait:
                        artifact.wait()

                os.sync()
                seconds = timed(call)
                artifact.wait()
                return seconds

        return go

    def log_stream(self, policy: str) -> Callable[[], float]:
        """Each tree logged as the next version, back to back, until the last commits."""

        def go() -> float:
            with self.fresh_run() as run:

                def call() -> None:
                    artifacts = []
                    for tree in self.trees:
                        artifact = artisync.Artifact("tree", "dataset")
                        artifact.add_dir(tree, policy=policy)
                        run.log_artifact(artifact)
                        artifacts.append(artifact)
                    for artifact in artifacts:
                        artifact.wait()

                os.sync()
                return timed(call)

        return go

    def cp_r_stream(self) -> float:
        def call() -> None:
            for tree in self.trees:
                self.copies += 1
                subprocess.run(
                    ["cp", "-r", str(tree), str(self.work / f"cp{self.copies}")], check=True
                )

        return timed(call)

    def wandb_add_dir(self, policy: str) -> Callable[[], float]:
        def go() -> float:
            out = subprocess.run(
                [sys.executable, "-c", _WANDB_ADD_DIR, str(self.tree), policy],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return float(out.split()[-1])

        return go

    def cp_r(self) -> float:
        self.copies += 1
        dst = self.work / f"cp{self.copies}"  # kept to the end, like our homes
        return timed(lambda: subprocess.run(["cp", "-r", str(self.tree), str(dst)], check=True))

    def log_big(self, policy: str) -> Callable[[], float]:
        def go() -> float:
            with self.fresh_run() as run:
                artifact = artisync.Artifact("big", "model")
                os.sync()
                return timed(
                    lambda: (
                        artifact.add_file(self.big, policy=policy),
                        run.log_artifact(artifact),
                        artifact.wait(),
                    )
                )

        return go

    def md5sum_cp(self) -> float:
        dst = self.work / "big-copy.bin"
        seconds = timed(
            lambda: (
                subprocess.run(["md5sum", str(self.big)], check=True, capture_output=True),
                subprocess.run(["cp", str(self.big), str(dst)], check=True),
            )
        )
        dst.unlink()
        return seconds

    def snapshot_and_commit(self, user: pwd.struct_passwd | None) -> Callable[[], float]:
        """The mutable tree snapshotted into the spool and committed, as the SDK and the
        daemon do it, submitted by ``user`` (the daemon's own user if None): another
        user's snapshots are hashed again as the daemon copies them in, never linked."""

        def go() -> float:
            self.homes += 1
            home = self.work / f"h{self.homes}"
            home.mkdir()
            if user is not None:
                os.chown(home, os.geteuid(), user.pw_gid)
            home.chmod(0o2770)  # the group's: what is made inside is the group's too
            old = os.umask(0o007)  # a home the group shares, as the system service's
            try:
                with daemon(home) as config:
                    spool = Spool(config.spool)
                    start = time.perf_counter()
                    sub_id = _submit_snapshot(spool, self.tree, user)
                    deadline = start + 600
                    while (result := spool.find_result(sub_id)) is None:
                        if time.perf_counter() > deadline:
                            raise RuntimeError(f"{sub_id} not finished; see {home}/daemon.log")
                        time.sleep(0.002)
                    seconds = time.perf_counter() - start
            finally:
                os.umask(old)
            assert result["status"] == "committed", result
            return seconds

        return go

    def figures(self, with_wandb: bool, only: str | None = None) -> list[Figure]:
        n, out = f"{self.sizes.files:,}", []
        if with_wandb and only is None:
            for policy, target in (("immutable", 20.0), ("mutable", 3.0)):
                ours, peer = rounds(
                    self.repeat, self.log_dir(policy, wait=False), self.wandb_add_dir(policy)
                )
                name = f"add_dir({policy})+log_artifact, {n} files, vs wandb add_dir({policy})"
                out.append(Figure(name, ours, peer, target))
        mutable, immutable, peer = rounds(
            self.repeat,
            self.log_dir("mutable", wait=True),
            self.log_dir("immutable", wait=True),
            self.cp_r,
        )
        for policy, ours in (("mutable", mutable), ("immutable", immutable)):
            # The target is for the median of the rounds ("[median]" in the name).
            name = f"{n} files of 4 KiB committed ({policy}) vs cp -r [median]"
            out.append(Figure(name, ours, peer, 0.6, by_median=True))
        if only == "small":
            return out
        mutable, immutable, peer = rounds(
            self.repeat, self.log_stream("mutable"), self.log_stream("immutable"), self.cp_r_stream
        )
        k = len(self.trees)
        for policy, ours in (("mutable", mutable), ("immutable", immutable)):
            name = f"{k} x {n} files committed back to back ({policy}) vs cp -r"
            out.append(Figure(name, ours, peer, 0.5))
        if self.other_user is not None:
            own, other = rounds(
                self.repeat,
                self.snapshot_and_commit(None),
                self.snapshot_and_commit(self.other_user),
            )
            name = (
                f"{n} snapshots committed for another user ({self.other_user.pw_name}) vs "
                "for the daemon's own user (the cost of checking their digests)"
            )
            out.append(Figure(name, other, own, 0.0))
        mutable, immutable, peer = rounds(
            self.repeat, self.log_big("mutable"), self.log_big("immutable"), self.md5sum_cp
        )
        mib = self.sizes.big // MiB
        for policy, ours in (("mutable", mutable), ("immutable", immutable)):
            name = f"one {mib} MiB file committed ({policy}) vs md5sum + cp"
            out.append(Figure(name, ours, peer, 0.7))
        return out


def _submit_snapshot(spool: Spool, tree: Path, user: pwd.struct_passwd | None) -> str:
    """Snapshot ``tree`` into the spool and submit it, in a child process that runs as
    ``user`` (its own uid and groups) when one is given; the submission's id."""
    sub_id = uuid.uuid4().hex
    pid = os.fork()
    if pid == 0:  # the child: what a training script of that user does
        code = 1
        try:
            if user is not None:
                os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
            staging = spool.staging_dir(sub_id)
            # A pool of its own: the parent's rayon workers did not survive the fork.
            threads = os.cpu_count() or 1
            digests = _core.copy_tree_and_hash(tree, staging / "t.d", threads=threads)
            entries: list[Entry] = [
                StagedEntry(d.path, f"staging/{sub_id}/t.d/{d.path}", d.digest, d.size)
                for d in digests
            ]
            info = ArtifactInfo(name="tree", type="dataset")
            spool.submit(Submission(sub_id, time.time_ns(), "bench", info, entries))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("the snapshotting child failed")
    return sub_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, repeat=5, dir_help="scratch directory (in /tmp)")
    parser.add_argument("--without-wandb", action="store_true", help="skip the W&B figures")
    parser.add_argument(
        "--other-user",
        metavar="NAME",
        help="also time snapshots another user submits (run as root; NAME must exist)",
    )
    parser.add_argument(
        "--only", choices=("small",), help="only the 10,000 small files committed vs cp -r"
    )
    args = parser.parse_args()
    peer_version = None if args.without_wandb else wandb_version()
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory(prefix="asb-", dir=args.dir or "/tmp") as tmp:
        work = Path(tmp)
        for var, sub in (
            ("WANDB_DIR", "wandb"),
            ("WANDB_DATA_DIR", "wd"),
            ("WANDB_CACHE_DIR", "wc"),
        ):
            os.environ[var] = str(work / sub)
        if args.other_user:
            work.chmod(0o755)  # the other user reads the trees
        sizes = QUICK if args.quick else FULL
        if args.only == "small":  # neither the stream's other trees nor the big file
            sizes = replace(sizes, big=0, stream=1)
        bench = Bench(work, sizes, args.repeat)
        bench.other_user = pwd.getpwnam(args.other_user) if args.other_user else None
        figures = bench.figures(peer_version is not None, args.only)
    if peer_version is None:
        print("wandb is not installed (pip install wandb): its figures are skipped")
    versions = f", wandb {peer_version}" if peer_version else ""
    print(
        f"artisync {artisync.__version__}, {os.cpu_count()} cores, {args.repeat} rounds{versions}"
    )
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
