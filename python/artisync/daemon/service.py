"""The daemon: owns the spool, the pipeline, the socket and the registry writes.

Lifecycle as uvicorn does it: startup (lock the home, open store and registry, resume
what a previous daemon left in ``work/``, take in ``new/``, serve the socket), a main
loop (the spool watcher), and shutdown with a deadline, after which whatever is still
running is cancelled; cancelled submissions stay in ``work/`` and resume next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import stat
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

import watchfiles

from artisync.config import Config
from artisync.crashpoints import arm as arm_crash_points
from artisync.crashpoints import crash_point
from artisync.daemon import systemd
from artisync.daemon.caller_keys import CallerKeys
from artisync.daemon.gc import GcReport, collect, expire
from artisync.daemon.ordering import CommitOrder
from artisync.daemon.peer import Peer
from artisync.daemon.pipeline import Pipeline
from artisync.daemon.server import start_server
from artisync.daemon.store_choice import open_node_store
from artisync.disk_full import disk_full_error, is_disk_full
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.home_lock import DaemonAlreadyRunningError, lock_home
from artisync.launch import record_manager
from artisync.logs import get_logger
from artisync.registry import close_registry, open_registry
from artisync.sealed_keys import PUBLIC_NAME, ensure_key_pair
from artisync.spool import FOLDERS, SUBMISSION_ID, Spool, next_seq, parse_name, seq_time_ns
from artisync.spool.group_modes import share_with_group

__all__ = ["Daemon", "DaemonAlreadyRunningError"]

log = get_logger("artisync.daemon")

# A client publishing into new/ takes its sequence number just before the rename (a
# few microseconds apart); a submission is committed no sooner than this long after its
# number was taken, and only after new/ was scanned again, so an earlier one still
# being renamed is not overtaken. It is also the floor of a lone version's latency.
SETTLE_NS: Final = 20_000_000
# How often new/ is rescanned even without an inotify event (events can be lost).
RESCAN_MS: Final = 1000
# Settings a SIGHUP applies to a running daemon; the others need a restart.
LIVE_SETTINGS: Final = frozenset(
    {"gc_interval", "gc_grace", "expire_interval", "cache_max_bytes", "shutdown_deadline"}
)
# How often staging/ is swept for snapshots of scripts that died before logging them.
SWEEP_SECONDS: Final = 600.0
TERMINAL: Final = ("committed", "rejected")
# Finished submissions remembered in memory; older ones are answered from done/ and
# failed/, so a daemon that runs for months does not grow with every version.
REMEMBER_FINISHED: Final = 10_000


@dataclass(slots=True)
class _State:
    status: str
    seq: str
    result: dict[str, Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Daemon:
    """One node's daemon, on one ``ARTISYNC_HOME``."""

    def __init__(self, config: Config, reload: Callable[[], Config] | None = None) -> None:
        """``reload`` reads the configuration again (SIGHUP); by default from the same
        home, as :meth:`Config.load` does."""
        self.config = config
        self._load = reload or (lambda: Config.load(config.home))
        self._told_status = ""
        # Submissions cut off by the shutdown deadline: their worker threads (a Rust
        # hash or copy cannot be interrupted) may still run when serve() returns.
        self.checkpointed = 0
        self.spool = Spool(config.spool)
        self.order = CommitOrder()
        self._states: dict[str, _State] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._counts: Counter[str] = Counter()
        self._finished: deque[str] = deque()
        self._lock_fd: int | None = None
        self.pipeline: Pipeline | None = None
        self._gc_lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then shut down within the deadline."""
        arm_crash_points()  # a test hook: a malformed value stops the daemon here
        self._lock_home()
        # Before activated_socket(), which clears what systemd passed.
        record_manager(self.config.home, systemd=systemd.started_us())
        for problem in share_with_group(self.config.home, self.spool.root, FOLDERS):
            log.warning("spool_mode_not_set", problem=problem, then="left as it is")
        # Made at every start, whatever the registry, so clients find the public key
        # whenever a daemon has run here (it is used only with a registry server).
        opener, made = ensure_key_pair(self.config.home)
        store = await open_node_store(self.config)
        await store.cleanup_tmp()
        registry = open_registry(self.config.registry, ca_file=self.config.registry_ca_file)
        server = self.config.registry_server
        self.pipeline = Pipeline(
            self.spool,
            store,
            registry,
            self.order,
            concurrency=self.config.pipeline_concurrency,
            reference_deadline=self.config.reference_deadline,
            chunk_entries=self.config.chunk_entries,
            settle=self._settle,
            on_status=self._on_status,
            caller_keys=None if server is None else CallerKeys(server, opener),
        )
        for work_path in self.spool.in_work():
            self._start(work_path)
        self.scan()
        self.sweep_staging()
        activated = systemd.activated_socket()
        runner = await start_server(self, self.config.socket, activated)
        # The socket file we bound, to remove at a clean stop (systemd's is systemd's).
        bound = None if activated is not None else _inode(self.config.socket)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        # "ready" is the first line a daemon logs (its unit's readiness is read from it);
        # a key pair made at this start is said there.
        made_keys = {"caller_keys_made": self.config.home / PUBLIC_NAME} if made else {}
        log.info(
            "ready", home=self.config.home, store=store.url, socket=self.config.socket, **made_keys
        )
        # What start-up made (modules, config, store, registry) lives as long as the
        # daemon: frozen, Python's cycle collector stops walking it at every full
        # collection, which a big submission's objects set off (building the items of
        # 10,000 snapshots took 0.11-0.17 s of CPU, 0.035-0.045 s frozen).
        gc.freeze()
        systemd.notify("READY=1", f"STATUS={self._status_line()}")
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._watch()
        finally:
            systemd.notify("STOPPING=1", "STATUS=stopping: finishing what is in flight")
            watchdog.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await runner.cleanup()
            if bound is not None and _inode(self.config.socket) == bound:
                self.config.socket.unlink(missing_ok=True)
            await self._drain()
            await store.close()
            close_registry(registry)
            self._unlock_home()
            log.info("stopped")

    def stop(self) -> None:
        """Ask the daemon to shut down (what SIGTERM does)."""
        self._stopping.set()

    def reload(self) -> None:
        """Read the configuration again (what SIGHUP does): apply what can change while
        running, and name what needs a restart."""
        try:
            fresh = self._load()
        except (ArtisyncError, OSError) as e:
            log.error("config_reload_failed", reason=str(e), kept="the running configuration")
            return
        old = self.config
        changed = [f.name for f in fields(Config) if getattr(fresh, f.name) != getattr(old, f.name)]
        live = [name for name in changed if name in LIVE_SETTINGS]
        self.config = replace(old, **{name: getattr(fresh, name) for name in live})
        log.info("config_reloaded", applied=",".join(live) or "nothing changed")
        if later := [name for name in changed if name not in LIVE_SETTINGS]:
            log.warning("config_needs_restart", settings=",".join(later))

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog from the event loop: a hung loop stops the pings."""
        interval = systemd.watchdog_interval()
        while interval is not None:
            systemd.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _status_line(self) -> str:
        q = self.queue_status()
        return (
            f"{q['queued']} queued, {q['working']} working, "
            f"{q['committed']} committed, {q['rejected']} rejected"
        )

    def _tell_status(self) -> None:
        line = self._status_line()
        if line != self._told_status:
            self._told_status = line
            systemd.notify(f"STATUS={line}")

    def _lock_home(self) -> None:
        self._lock_fd = lock_home(self.config.home)

    def _unlock_home(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _drain(self) -> None:
        if self._tasks:
            deadline = self.config.shutdown_deadline
            _, pending = await asyncio.wait(self._tasks, timeout=deadline)
            if pending:
                log.info("checkpointed", in_flight=len(pending), resumes="at the next start")
                self.checkpointed = len(pending)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- intake ---------------------------------------------------------------------

    async def _watch(self) -> None:
        new = self.spool.folder("new")
        next_sweep = time.monotonic() + SWEEP_SECONDS
        next_expiry = time.monotonic()
        next_gc = time.monotonic() + self.config.gc_interval
        async for _ in watchfiles.awatch(
            new,
            stop_event=self._stopping,
            debounce=50,
            step=10,
            rust_timeout=RESCAN_MS,
            yield_on_timeout=True,
            recursive=False,
        ):
            self.scan()
            self._tell_status()
            now = time.monotonic()
            if now >= next_sweep:
                self.sweep_staging()
                next_sweep = now + SWEEP_SECONDS
            if now >= next_expiry:
                self._background(self._expire())
                next_expiry = now + self.config.expire_interval
            if now >= next_gc:
                if self.pipeline is None or self.pipeline.store.refuses_collection() is None:
                    self._background(
                        self.collect_garbage(dry_run=False, grace_seconds=self.config.gc_grace)
                    )
                next_gc = now + self.config.gc_interval

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._housekeeping_done)

    def _housekeeping_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("housekeeping_failed", error=repr(task.exception()))

    async def _expire(self) -> None:
        """Delete versions whose TTL has passed (blobs go at the next collection)."""
        assert self.pipeline is not None
        expired = await asyncio.to_thread(expire, self.pipeline.registry, time.time())
        for version in expired:
            log.info("expired", version=version.qualified_name, why="its ttl passed")

    async def collect_garbage(self, *, dry_run: bool, grace_seconds: float) -> GcReport:
        """Expire versions and remove unreferenced blobs, with uploads held off."""
        assert self.pipeline is not None
        async with self._gc_lock, self.pipeline.gate.exclusive():
            return await collect(
                self.pipeline.store,
                self.pipeline.registry,
                self.spool,
                grace_seconds=grace_seconds,
                dry_run=dry_run,
            )

    def sweep_staging(self) -> None:
        """Remove snapshots left by training scripts that died before logging them."""
        in_use = self.spool.submission_ids() | set(self._states)
        for path in self.spool.abandoned_staging(in_use):
            log.info("abandoned_snapshots_removed", path=path, why="their process is gone")
            try:
                self.spool.remove_staging(path)
            except OSError as e:
                log.warning("cleanup_failed", path=path, error=str(e), then="at the next sweep")

    def scan(self) -> None:
        """Claim everything in ``new/``, in sequence order; set aside what no client
        would have put there, so it is neither read nor looked at again."""
        for stray in self.spool.strays():
            try:
                kept = self.spool.set_aside(stray)
            except OSError as e:
                log.warning("stray_not_moved", path=stray, error=str(e))
                continue
            log.warning(
                "stray_set_aside",
                name=repr(stray.name),
                kept=kept,
                why="not named <seq>-<id>.json as the SDK names submissions; never read",
            )
        for path in self.spool.pending():
            try:
                work_path = self.spool.claim(path)
            except OSError as e:
                if not is_disk_full(e):
                    raise
                # work/ could not grow: the submission stays in new/ (in order) and
                # the next rescan tries again.
                log.warning("disk_full", doing="claiming submissions", path=str(path))
                return
            if work_path is not None:
                crash_point("after_claim")
                self._start(work_path)

    def accept(self, tmp_name: str, peer: Peer | None = None) -> tuple[str, str]:
        """Take a submission a client wrote to ``spool/tmp``: number it and claim it.

        ``tmp_name`` must be ``<id>.json`` (checked before it is joined to any path).
        With the socket caller's credentials, the file must be a regular file that
        caller owns: one user cannot submit another's file.
        """
        sub_id = tmp_name.removesuffix(".json")
        if not tmp_name.endswith(".json") or not SUBMISSION_ID.fullmatch(sub_id):
            raise InvalidInputError(
                f"{tmp_name[:100]!r} is not a submission file name: <id>.json, the id 32 "
                "lowercase hex characters, as the SDK writes them to spool/tmp"
            )
        tmp_path = self.spool.folder("tmp") / tmp_name
        if peer is not None:
            self._check_owner(tmp_path, peer)
        seq = next_seq()
        work_path = self.spool.folder("work") / f"{seq}-{sub_id}.json"
        try:
            self.spool.claim_tmp(tmp_path, work_path)
        except FileNotFoundError:
            raise InvalidInputError(f"no submission {tmp_name!r} in spool/tmp") from None
        except OSError as e:
            if is_disk_full(e):  # the server answers 503: the client keeps its file
                raise disk_full_error(e, "cannot accept the submission", work_path) from e
            raise
        crash_point("after_claim")
        self._start(work_path)
        return sub_id, seq

    @staticmethod
    def _check_owner(tmp_path: Path, peer: Peer) -> None:
        """Refuse a submission file that is not a regular file of the caller's."""
        try:
            st = os.lstat(tmp_path)
        except FileNotFoundError:
            raise InvalidInputError(f"no submission {tmp_path.name!r} in spool/tmp") from None
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInputError(
                f"spool/tmp/{tmp_path.name} is not a regular file: submit only a file the SDK wrote"
            )
        if st.st_uid != peer.uid:
            raise InvalidInputError(
                f"spool/tmp/{tmp_path.name} belongs to another user (uid {st.st_uid}, "
                f"not the caller's {peer.uid}): submit only your own submission files"
            )

    def _start(self, work_path: Path) -> None:
        assert self.pipeline is not None
        seq, sub_id = parse_name(work_path.name)
        self.order.admit(seq)
        self._states[sub_id] = _State("queued", seq)
        self._counts["accepted"] += 1
        task = asyncio.create_task(self.pipeline.run(work_path), name=f"submission-{sub_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, seq: str) -> None:
        wait_ns = seq_time_ns(seq) + SETTLE_NS - time.time_ns()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)
        self.scan()

    # -- status ---------------------------------------------------------------------

    def _on_status(self, sub_id: str, status: str, result: dict[str, Any] | None) -> None:
        state = self._states.get(sub_id)
        if state is None:
            return
        state.status = status
        if status in TERMINAL:
            state.result = result
            self._counts[status] += 1
            state.done.set()
            self._finished.append(sub_id)
            if len(self._finished) > REMEMBER_FINISHED:
                self._states.pop(self._finished.popleft(), None)

    async def status_of(self, sub_id: str, wait: float) -> dict[str, Any]:
        """A submission's status, waiting up to ``wait`` seconds for it to finish."""
        state = self._states.get(sub_id)
        if state is None:
            found = await asyncio.to_thread(self.spool.find_result, sub_id)
            return found or {"id": sub_id, "status": "unknown"}
        if wait > 0 and not state.done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.done.wait(), wait)
        if state.result is not None:
            return state.result
        return {"id": sub_id, "status": state.status, "seq": state.seq}

    def queue_status(self) -> dict[str, Any]:
        """Counts since start, and the submissions not yet finished."""
        active = [
            {"id": sub_id, "status": s.status, "seq": s.seq}
            for sub_id, s in self._states.items()
            if s.status not in TERMINAL
        ]
        return {
            "pid": os.getpid(),
            "home": str(self.config.home),
            "store": self.pipeline.store.url if self.pipeline is not None else self.config.store,
            "registry": str(self.config.registry),
            "registry_down_since": (
                self.pipeline.registry_down_since if self.pipeline is not None else None
            ),
            "queued": sum(1 for s in active if s["status"] == "queued"),
            "working": sum(1 for s in active if s["status"] != "queued"),
            "accepted": self._counts["accepted"],
            "committed": self._counts["committed"],
            "rejected": self._counts["rejected"],
            "active": sorted(active, key=lambda s: s["seq"]),
        }


def _inode(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of ``path``, or None if it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
