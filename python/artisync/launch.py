"""Who starts a home's daemon: a person (``artisync daemon``), systemd, or a client that
needs one and finds none answering.

A training script never starts anything by hand with W&B, so it should not here either:
when the SDK or ``artisync log`` hands over a submission and nothing answers on the
socket, :func:`ensure_daemon` starts one, detached from the caller (its own session,
its output appended to ``HOME/daemon.log``), on the same home and settings. The
submission is already safe in ``spool/new``, where the new daemon finds it, so the
caller never waits for the start.

It is not started when:

- ``autostart = false`` (config.toml) or ``ARTISYNC_AUTOSTART=0``;
- systemd manages the home (the daemon leaves ``HOME/managed-by-systemd`` when systemd
  started it): starting a second, unmanaged one as whoever ran the script would fight
  the unit;
- the home is not the caller's to write (a shared home another user's daemon serves).

Many processes may find no daemon at once (eight ranks of one training job): a launch
is decided under a lock on ``HOME/autostart.lock``, which records the pid it started,
so they start one daemon between them. Should two start anyway, the home's lock lets
one serve and the other exit.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

from artisync.config import Config
from artisync.home_lock import lock_holder, pid_alive

__all__ = ["LOG_NAME", "ensure_daemon", "record_manager", "why_not_autostarted"]

LOG_NAME: Final = "daemon.log"
_MANAGED: Final = "managed-by-systemd"
_LAUNCH_LOCK: Final = "autostart.lock"
# A daemon we started takes this long at most to take the home's lock (Python start,
# imports); until then, another client must not start a second one.
_STARTING_SECONDS: Final = 30.0
# The log is kept one generation back once it passes this size.
_LOG_ROTATE_BYTES: Final = 16 << 20
# What systemd passes a service: a daemon started from a script that runs under a unit
# must not think the socket or the notifications are its own.
_SYSTEMD_VARIABLES: Final = (
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
)


def record_manager(home: Path, *, systemd: bool) -> None:
    """Called by a starting daemon: mark ``home`` as systemd's, or as nobody's."""
    marker = home / _MANAGED
    if systemd:
        marker.write_text("this home's daemon runs as a systemd unit; clients do not start one\n")
    else:
        marker.unlink(missing_ok=True)


def why_not_autostarted(config: Config) -> str | None:
    """Why no daemon would be started for ``config``'s home, or None if one would be."""
    home = config.home
    if not config.autostart:
        return "autostart is off (ARTISYNC_AUTOSTART=0, or autostart = false in config.toml)"
    if (home / _MANAGED).exists():
        return f"systemd manages the daemon of {home}: start it with `systemctl start artisync`"
    probe = home if home.exists() else _existing_parent(home)
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not yours to write: ask whoever runs its daemon to start it"
    return None


def ensure_daemon(config: Config) -> str | None:
    """Start the home's daemon unless one runs, is starting, or may not be started.

    Returns None when a daemon runs or is on its way, else why none will be (the
    reason :func:`why_not_autostarted` gives). Never waits for the daemon to answer.
    """
    if (reason := why_not_autostarted(config)) is not None:
        return reason
    home = config.home
    if lock_holder(home) is not None:
        return None
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / _LAUNCH_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if lock_holder(home) is not None or _still_starting(fd):
            return None
        pid = _spawn(config)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{pid} {time.time():.3f}".encode(), 0)
    finally:
        os.close(fd)
    return None


def _still_starting(fd: int) -> bool:
    """Whether the daemon the last launch started may still be on its way to the lock."""
    fields = os.pread(fd, 64, 0).decode(errors="replace").split()
    if len(fields) != 2 or not pid_alive(fields[0]):
        return False
    try:
        started = float(fields[1])
    except ValueError:
        return False
    return time.time() - started < _STARTING_SECONDS


def _spawn(config: Config) -> int:
    """Start ``artisync --home HOME daemon`` detached; returns its pid."""
    log_path = config.home / LOG_NAME
    _rotate(log_path)
    env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_VARIABLES}
    command = [sys.executable, "-m", "artisync.cli", "--home", str(config.home), "daemon"]
    with open(log_path, "ab") as log, open(os.devnull, "rb") as nothing:
        log.write(f"--- started by pid {os.getpid()} ({' '.join(sys.argv[:1])})\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=nothing,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=config.home,
            env=env,
            start_new_session=True,  # Ctrl-C in the caller's terminal is not for it
        )
    # Reaped in the background, so it never lingers as a zombie of a long training run;
    # if the caller exits first, init adopts it.
    threading.Thread(target=process.wait, name="artisync-daemon-reaper", daemon=True).start()
    return process.pid


def _rotate(log_path: Path) -> None:
    try:
        if log_path.stat().st_size > _LOG_ROTATE_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
    except FileNotFoundError:
        pass


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
