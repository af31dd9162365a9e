"""``artisync server`` as its users run it: a subprocess on 127.0.0.1 in front of a real
PostgreSQL. Several processes share one database; the probes and metrics answer; TLS
works with a certificate made here; bad input is refused with the field named; commits
are idempotent and numbered without gaps under concurrency. The registry's own rules are
the contract suite's (``[http]`` in ``registry_backends.py``)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import urllib3

from artisync.errors import InvalidInputError, RegistryError, RegistryUnavailableError
from artisync.manifest import Manifest, artifact_digest, md5_hex_to_b64
from artisync.registry.http import HttpRegistry
from artisync.store import open_directory
from conftest import TEST_API_KEY
from postgres_server import PostgresServer, running_postgres
from registry_backends import new_version
from server_process import DEADLINE, Server
from servers import free_port


@pytest.fixture(scope="module")
def shared_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the bad-input tests, with a small body limit (set through the
    environment, as a deployment would)."""
    name = postgres_server.create_database()
    server = Server(
        postgres_server.dsn(name),
        tmp_path_factory.mktemp("server") / "server.log",
        env={"ARTISYNC_SERVER_MAX_BODY_BYTES": "65536"},
    )
    try:
        server.wait_until("/healthz", 200)
        yield server
    finally:
        server.stop()
        postgres_server.drop_database(name)


def _send(server: Server, method: str, path: str, body: bytes | str) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    response = urllib3.request(
        method,
        server.url + path,
        body=data,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TEST_API_KEY}"},
        retries=False,
        timeout=10,
    )
    return response.status, json.loads(response.data)


def _commit_body(**fields: Any) -> dict[str, Any]:
    return new_version(uuid.uuid4().hex, **fields).to_json()


# -- processes, probes, metrics -----------------------------------------------------------


def test_two_server_processes_on_one_database_serve_the_same_registry(
    postgres_dsn: str, start_server: Callable[..., Server]
) -> None:
    first, second = start_server(postgres_dsn), start_server(postgres_dsn)
    with HttpRegistry(first.url) as a, HttpRegistry(second.url) as b:
        committed = a.commit_version(new_version("d0")).version
        assert b.get_version("proj", "model", "latest") == committed
        assert b.commit_version(new_version("d1")).version.index == 1
        assert [v.index for v in a.list_versions("proj", "model")] == [0, 1]
    for server in (first, second):
        assert server.get("/readyz").status == 200


def test_readyz_is_503_while_postgres_is_down_and_200_once_it_is_back(
    start_server: Callable[..., Server],
) -> None:
    with running_postgres() as postgres:
        server = start_server(postgres.dsn())
        server.wait_until("/readyz", 200)
        postgres.stop()
        server.wait_until("/readyz", 503)
        answer = json.loads(server.get("/readyz").data)
        assert answer["kind"] == "RegistryUnavailableError"
        started = time.monotonic()
        with (
            HttpRegistry(server.url) as client,
            pytest.raises(RegistryUnavailableError, match=server.url),
        ):
            client.list_projects()
        # Within the server's db_timeout (5 s) and a margin, not a multiple of it.
        assert time.monotonic() - started < 10
        assert server.get("/healthz").status == 200  # the process itself is fine
        postgres.start()
        server.wait_until("/readyz", 200)
        with HttpRegistry(server.url) as client:
            assert client.commit_version(new_version("after")).created


def test_metrics_count_requests_by_route_template_status_and_commits(
    postgres_dsn: str, start_server: Callable[..., Server]
) -> None:
    server = start_server(postgres_dsn)
    with HttpRegistry(server.url) as client:
        client.commit_version(new_version("d0"))
        client.commit_version(new_version("d0"))  # identical content: not a new version
        assert client.find_run("proj", "nobody") is None
    text = server.get("/metrics").data.decode()
    assert 'artisync_server_commits_total{outcome="created"} 1.0' in text
    assert 'artisync_server_commits_total{outcome="existing"} 1.0' in text
    route = "/api/v1/runs/{entity}/{project}/{run_id}"
    assert f'artisync_server_requests_total{{method="GET",route="{route}",status="404"}} 1.0' in (
        text
    )
    assert (
        'artisync_server_requests_total{method="POST",route="/api/v1/commits",status="200"} 2.0'
        in text
    )
    assert 'artisync_server_request_seconds_bucket{le="0.05",method="POST"' in text
    assert 'artisync_server_db_pool_connections{state="size"}' in text
    assert 'artisync_server_db_pool_connections{state="in_use"}' in text


def test_sigterm_stops_the_server_cleanly(
    postgres_dsn: str, start_server: Callable[..., Server]
) -> None:
    server = start_server(postgres_dsn)
    assert server.stop() == 0
    assert "stopped" in server.log()


