"""Tests that mount small filesystems, run in a private mount namespace.

A test decorated with :func:`in_mount_namespace` runs again in a child pytest inside
``unshare --mount`` (as root) or ``unshare --user --map-root-user --mount`` (anyone
else, or a root that may not unshare alone), where :func:`mount_tmpfs` may mount what
it needs. The mounts exist only in that namespace: nothing leaks onto the machine, and
a killed test leaves no mount behind. The outer test passes when the inner one does,
and shows its output when it does not.

:class:`Ballast` fills a filesystem to the last page, and frees it again.
"""

from __future__ import annotations

import errno
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["Ballast", "in_mount_namespace", "inside", "mount_ext4", "mount_tmpfs", "pad_directory"]

INSIDE: Final = "ARTISYNC_TEST_MOUNT_NAMESPACE"
PAGE: Final = 4096
_ROOT: Final = Path(__file__).resolve().parent.parent
# The inner run gets the outer test's timeout, less a margin to report it.
_INNER_TIMEOUT: Final = 110.0
_PREFIXES: Final = (
    ("unshare", "--mount"),
    ("unshare", "--user", "--map-root-user", "--mount"),
)

F = TypeVar("F", bound=Callable[..., Any])


def inside() -> bool:
    """Whether this is the inner run, in the namespace (fixtures that mount ask this:
    the outer run makes its fixtures too, and must not mount)."""
    return os.environ.get(INSIDE) == "1"


@functools.cache
def namespace_prefix() -> tuple[str, ...]:
    """The first ``unshare`` command line in which mounting a tmpfs works here."""
    refusals = []
    with tempfile.TemporaryDirectory(prefix="as-ns-") as probe:
        for prefix in _PREFIXES:
            command = [*prefix, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode == 0:
                return prefix
            refusals.append(f"{' '.join(prefix)}: {result.stderr.strip()}")
    raise RuntimeError(
        "cannot mount a tmpfs in a private mount namespace ("
        + "; ".join(refusals)
        + "): these tests need util-linux's unshare, and root or unprivileged user "
        "namespaces (sysctl kernel.unprivileged_userns_clone=1)"
    )


def in_mount_namespace(test: F) -> F:
    """Run ``test`` inside a private mount namespace (see the module's docstring)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        if inside():
            return test(*args, **kwargs)
        node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        command = [*namespace_prefix(), sys.executable, "-m", "pytest", "-q", "-x"]
        command += ["-p", "no:cacheprovider", node]
        result = subprocess.run(
            command,
            cwd=_ROOT,
            env={**os.environ, INSIDE: "1"},
            capture_output=True,
            text=True,
            timeout=_INNER_TIMEOUT,
        )
        assert result.returncode == 0, (
            f"inside {' '.join(command)}:\n{result.stdout}{result.stderr}"
        )
        return None

    return run  # type: ignore[return-value]


def mount_tmpfs(path: Path, size: str, *options: str) -> None:
    """Mount a tmpfs of ``size`` (``"4m"``) on ``path``; only inside the namespace."""
    assert inside(), "mount only inside @in_mount_namespace"
    path.mkdir(parents=True, exist_ok=True)
    option = ",".join([f"size={size}", *options])
    subprocess.run(["mount", "-t", "tmpfs", "-o", option, "tmpfs", str(path)], check=True)


def mount_ext4(path: Path, image: Path, size: str, inodes: int = 2048) -> None:
    """Mount a fresh ext4 of ``size`` (``"8M"``) from the file ``image`` on ``path``;
    only inside the namespace.

    Unlike a tmpfs, ext4 refuses a rename with ``ENOSPC`` when the target directory
    needs a new block and none is free (see :func:`pad_directory`). No reserved blocks
    (the tests run as root) and no journal, so what fills it is what the test wrote.
    """
    assert inside(), "mount only inside @in_mount_namespace"
    path.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(_bytes(size))
    mkfs = ["mkfs.ext4", "-q", "-F", "-b", str(PAGE), "-m", "0", "-N", str(inodes)]
    mkfs += ["-O", "^has_journal"]
    subprocess.run([*mkfs, str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(path)], check=True)


def _bytes(size: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(size[:-1]) * units[size[-1].lower()]


def pad_directory(directory: Path) -> list[Path]:
    """Fill ``directory``'s blocks with empty files until the filesystem (already full
    of :class:`Ballast`) refuses another entry; returns them, to remove later."""
    pads: list[Path] = []
    while True:
        path = directory / f"pad-{len(pads):05d}"
        try:
            path.touch()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            return pads
        pads.append(path)


# Fills (each followed by a sync) before a filesystem that still takes writes is an error.
_FILL_ROUNDS = 5


class Ballast:
    """Files that fill a filesystem; :meth:`release` gives the space back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: list[Path] = []

    def fill(self) -> None:
        """Write until the filesystem has no page left.

        ext4's delayed allocation reserves more than it finally uses, and gives the
        difference back when writeback catches up, possibly just after a fill saw
        ENOSPC: so fill, sync, and fill again until a one-byte probe is refused.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(_FILL_ROUNDS):
            self._write_until_full()
            os.sync()
            if not self._takes_a_write():
                return
        raise AssertionError(f"{self.directory}'s filesystem still takes writes")

    def _write_until_full(self) -> None:
        for chunk in (1 << 20, PAGE):
            path = self.directory / f"ballast-{len(self._files)}"
            self._files.append(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
            finally:
                os.close(fd)

    def _takes_a_write(self) -> bool:
        probe = self.directory / "probe"
        try:
            probe.write_bytes(b"x")
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            return False
        finally:
            probe.unlink(missing_ok=True)
        return True

    def release(self) -> None:
        """Remove the ballast."""
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()
