"""Who is on the other end of the daemon's socket: the kernel's word (``SO_PEERCRED``).

A client cannot lie about these: the kernel records the credentials of the process that
connected. The daemon uses them to refuse work that is not the caller's own (a
submission file written by another user) and to bound what one caller may hold.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["Peer", "peer_of"]

# struct ucred: pid_t pid; uid_t uid; gid_t gid
_UCRED: Final = struct.Struct("=iII")


@dataclass(frozen=True, slots=True)
class Peer:
    """The process that connected: its pid, and its effective uid and gid."""

    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket | None) -> Peer | None:
    """The credentials of a Unix socket's peer; ``None`` for any other socket."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return None
    pid, uid, gid = _UCRED.unpack(raw)
    return Peer(pid, uid, gid)