def test_sigterm_lets_requests_in_flight_finish(
    postgres_dsn: str, start_server: Callable[..., Server]
) -> None:
    server = start_server(postgres_dsn)
    with HttpRegistry(server.url) as client:
        client.commit_version(new_version("d0"))
    answers: list[tuple[int, Any]] = []
    # Commits held in the database by a lock this test holds on their collection's row.
    with psycopg.connect(postgres_dsn) as holder:
        holder.execute("SELECT 1 FROM collections WHERE name = 'model' FOR UPDATE")
        senders = [
            threading.Thread(
                target=lambda: answers.append(
                    _send(server, "POST", "/api/v1/commits", json.dumps(_commit_body()))
                )
            )
            for _ in range(3)
        ]
        for sender in senders:
            sender.start()
        _wait_for(lambda: _sample(server.get("/metrics").data.decode(), _IN_FLIGHT) >= 4)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # stopping: no longer listening, the three still waiting
        assert server.proc.poll() is None
        with pytest.raises(urllib3.exceptions.HTTPError):
            urllib3.request("GET", server.url + "/healthz", retries=False, timeout=2)
        holder.rollback()
    for sender in senders:
        sender.join(DEADLINE)
    assert server.proc.wait(DEADLINE) == 0
    assert [status for status, _ in answers] == [200, 200, 200]
    assert sorted(answer["version"]["index"] for _, answer in answers) == [1, 2, 3]


_IN_FLIGHT = "artisync_server_requests_in_flight"


def _wait_for(condition: Callable[[], bool]) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < end, "condition never held"
        time.sleep(0.02)


def test_a_server_whose_database_is_down_at_start_exits_at_once_naming_it(
    tmp_path: Path,
) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/registry"
    server = Server(dsn, tmp_path / "server.log")
    assert server.proc.wait(DEADLINE) == 2
    log = server.log()
    assert "postgresql://postgres@127.0.0.1" in log and "is PostgreSQL running" in log


def test_an_unreachable_server_fails_fast_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with HttpRegistry(url) as client, pytest.raises(RegistryUnavailableError) as caught:
        client.list_projects()
    assert time.monotonic() - started < 5
    assert url in str(caught.value) and "artisync server" in str(caught.value)


# -- TLS ----------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, and that key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_serves_https_to_clients_that_trust_the_certificate(
    postgres_dsn: str, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    server = start_server(
        postgres_dsn, "--tls-cert", str(cert), "--tls-key", str(key), ca_file=cert
    )
    assert server.url.startswith("https://")
    with HttpRegistry(server.url, ca_file=str(cert)) as client:
        assert client.commit_version(new_version("d0")).version.index == 0
    with HttpRegistry(server.url) as untrusting, pytest.raises(RegistryError) as caught:
        untrusting.list_projects()
    # Not "unavailable": retrying cannot help, the client's trust must change.
    assert not isinstance(caught.value, RegistryUnavailableError)
    assert "ca_file" in str(caught.value)


# -- bad input ----------------------------------------------------------------------------


def test_malformed_json_is_400_naming_the_body(shared_server: Server) -> None:
    status, answer = _send(shared_server, "POST", "/api/v1/commits", '{"submission_id": ')
    assert status == 400
    assert answer["kind"] == "InvalidInputError" and answer["field"] == "body"
    assert answer["error"].startswith("body: must be a JSON object")


def test_unknown_field_is_400_naming_it(shared_server: Server) -> None:
    body = {**_commit_body(), "colour": "blue"}
    status, answer = _send(shared_server, "POST", "/api/v1/commits", json.dumps(body))
    assert (status, answer["field"]) == (400, "colour")
    assert "is not a field of a NewVersion" in answer["error"]


def test_wrong_type_is_400_naming_the_field(shared_server: Server) -> None:
    body = {**_commit_body(), "size": "ten"}
    status, answer = _send(shared_server, "POST", "/api/v1/commits", json.dumps(body))
    assert (status, answer["field"]) == (400, "size")
    assert "whole number" in answer["error"]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("name", "my model", "Invalid artifact name"),
        ("project", "a/b", "Invalid project"),
        ("aliases", ["ok", "has:colon"], "Invalid alias"),
        ("type", "wandb-internal", "Invalid artifact type"),
        ("store", "relative/dir", "a URL (s3://bucket/prefix"),
    ],
)
def test_names_breaking_the_rules_are_400_naming_the_field(
    shared_server: Server, field: str, value: Any, rule: str
) -> None:
    body = {**_commit_body(), field: value}
    status, answer = _send(shared_server, "POST", "/api/v1/commits", json.dumps(body))
    assert status == 400
    assert answer["field"] == ("aliases[1]" if field == "aliases" else field)
    assert rule in answer["error"]


def test_a_body_over_the_limit_is_413(shared_server: Server) -> None:
    body = {**_commit_body(), "description": "x" * 100_000}
    status, answer = _send(shared_server, "POST", "/api/v1/commits", json.dumps(body))
    assert status == 413
    assert answer["kind"] == "BodyTooLarge" and "65,536 bytes" in answer["error"]


def test_unknown_routes_and_methods_answer_json(shared_server: Server) -> None:
    status, answer = _send(shared_server, "GET", "/api/v1/nothing-here", b"")
    assert (status, answer["kind"]) == (404, "NoSuchRoute")
    status, answer = _send(shared_server, "DELETE", "/api/v1/commits", b"")
    assert (status, answer["kind"]) == (405, "MethodNotAllowed")
    assert "POST" in answer["error"]


