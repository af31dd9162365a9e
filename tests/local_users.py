"""Real users of a shared node, made with ``useradd`` (the tests run as root, as CI
does), and work done as one of them: in a forked child that drops to their uid, groups
and umask 007, as a job of the daemon's group runs. Forked, never exec'd: /root, where
this Python lives, is 0700."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["GROUP", "User", "as_user", "ensure_user", "needs_users"]

# The daemon's group in these tests.
GROUP = "artisync-t"

needs_users = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="making users needs root and useradd (CI runs as root)",
)


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    groups: list[int]


def ensure_user(name: str, group: str = GROUP) -> User:
    """The user ``name`` in ``group`` (both made if missing)."""
    try:
        grp.getgrnam(group)
    except KeyError:
        subprocess.run(["groupadd", group], check=True)
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", group, name],
            check=True,
        )
    entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid, os.getgrouplist(name, entry.pw_gid))


def as_user(user: User, work: Callable[[], Any]) -> Any:
    """``work()`` as ``user`` in a forked child; what it returned (as JSON). Fails if it
    raised (its traceback is on stderr)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            os.setgroups(user.groups)
            os.setgid(user.gid)
            os.setuid(user.uid)
            os.umask(0o007)
            os.write(write_end, json.dumps(work()).encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{user.name}'s work failed (see stderr)"
    return json.loads(answer)
