"""Handing submissions to the node's daemon, and waiting for what became of them.

The daemon serves HTTP/1.1 on a Unix socket (``config.socket``). This client uses only
the standard library (``http.client`` over an ``AF_UNIX`` socket), so a training script
needs no event loop and pays no import cost for one.

Hand-over: the SDK writes the submission to ``spool/tmp`` first, then asks the daemon
to take it (``POST /v1/submissions``); the daemon numbers it and moves it out of
``tmp/`` itself, so the order of acceptance is the commit order. When nothing answers on
the socket the client publishes the file into ``spool/new`` itself, where the daemon
finds it when it starts. Whoever renames the file out of ``tmp/`` first owns it, so a
daemon that accepted the file just as the client gave up on it is never a double
submission.

No daemon: the client starts one (:mod:`artisync.launch`) right after publishing, or
warns once, at once, when it may not, naming the command that starts one.

Waiting: long-poll ``GET /v1/submissions/<id>?wait=`` while the daemon is up, and look
for the receipt in ``spool/done`` or ``spool/failed`` (with a backoff) while it is not.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

from artisync import _core
from artisync.config import Config
from artisync.credentials import api_key_for
from artisync.errors import ArtisyncError, NoDaemonWarning, SubmissionError
from artisync.launch import LOG_NAME, ensure_daemon, why_not_autostarted
from artisync.registry.http.acting import acting_key
from artisync.spool import SealedKey, Spool, StagedEntry, StagedListEntry, Submission

__all__ = ["TERMINAL", "DaemonClient", "HandOver", "UnixHTTPConnection"]

TERMINAL: Final = frozenset({"committed", "rejected"})
"""Statuses after which a submission never changes again."""

# Accepting a submission is a rename on the daemon's side: if it takes longer than
# this the daemon is wedged, and the training script must not wait for it.
SUBMIT_TIMEOUT: Final = 2.0
# One long poll asks for at most this long, so a wait() with no timeout still re-checks
# the spool now and then, and notices a daemon that stopped answering.
LONG_POLL_MAX: Final = 30.0
# A collection reads every live manifest; on a big store that takes minutes.
GC_TIMEOUT: Final = 3600.0
# Extra time the socket gets over the long poll it asked for, before we call it hung.
LONG_POLL_SLACK: Final = 5.0
# Backoff while the daemon is down (or does not know the submission yet).
BACKOFF_FIRST: Final = 0.02
BACKOFF_MAX: Final = 1.0
# While waiting with no daemon answering, how often to see whether one must be started.
RESTART_CHECK: Final = 2.0

# The package's folder: a warning points at the first frame outside it.
_PACKAGE: Final = str(Path(__file__).parents[1]) + "/"

# Homes already warned about in this process: one warning each, not one per artifact.
_warned: set[Path] = set()

# What a connection attempt raises when no daemon is listening: the socket file is
# missing (FileNotFoundError), stale (ConnectionRefusedError), not ours to open
# (PermissionError), the path is too long for AF_UNIX (OSError), or the daemon died
# or hung mid-request (ConnectionError, TimeoutError, HTTPException).
_UNREACHABLE: Final = (OSError, http.client.HTTPException)


class UnixHTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` to a server listening on a Unix socket."""

    def __init__(self, socket_path: Path | str, timeout: float) -> None:
        # The host only fills the Host header; the socket path decides where we connect.
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(socket_path)

    def connect(self) -> None:
        """Open the Unix socket instead of a TCP connection."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True, slots=True)
class HandOver:
    """How a submission reached the daemon.

    ``route`` is ``"socket"`` when the daemon accepted it (``seq`` is the sequence
    number it assigned) and ``"spool"`` when the client published it into ``new/``
    itself because the daemon did not answer (``path`` is where it went).
    """

    route: Literal["socket", "spool"]
    seq: str | None = None
    path: Path | None = None


class DaemonClient:
    """Talks to the daemon of one artisync home, falling back to its spool directory."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.socket_path = Path(config.socket)
        self._spool: Spool | None = None

    @property
    def spool(self) -> Spool:
        """The spool directory, opened (and created) on first use."""
        if self._spool is None:
            self._spool = Spool(self.config.spool)
        return self._spool

    # -- talking HTTP ------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: Any, timeout: float
    ) -> tuple[int, dict[str, Any]]:
        """One request; raises one of ``_UNREACHABLE`` when nothing sensible answers."""
        conn = UnixHTTPConnection(self.socket_path, timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = {}
        return response.status, answer if isinstance(answer, dict) else {}

    def queue_status(self) -> dict[str, Any] | None:
        """The daemon's ``GET /v1/status``, or ``None`` if no daemon answers."""
        try:
            status, answer = self._request("GET", "/v1/status", None, SUBMIT_TIMEOUT)
        except _UNREACHABLE:
            return None
        return answer if status == 200 else None

    def progress(self) -> dict[str, Any] | None:
        """The daemon's ``GET /v1/progress`` (each submission's stage, bytes, rate and
        ETA), or ``None`` if no daemon answers."""
        try:
            status, answer = self._request("GET", "/v1/progress", None, SUBMIT_TIMEOUT)
        except _UNREACHABLE:
            return None
        return answer if status == 200 else None

    def status(self, sub_id: str, wait: float = 0.0) -> dict[str, Any] | None:
        """A submission's status from the daemon, long-polling up to ``wait`` seconds.

        ``None`` when no daemon answers (or it answers something other than 200).
        """
        path = f"/v1/submissions/{quote(sub_id, safe='')}?wait={wait:.3f}"
        try:
            status, answer = self._request("GET", path, None, wait + LONG_POLL_SLACK)
        except _UNREACHABLE:
            return None
        return answer if status == 200 and "status" in answer else None

    def collect_garbage(self, *, dry_run: bool, grace_seconds: float) -> dict[str, Any] | None:
        """Ask the daemon to collect garbage (``POST /v1/gc``) and return its report;
        ``None`` when no daemon runs (the caller collects itself)."""
        if self.queue_status() is None:
            return None
        body = {"dry_run": dry_run, "grace_seconds": grace_seconds}
        status, answer = self._request("POST", "/v1/gc", body, GC_TIMEOUT)
        if status != 200:
            raise ArtisyncError(f"the daemon could not collect garbage: {answer.get('error')}")
        return answer

    # -- handing over ----------------------------------------------------------------

    def hand_over(self, submission: Submission) -> HandOver:
        """Write ``submission`` durably and give it to the daemon, or to the spool.

        Returns as soon as the submission is the daemon's responsibility: it never
        waits for hashing or uploads.

        Raises:
            InvalidInputError: the submission cannot be serialised (non-JSON metadata).
            SubmissionError: the daemon answered that the submission is malformed.
        """
        submission = self._with_sealed_key(submission)
        tmp_path = self.spool.write_tmp(submission)
        try:
            status, answer = self._request(
                "POST", "/v1/submissions", {"tmp": tmp_path.name}, SUBMIT_TIMEOUT
            )
        except _UNREACHABLE:
            handed = self._publish(tmp_path)
            self.start_daemon(submission.id)
            return handed
        if status == 202:
            if any(isinstance(e, StagedEntry | StagedListEntry) for e in submission.entries):
                # The writeback hint, for speed only: what it does, why it lives here
                # and why only now is written at the door of the store's protocol
                # (rust/local_store/mod.rs, "The writeback hint").
                _core.start_writeback(self.spool.root)
            seq = answer.get("seq")
            return HandOver("socket", seq=seq if isinstance(seq, str) else None)
        if status == 400 and tmp_path.exists():
            # The daemon looked at the file and refused it: queueing it in new/ would
            # only get it rejected later, so fail here, in the training script.
            tmp_path.unlink(missing_ok=True)
            error = answer.get("error") or f"HTTP {status}"
            raise SubmissionError(
                f"the artisync daemon refused submission {submission.id}: {error}"
            )
        # Anything else (a 5xx, an unexpected answer) is the daemon's problem, not the
        # submission's: queue it in the spool, where a healthy daemon will find it.
        return self._publish(tmp_path)

    def _with_sealed_key(self, submission: Submission) -> Submission:
        """With a registry server, ``submission`` carrying the caller's API key sealed
        for the daemon, which commits it with that key (``daemon/caller_keys.py``).
        Unchanged with the embedded registry, without a key, or when no daemon has made
        its key pair in this home yet (the daemon then uses its own key for its own
        user, and refuses anyone else's submission, saying why).

        Raises :class:`~artisync.errors.SealedKeyError` when the home's public key is
        not the daemon's: the key is never sealed with it.
        """
        server = self.config.registry_server
        # The key this process acts with: one set by acting_as, else the caller's own.
        if server is None or (api_key := acting_key() or api_key_for(server)) is None:
            return submission
        # Imported here: only nodes on a server load the cryptography package.
        from artisync.sealed_keys import read_public_key, seal

        public = read_public_key(self.config.home)
        if public is None:
            return submission
        server = server.rstrip("/")
        sealed = seal(public, api_key, submission_id=submission.id, uid=os.geteuid(), server=server)
        return replace(submission, sealed_key=SealedKey(server, sealed))

    def _publish(self, tmp_path: Path) -> HandOver:
        try:
            return HandOver("spool", path=self.spool.publish(tmp_path))
        except FileNotFoundError:
            # The daemon renamed it out of tmp/ before failing to answer: it has it.
            return HandOver("socket")

    def start_daemon(self, sub_id: str | None = None) -> str | None:
        """No daemon answers: start one (detached), or warn once that none will start.

        Returns None when a daemon is starting or running, else why none will.
        """
        reason = ensure_daemon(self.config)
        if reason is not None and self.config.home not in _warned:
            _warned.add(self.config.home)
            what = f"submission {sub_id}" if sub_id else "what is logged"
            warnings.warn(
                f"no artisync daemon answers on {self.socket_path} and none was started: "
                f"{reason}. {what.capitalize()} waits in {self.config.spool / 'new'} and "
                f"commits once a daemon runs: start one with "
                f"`artisync --home {self.config.home} daemon`",
                NoDaemonWarning,
                stacklevel=_first_caller_outside_artisync(),
            )
        return reason

    @property
    def daemon_log(self) -> Path:
        """Where a daemon a client started writes its log."""
        return self.config.home / LOG_NAME

    # -- waiting -----------------------------------------------------------------------

    def wait(self, sub_id: str, timeout: float | None, what: str) -> dict[str, Any]:
        """Block until the submission is committed or rejected; return that result.

        ``what`` names the submission in the timeout message (e.g. ``artifact 'model'``).
        The result has the shape of the daemon's terminal answers (``status`` is
        ``"committed"`` or ``"rejected"``) wherever it came from.

        Raises:
            TimeoutError: after ``timeout`` seconds, saying whether the daemon is up.
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        delay = BACKOFF_FIRST
        next_start_check = time.monotonic()
        while True:
            remaining = LONG_POLL_MAX if deadline is None else deadline - time.monotonic()
            asked = max(0.0, min(remaining, LONG_POLL_MAX))
            started = time.monotonic()
            last = self.status(sub_id, asked)
            if last is None:
                # No daemon: its receipts are in the spool (a running daemon looks there
                # itself for submissions it no longer holds in memory).
                last_known = self.spool.find_result(sub_id)
                if last_known is not None and last_known.get("status") in TERMINAL:
                    return last_known
                if time.monotonic() >= next_start_check:
                    # The daemon may have stopped since the hand-over: start another.
                    self.start_daemon(sub_id)
                    next_start_check = time.monotonic() + RESTART_CHECK
            elif last.get("status") in TERMINAL:
                return last
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(sub_id, timeout or 0.0, what, last))
            if last is not None and asked > 0 and time.monotonic() - started >= asked * 0.9:
                # A full long poll already spent the time: ask again at once.
                delay = BACKOFF_FIRST
                continue
            # The daemon is down, does not know the submission yet (it is still in
            # new/), or answered early: poll again after a growing pause.
            pause = delay if deadline is None else min(delay, deadline - time.monotonic())
            if pause > 0:
                time.sleep(pause)
            delay = min(delay * 2, BACKOFF_MAX)

    def _timeout_message(
        self, sub_id: str, timeout: float, what: str, last: dict[str, Any] | None
    ) -> str:
        head = f"{what} (submission {sub_id}) was not committed within {timeout:g} s"
        if last is None:
            reason = why_not_autostarted(self.config)
            started = (
                f"one was started and logs to {self.daemon_log}: see there why it does not answer"
                if reason is None
                else f"none was started ({reason}): run `artisync --home {self.config.home} "
                "daemon`, or start its systemd unit"
            )
            return (
                f"{head}: no artisync daemon answers on {self.socket_path}; {started}. The "
                f"submission is safe in {self.config.spool} and commits once a daemon runs; "
                "then wait again"
            )
        status = last.get("status")
        if status == "unknown":
            return (
                f"{head}: the daemon is running but has not picked the submission up from "
                f"{self.config.spool / 'new'} yet; wait again with a longer timeout"
            )
        return (
            f"{head}: the daemon is running and reports it as {status!r}; "
            "wait again with a longer timeout"
        )


def _first_caller_outside_artisync() -> int:
    """The ``stacklevel`` that makes a warning name the user's line (``log_artifact``
    is reached through several of our frames, more for some calls than others)."""
    level, frame = 2, sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    return level
