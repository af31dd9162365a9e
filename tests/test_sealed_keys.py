"""A caller's API key sealed for the node's daemon: it opens only there, only for the
submission, user and server it was sealed for, and the daemon's key pair is made once,
private to the daemon."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from artisync.errors import SealedKeyError, SubmissionError
from artisync.sealed_keys import (
    PRIVATE_NAME,
    PUBLIC_NAME,
    ensure_key_pair,
    load_opener,
    read_public_key,
    seal,
)
from artisync.spool import ArtifactInfo, SealedKey, Submission

KEY = "ask_" + "k" * 43
SERVER = "https://registry.example:8080"
SUB = "0123456789abcdef0123456789abcdef"


def _sealed(home: Path, **bound: object) -> str:
    public = read_public_key(home)
    assert public is not None
    where = {"submission_id": SUB, "uid": 1000, "server": SERVER, **bound}
    return seal(public, KEY, **where)


def test_a_sealed_key_opens_with_the_daemons_key_for_what_it_was_sealed_for(
    tmp_path: Path,
) -> None:
    opener, made = ensure_key_pair(tmp_path)
    assert made
    sealed = _sealed(tmp_path)
    assert KEY not in sealed
    assert opener.open(sealed, submission_id=SUB, uid=1000, server=SERVER) == KEY
    # The server as the settings may write it, with a slash.
    assert opener.open(sealed, submission_id=SUB, uid=1000, server=SERVER + "/") == KEY
    assert _sealed(tmp_path) != sealed, "each seal is fresh (ephemeral key, nonce)"


@pytest.mark.parametrize(
    "other",
    [
        {"submission_id": "f" * 32},
        {"uid": 1001},
        {"server": "https://elsewhere.example:8080"},
    ],
    ids=["another submission", "another user", "another server"],
)
def test_a_sealed_key_does_not_open_for_another_submission_user_or_server(
    tmp_path: Path, other: dict[str, object]
) -> None:
    opener, _ = ensure_key_pair(tmp_path)
    sealed = _sealed(tmp_path)
    where = {"submission_id": SUB, "uid": 1000, "server": SERVER, **other}
    with pytest.raises(SealedKeyError, match="does not open"):
        opener.open(sealed, **where)


def test_a_tampered_or_foreign_sealed_key_does_not_open(tmp_path: Path) -> None:
    opener, _ = ensure_key_pair(tmp_path)
    sealed = _sealed(tmp_path)
    raw = bytearray(base64.urlsafe_b64decode(sealed[2:]))
    where = {"submission_id": SUB, "uid": 1000, "server": SERVER}
    for index in (0, 40, len(raw) - 1):  # ephemeral key, nonce/ciphertext, tag
        changed = bytearray(raw)
        changed[index] ^= 1
        tampered = "1." + base64.urlsafe_b64encode(bytes(changed)).decode()
        with pytest.raises(SealedKeyError, match="does not open"):
            opener.open(tampered, **where)
    for garbage in ("", "1.", "2." + sealed[2:], "1.!!!", "1." + "A" * 5000, KEY):
        with pytest.raises(SealedKeyError, match="not one artisync seals"):
            opener.open(garbage, **where)
    # Sealed for another daemon: the pair made again after the file was removed.
    (tmp_path / PRIVATE_NAME).unlink()
    fresh, made = ensure_key_pair(tmp_path)
    assert made
    with pytest.raises(SealedKeyError, match="another daemon key"):
        fresh.open(sealed, **where)


def test_the_key_pair_is_private_public_and_made_once_by_processes_starting_together(
    tmp_path: Path,
) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from artisync.sealed_keys import ensure_key_pair\n"
        "opener, made = ensure_key_pair(Path(sys.argv[1]))\n"
        "sys.stdout.write(f'{int(made)} {opener.public_text().strip()}')\n"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    answers = [racer.communicate(timeout=60)[0].split() for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    assert sum(int(made) for made, _ in answers) == 1
    public = (tmp_path / PUBLIC_NAME).read_text().strip()
    assert {text for _, text in answers} == {public}
    assert sorted(p.name for p in tmp_path.iterdir()) == [PRIVATE_NAME, PUBLIC_NAME]
    assert stat.S_IMODE((tmp_path / PRIVATE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / PUBLIC_NAME).stat().st_mode) == 0o644
    # A later start keeps the pair, and writes the public half again if it went.
    (tmp_path / PUBLIC_NAME).write_text("not a key\n")
    _, made = ensure_key_pair(tmp_path)
    assert not made and (tmp_path / PUBLIC_NAME).read_text().strip() == public


def test_a_private_key_others_may_read_is_refused(tmp_path: Path) -> None:
    ensure_key_pair(tmp_path)
    (tmp_path / PRIVATE_NAME).chmod(0o640)
    with pytest.raises(SealedKeyError, match="may be read by others"):
        load_opener(tmp_path)
    (tmp_path / PRIVATE_NAME).chmod(0o600)
    (tmp_path / PRIVATE_NAME).write_bytes(b"short")
    with pytest.raises(SealedKeyError, match="not a key artisync made"):
        load_opener(tmp_path)


def test_no_public_key_seals_nothing_and_a_public_key_not_the_homes_owners_is_refused(
    tmp_path: Path,
) -> None:
    assert read_public_key(tmp_path) is None
    ensure_key_pair(tmp_path)
    public = tmp_path / PUBLIC_NAME
    if os.geteuid() == 0:  # another owner: root can make one
        os.chown(public, 65534, 65534)
        with pytest.raises(SealedKeyError, match="not the daemon's"):
            read_public_key(tmp_path)
    public.unlink()
    public.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SealedKeyError, match="cannot read"):
        read_public_key(tmp_path)


def _submission(sealed_key: SealedKey | None) -> Submission:
    return Submission(
        id=SUB,
        created_ns=1,
        project="p",
        artifact=ArtifactInfo(name="a", type="dataset"),
        entries=[],
        sealed_key=sealed_key,
    )


def test_the_submission_carries_the_sealed_key_only_when_there_is_one() -> None:
    plain = _submission(None)
    assert "sealed_key" not in plain.to_json(), "what daemons before sealed keys read"
    carrying = _submission(SealedKey(SERVER, "1.abc"))
    assert Submission.loads(carrying.dumps()).sealed_key == SealedKey(SERVER, "1.abc")
    for bad, says in (
        ({"server": SERVER, "sealed": 1}, "sealed_key sealed must be a string"),
        ({"server": "", "sealed": "1.abc"}, "sealed_key server must be a string"),
        ({"server": SERVER, "sealed": "1.a", "key": KEY}, "unexpected keyword"),
        ("1.abc", "sealed_key must be a JSON object"),
    ):
        obj = plain.to_json()
        obj["sealed_key"] = bad
        with pytest.raises(SubmissionError, match=says):
            Submission.loads(json.dumps(obj).encode())
