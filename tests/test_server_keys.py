"""API keys and the admin commands: what a key looks like, the only form the server keeps,
where clients find theirs, the first admin, and that no key ever reaches a log line, an
error message or a metric."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from artisync.credentials import api_key_for, save_key
from artisync.errors import InvalidInputError, UnauthorizedError
from artisync.registry.http import HttpRegistry
from artisync.server.access import keys
from artisync.server.access.secret import load_secret, make_secret
from server_process import Server


def test_a_key_is_256_random_bits_with_a_recognisable_prefix() -> None:
    made = {keys.new_key() for _ in range(100)}
    assert len(made) == 100
    for key in made:
        assert key.startswith("ask_") and len(key) == 47
        assert len(base64.urlsafe_b64decode(key[4:] + "=")) == 32


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer ask_abc", "ask_abc"),
        ("bearer   ask_abc ", "ask_abc"),
        # W&B's client: HTTP Basic, user "api", the key as password.
        ("Basic " + base64.b64encode(b"api:0123456789abcdef").decode(), "0123456789abcdef"),
        ("Basic " + base64.b64encode(b"someone:k").decode(), None),
        ("Basic not-base64!", None),
        ("Token ask_abc", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_the_authorization_header_gives_the_key(header: str | None, key: str | None) -> None:
    assert keys.read_authorization(header) == key


def test_the_secret_file_is_made_private_once_and_refused_when_others_read_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret"
    assert make_secret(path) and not make_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_secret(path)) == 32
    path.chmod(0o644)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        load_secret(path)
    with pytest.raises(InvalidInputError, match="no server secret"):
        load_secret(tmp_path / "missing")


def test_processes_making_the_secret_together_agree_and_never_read_it_half_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret"
    script = (
        "import sys; from pathlib import Path\n"
        "from artisync.server.access.secret import load_secret, make_secret\n"
        "p = Path(sys.argv[1]); made = make_secret(p)\n"
        "sys.stdout.write(f'{int(made)} {load_secret(p).hex()}')\n"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    answers = [racer.communicate(timeout=60)[0].split() for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    assert sum(int(made) for made, _ in answers) == 1
    assert {secret for _, secret in answers} == {path.read_bytes().hex()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_clients_read_the_key_from_the_environment_then_their_login_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ARTISYNC_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert api_key_for("https://a:8080") is None
    path = save_key("https://a:8080/", "ask_one")
    save_key("https://b:8080", "ask_two")
    save_key("https://a:8080", "ask_three")  # replaces the first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert api_key_for("https://a:8080") == "ask_three"
    assert api_key_for("https://b:8080/") == "ask_two"
    monkeypatch.setenv("WANDB_API_KEY", "from-wandb")
    assert api_key_for("https://a:8080") == "from-wandb"
    monkeypatch.setenv("ARTISYNC_API_KEY", "from-artisync")
    assert api_key_for("https://a:8080") == "from-artisync"


def _admin(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ARTISYNC_SERVER_SECRET_FILE": str(server.log_path.parent / "server-secret"),
    }
    return subprocess.run(
        [sys.executable, "-m", "artisync.cli", "server", "admin", "--db", server.dsn, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_the_admin_commands_make_users_teams_and_keys_that_work_at_once(
    postgres_dsn: str, start_server: Callable[..., Server]
) -> None:
    server = start_server(postgres_dsn)
    server.wait_until("/readyz", 200)
    for command in (
        ("create-user", "erin"),
        ("create-team", "nlp"),
        ("add-member", "nlp", "erin", "--role", "viewer"),
    ):
        done = _admin(server, *command)
        assert done.returncode == 0, done.stderr
    made = _admin(server, "create-key", "erin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ask_") and "\n" not in key
    taken = _admin(server, "create-team", "erin")
    assert taken.returncode != 0 and "taken" in taken.stderr
    with HttpRegistry(server.url, api_key=key) as erin:
        assert erin.list_projects() == []
        listed = _admin(server, "list-keys", "--user", "erin")
        assert key[:12] in listed.stdout and "erin" in listed.stdout
        assert key not in listed.stdout
        revoked = _admin(server, "revoke-key", key[:12])
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(UnauthorizedError):
            _until_refused(erin)
    # Stored only as a keyed hash: the key is nowhere in the database.
    with psycopg.connect(server.dsn) as conn:
        rows = conn.execute("SELECT prefix, digest FROM api_keys").fetchall()
    assert all(key.encode() not in bytes(digest) and len(digest) == 32 for _, digest in rows)


def _until_refused(client: HttpRegistry) -> Any:
    """Call until the server refuses (a revocation reaches it by notification, in
    milliseconds); return after 2 s if it never does."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        client.list_projects()
        time.sleep(0.01)
    return None


def test_a_first_start_makes_an_admin_whose_key_is_in_a_private_file_not_the_log(
    postgres_dsn: str, tmp_path: Path
) -> None:
    env = {"ARTISYNC_SERVER_BOOTSTRAP_KEY": ""}
    server = Server(postgres_dsn, tmp_path / "server.log", env=env)
    try:
        server.wait_until("/readyz", 200)
        key_file = tmp_path / "bootstrap-admin.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        with HttpRegistry(server.url, api_key=key) as admin:
            assert admin.list_projects() == []
        bad = "ask_" + "y" * 43
        with (
            HttpRegistry(server.url, api_key=bad) as stranger,
            pytest.raises(UnauthorizedError) as refused,
        ):
            stranger.list_projects()
        metrics = server.get("/metrics").data.decode()
    finally:
        server.stop()
    for text in (server.log(), str(refused.value), metrics):
        assert key not in text and bad not in text
    assert str(key_file) in server.log()


def test_two_processes_starting_together_make_one_first_admin(
    postgres_dsn: str, tmp_path: Path
) -> None:
    started = [Server(postgres_dsn, tmp_path / f"server-{i}.log") for i in range(3)]
    try:
        for server in started:
            server.wait_until("/readyz", 200)
        with psycopg.connect(postgres_dsn) as conn:
            users = conn.execute("SELECT name, site_admin FROM users").fetchall()
        assert users == [("admin", True)]
    finally:
        for server in started:
            server.stop()
