"""What systemd asks of a ``Type=notify`` service, without libsystemd.

- :func:`notify` sends ``READY=1``, ``STATUS=…``, ``WATCHDOG=1``, ``STOPPING=1`` as one
  datagram to ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace), and
  does nothing when the daemon was not started by systemd;
- :func:`watchdog_interval` is how often to ping: half of ``$WATCHDOG_USEC``, so that a
  hung event loop misses two pings and systemd restarts the daemon;
- :func:`activated_socket` is the listening socket of socket activation (``LISTEN_FDS``
  from fd 3, for this process only: ``LISTEN_PID``).

The protocol is a few lines (sd_notify(3), sd_listen_fds(3)); a dependency for it would
bring a C library or an unmaintained package.
"""

from __future__ import annotations

import os
import socket

__all__ = ["activated_socket", "notify", "started_us", "watchdog_interval"]

# The first file descriptor systemd passes (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3


def started_us() -> bool:
    """Whether systemd runs this daemon as a unit (it gave us a socket to notify, or
    the socket it listened on for us)."""
    return bool(os.environ.get("NOTIFY_SOCKET")) or os.environ.get("LISTEN_PID") == str(os.getpid())


def notify(*states: str) -> bool:
    """Tell systemd ``states`` (``"READY=1"``, ``"STATUS=…"``); False when not under it.

    A failure to send is ignored: the daemon's work must not depend on its supervisor.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not states:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(states).encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings, or None when systemd does not watch us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        seconds = int(usec) / 1e6
    except ValueError:
        return None
    return seconds / 2 if seconds > 0 else None


def activated_socket() -> socket.socket | None:
    """The Unix socket systemd opened for us (``artisync.socket``), or None.

    The variables are removed once read, so a child process never takes them as its own.
    """
    pid, count = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    if pid != str(os.getpid()) or not count:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if int(count) != 1:
        raise RuntimeError(
            f"systemd passed {count} sockets; artisync listens on one: "
            "give artisync.socket a single ListenStream="
        )
    sock = socket.socket(fileno=LISTEN_FDS_START)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise RuntimeError(
            "the socket systemd passed is not a Unix stream socket: "
            "use ListenStream=/run/artisync/daemon.sock"
        )
    os.set_inheritable(sock.fileno(), False)
    return sock
