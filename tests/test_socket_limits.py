"""The daemon's socket under callers that stall it or send it nonsense (issue 13).

Each test runs the real daemon and talks to its socket with raw sockets where a
well-behaved client could not misbehave the way the test needs. Timeouts and bounds are
set small in the home's config.toml so the tests take a second or two each.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artisync.config import Config
from artisync.sdk.client import DaemonClient
from artisync.spool import ArtifactInfo, ReferenceEntry, Submission
from daemon_harness import DaemonProcess, clean_env, short_home, wait_for

HEADER_TIMEOUT = 1
BODY_TIMEOUT = 1
PER_USER = 4
# How long past a deadline the daemon may take to act on it, on two busy shared cores.
SLACK = 4.0


def _start(home: Path, **settings: int) -> DaemonProcess:
    (home / "config.toml").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    daemon = DaemonProcess(home)
    daemon.start()
    return daemon


@pytest.fixture
def impatient(home: Path) -> Iterator[DaemonProcess]:
    """A daemon with one-second header and body deadlines."""
    daemon = _start(home, header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT)
    yield daemon
    daemon.kill()


@pytest.fixture(scope="module")
def strict() -> Iterator[DaemonProcess]:
    """One daemon, as shipped, for the tests of what it refuses (they change nothing)."""
    for home in short_home():
        daemon = _start(home)
        yield daemon
        daemon.kill()


@pytest.fixture
def bounded(home: Path) -> Iterator[DaemonProcess]:
    """A daemon that lets one user hold PER_USER connections (deadlines as shipped)."""
    daemon = _start(home, connections_per_user=PER_USER)
    yield daemon
    daemon.kill()


@pytest.fixture
def opened() -> Iterator[list[socket.socket]]:
    """The test's raw connections, closed at its end whatever happened."""
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def _connect(daemon: DaemonProcess, opened: list[socket.socket]) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    opened.append(sock)
    sock.settimeout(SLACK)
    sock.connect(str(daemon.config.socket))
    return sock


def _read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything the daemon sends until it closes the connection; fails if it is still
    open after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    received = b""
    while True:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise AssertionError(
                f"the connection is still open after {deadline:g} s; got {received!r}"
            ) from None
        if not chunk:
            return received
        received += chunk


def _ask(sock: socket.socket, path: str) -> int:
    """One keep-alive ``GET`` on an open connection: the status, or 0 if the daemon
    closed it instead of answering."""
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return 0
            received += chunk
    except (BrokenPipeError, ConnectionResetError):
        return 0
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(": ") for h in lines) if k == "Content-Length")
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1])