def test_an_unknown_query_parameter_is_400(shared_server: Server) -> None:
    status, answer = _send(shared_server, "GET", "/api/v1/projects?limit=3", b"")
    assert (status, answer["field"]) == (400, "limit")


# -- commits ------------------------------------------------------------------------------


def test_a_commit_sent_again_returns_the_same_version(shared_server: Server) -> None:
    body = json.dumps(_commit_body(name="retried"))
    first = _send(shared_server, "POST", "/api/v1/commits", body)
    again = _send(shared_server, "POST", "/api/v1/commits", body)
    assert first[0] == again[0] == 200
    assert first[1] == again[1] and first[1]["created"] is True
    with HttpRegistry(shared_server.url) as client:
        assert [v.id for v in client.list_versions("proj", "retried")] == [
            first[1]["version"]["id"]
        ]
        submission = json.loads(body)["submission_id"]
        assert client.submission_result(submission) is not None


def test_every_version_answer_carries_the_store_even_when_none_was_recorded(
    shared_server: Server,
) -> None:
    without = _commit_body(name="stores")
    assert "store" not in without  # what a client that records no store sends
    status, answer = _send(shared_server, "POST", "/api/v1/commits", json.dumps(without))
    assert status == 200 and answer["version"]["store"] is None
    body = _commit_body(name="stores", store="s3://bucket/prefix")
    status, answer = _send(shared_server, "POST", "/api/v1/commits", json.dumps(body))
    assert status == 200 and answer["version"]["store"] == "s3://bucket/prefix"
    version_id = answer["version"]["id"]
    status, by_id = _send(shared_server, "GET", f"/api/v1/version-ids/{version_id}", b"")
    assert status == 200 and by_id == answer["version"]


def test_sixteen_threads_committing_through_http_get_gap_free_numbers(
    postgres_dsn: str, start_server: Callable[..., Server]
) -> None:
    server = start_server(postgres_dsn)
    per_thread, threads = 10, 16
    results: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    with HttpRegistry(server.url) as client:

        def writer(n: int) -> None:
            try:
                barrier.wait(DEADLINE)
                for i in range(per_thread):
                    result = client.commit_version(new_version(f"w{n}-{i}", name="shared"))
                    results[n].append(result.version.index)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(DEADLINE * 2)
        assert not errors, errors[0]
        indexes = sorted(i for mine in results for i in mine)
        assert indexes == list(range(threads * per_thread))
        for mine in results:
            assert mine == sorted(mine)  # each writer's own order kept
        assert len(client.list_versions("proj", "shared")) == threads * per_thread
    # Grouped: fewer transactions than commits, each commit counted once.
    metrics = server.get("/metrics").data.decode()
    batches = _sample(metrics, "artisync_server_commit_batch_size_count")
    assert _sample(metrics, "artisync_server_commit_batch_size_sum") == threads * per_thread
    assert batches < threads * per_thread
    created = _sample(metrics, 'artisync_server_commits_total{outcome="created"}')
    assert created == threads * per_thread


def _sample(metrics: str, name: str) -> float:
    """The value of one sample of the Prometheus text ``metrics``."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name} in:\n{metrics}")


def test_a_server_with_a_store_commits_only_what_is_all_there(
    postgres_server: PostgresServer, start_server: Callable[..., Server], tmp_path: Path
) -> None:
    root = tmp_path / "team-store"
    store = open_directory(root)
    server = start_server(
        postgres_server.dsn(postgres_server.create_database()), "--store", root.as_uri()
    )
    blob = tmp_path / "blob"
    blob.write_bytes(b"weights")
    md5 = hashlib.md5(b"weights").hexdigest()
    manifest = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"w.bin": {"digest": md5_hex_to_b64(md5), "size": 7}},
    }
    data = json.dumps(manifest).encode()
    absent = f"manifests/dd/{'d' * 32}.json"
    version = new_version("e" * 32, manifest_key=absent, store=root.as_uri())
    with HttpRegistry(server.url) as client:
        with pytest.raises(InvalidInputError, match=f"manifest {absent} is not in"):
            client.commit_version(version)
        forged = asyncio.run(store.put_manifest("d" * 32, data))
        with pytest.raises(InvalidInputError, match="lists other entries than that key's"):
            client.commit_version(replace(version, manifest_key=forged))
        digest = artifact_digest(Manifest.from_json(manifest).entries.values())
        key = asyncio.run(store.put_manifest(digest, data))
        listed = replace(version, submission_id=uuid.uuid4().hex, manifest_key=key)
        with pytest.raises(InvalidInputError, match=f"1 blob\\(s\\) .* \\({md5}\\)"):
            client.commit_version(listed)
        asyncio.run(store.put_blob(md5, blob, 7))
        assert client.commit_version(listed).version.version == "v0"
        elsewhere = replace(listed, submission_id=uuid.uuid4().hex, store="s3://other/x")
        with pytest.raises(InvalidInputError, match="this server serves the store"):
            client.commit_version(elsewhere)