def _raw_request(daemon: DaemonProcess, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """A request with a body sent exactly as given (JSON's NaN, a NUL byte)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(SLACK)
        sock.connect(str(daemon.config.socket))
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        head, _, answer = _read_until_closed(sock, SLACK).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(answer)


def test_a_connection_that_never_finishes_its_headers_is_closed(
    impatient: DaemonProcess, opened: list[socket.socket]
) -> None:
    silent = _connect(impatient, opened)
    partial = _connect(impatient, opened)
    partial.sendall(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    started = time.monotonic()
    assert _read_until_closed(partial, HEADER_TIMEOUT + SLACK) == b""
    assert _read_until_closed(silent, HEADER_TIMEOUT + SLACK) == b""
    assert time.monotonic() - started >= HEADER_TIMEOUT * 0.5, "closed before its deadline"
    assert impatient.request("GET", "/v1/status")[0] == 200


def test_a_body_that_never_arrives_is_answered_408_and_closed(
    impatient: DaemonProcess, opened: list[socket.socket]
) -> None:
    sock = _connect(impatient, opened)
    sock.sendall(
        b"POST /v1/gc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"dry_run":'
    )
    answer = _read_until_closed(sock, BODY_TIMEOUT + SLACK)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"body did not arrive within 1 s" in answer


def test_a_long_poll_outlives_the_header_timeout(impatient: DaemonProcess, home: Path) -> None:
    # A reference to a server that accepts and never answers keeps the submission in
    # flight for as long as the test needs.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        host, port = mute.getsockname()
        submission = Submission(
            id=os.urandom(16).hex(),
            created_ns=time.time_ns(),
            project="p",
            artifact=ArtifactInfo(name="stuck", type="dataset"),
            entries=[ReferenceEntry(path="x", ref=f"http://{host}:{port}/x")],
        )
        client = DaemonClient(Config.load(home))
        assert client.hand_over(submission).route == "socket"
        started = time.monotonic()
        answer = client.status(submission.id, wait=HEADER_TIMEOUT * 2.5)
        assert answer is not None and answer["status"] not in ("committed", "rejected")
        assert time.monotonic() - started >= HEADER_TIMEOUT * 2.5


def _admitted(daemon: DaemonProcess, opened: list[socket.socket]) -> socket.socket:
    """A connection the daemon answers on. The harness's own connections are released
    a moment after they close, so one refused at first is tried again."""
    admitted: list[socket.socket] = []

    def attempt() -> bool:
        sock = _connect(daemon, opened)
        if _ask(sock, "/v1/status") == 200:
            admitted.append(sock)
            return True
        opened.remove(sock)
        sock.close()
        return False

    wait_for(attempt, SLACK, "the daemon to answer on a new connection")
    return admitted[0]


def test_connections_beyond_the_per_user_bound_are_closed_at_once(
    bounded: DaemonProcess, opened: list[socket.socket]
) -> None:
    held = [_admitted(bounded, opened) for _ in range(PER_USER)]
    excess = _connect(bounded, opened)
    try:
        excess.sendall(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed before the request went out: "at once" indeed
    else:
        # Well inside the header timeout (10 s): closed for the bound, not for slowness.
        assert _read_until_closed(excess, 2.0) == b""
    for sock in held:
        assert _ask(sock, "/v1/status") == 200, "a connection within the bound was cut"
    for sock in held:
        sock.close()
    wait_for(
        lambda: bounded.request("GET", "/v1/status")[0] == 200,
        SLACK,
        "the user's connections to be counted free again",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another user needs root")
def test_another_user_still_connects_while_one_holds_its_bound(
    bounded: DaemonProcess, home: Path, opened: list[socket.socket]
) -> None:
    # The other user keeps root's group, which the socket's mode 0660 lets in.
    home.chmod(0o710)
    for _ in range(PER_USER):
        _admitted(bounded, opened)
    read_end, write_end = os.pipe()
    # A forked child, not a new interpreter: the other user may not reach ours.
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        status = 0
        try:
            os.setresuid(65534, 65534, 65534)
            status = _ask(_connect(bounded, []), "/v1/status")
        finally:
            os.write(write_end, str(status).encode())
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as answer:
        assert answer.read() == "200"


@pytest.mark.parametrize(
    "grace", [b"NaN", b"Infinity", b"-Infinity", b"-1", b"true", b"1e400", b'"3600"', b"1e12"]
)
def test_gc_refuses_a_grace_that_is_not_a_finite_number(
    strict: DaemonProcess, grace: bytes
) -> None:
    status, answer = _raw_request(
        strict, "POST", "/v1/gc", b'{"dry_run": true, "grace_seconds": ' + grace + b"}"
    )
    assert status == 400, answer
    assert "grace_seconds must be a finite number of seconds from 0 to" in answer["error"]


def test_gc_still_takes_a_grace_in_range(strict: DaemonProcess) -> None:
    for grace in (0, 3600, 2.5):
        status, answer = strict.request("POST", "/v1/gc", {"dry_run": True, "grace_seconds": grace})
        assert (status, answer["dry_run"]) == (200, True)


@pytest.mark.parametrize("sub_id", ["*", "0" * 31 + "*", "A" * 32, "0" * 33, "..", "%2A"])
def test_a_glob_submission_id_is_refused(strict: DaemonProcess, sub_id: str) -> None:
    status, answer = strict.request("GET", f"/v1/submissions/{sub_id}?wait=0")
    assert status == 400, answer
    assert "is not 32 lowercase hex digits" in answer["error"]


@pytest.mark.parametrize(
    ("tmp", "says"),
    [
        ("a\0b.json", "contains a NUL byte"),
        ("a" * 300, "is 300 characters long"),
        ("a" * 295 + ".json", "is 300 characters long"),
        ("../" + "0" * 29 + ".json", 'is not "<id>.json"'),
        (7, 'missing "tmp"'),
    ],
)
def test_a_tmp_name_with_nul_or_too_long_is_refused_with_400(
    strict: DaemonProcess, tmp: object, says: str
) -> None:
    status, answer = strict.request("POST", "/v1/submissions", {"tmp": tmp})
    assert status == 400, answer
    assert says in answer["error"]
    assert strict.request("GET", "/v1/status")[1]["accepted"] == 0


@pytest.mark.parametrize("wait", ["nan", "inf", "-inf", "-1", "1e400", "soon"])
def test_a_wait_that_is_not_a_finite_time_is_refused(strict: DaemonProcess, wait: str) -> None:
    status, answer = strict.request("GET", f"/v1/submissions/{'0' * 32}?wait={wait}")
    assert status == 400, answer
    assert "wait must be a finite number of seconds >= 0" in answer["error"]


def _gc_command(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    command = [sys.executable, "-m", "artisync.cli", "--home", str(daemon.home), "gc", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_gc_command_collects_through_the_daemon_and_names_a_bad_grace(
    strict: DaemonProcess,
) -> None:
    done = _gc_command(strict, "--dry-run", "--json", "--grace", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dry_run"] is True
    refused = _gc_command(strict, "--grace", "nan")
    assert refused.returncode != 0
    assert "grace_seconds must be a finite number of seconds from 0 to" in refused.stderr
