"""The daemon logs one structured line per event, traceable by submission id, and
speaks journald's dialect when its stderr is the journal."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync import logs, tracking
from artisync.spool import FileEntry, Spool
from daemon_harness import drop, result_of, staged_submission
from flagged_daemon import FlaggedDaemon, parse_logfmt


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Root logging configured into a buffer, as ``artisync daemon`` configures it."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    logs.configure("debug", "text", buffer)
    yield buffer
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_an_event_is_one_logfmt_line_with_level_event_and_fields(captured: io.StringIO) -> None:
    log = logs.get_logger("artisync.test")
    log.info("committed", sub="ab12", project="mnist", version="v3", seconds=0.2134, skip=None)
    log.warning("rejected", reason='it said "no"\nand stopped', ok=False, files=3)
    first, second = _lines(captured)
    fields = parse_logfmt(first)
    assert fields["time"].endswith("Z") and fields["level"] == "info"
    assert first.split(" ", 1)[1] == (
        "level=info event=committed sub=ab12 project=mnist version=v3 seconds=0.213"
    )
    assert parse_logfmt(second) | {"time": ""} == {
        "time": "",
        "level": "warning",
        "event": "rejected",
        "reason": 'it said "no"\nand stopped',
        "ok": "false",
        "files": "3",
    }


def test_json_format_is_one_object_per_line(captured: io.StringIO) -> None:
    logs.configure("info", "json", captured)
    logs.get_logger("artisync.test").info("stage", sub="ab", stage="hash", bytes=1 << 40)
    logs.get_logger("artisync.test").debug("hidden")  # below the level
    (line,) = _lines(captured)
    assert json.loads(line) == {
        "time": json.loads(line)["time"],
        "level": "info",
        "event": "stage",
        "sub": "ab",
        "stage": "hash",
        "bytes": 1 << 40,
    }


def test_under_journald_lines_carry_the_syslog_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(tmp_path / "journal", "w+") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert logs.stream_is_journal(stream)
        formatter = logs.EventFormatter("text", journald=logs.stream_is_journal(stream))
        record = logging.LogRecord(
            "artisync.x", logging.WARNING, __file__, 1, "plain %s", ("m",), None
        )
        assert (
            formatter.format(record)
            == '<4>level=warning event=message logger=artisync.x msg="plain m"'
        )
        record.levelno, record.levelname = logging.INFO, "INFO"
        assert formatter.format(record).startswith("<6>level=info ")
        record.levelno, record.levelname = logging.ERROR, "ERROR"
        assert formatter.format(record).startswith("<3>level=error ")


def test_a_stream_that_is_not_the_journal_keeps_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with open(tmp_path / "log", "w") as stream:
        assert not logs.stream_is_journal(stream)
    monkeypatch.setenv("JOURNAL_STREAM", "garbage")
    assert not logs.stream_is_journal(io.StringIO())


async def test_lines_logged_for_a_submission_carry_its_id_even_in_threads_and_libraries(
    captured: io.StringIO,
) -> None:
    captured.seek(0)
    captured.truncate()  # asyncio's debug line about its event loop
    token = tracking.enter(tracking.Tracked("f00d"))
    try:
        logs.get_logger("artisync.store").info("upload_resumed", key="blobs/x")
        await asyncio.to_thread(logging.getLogger("botocore").warning, "slow %d", 5)
    finally:
        tracking.leave(token)
    logs.get_logger("artisync.store").info("outside")
    inside, library, outside = (parse_logfmt(line) for line in _lines(captured))
    assert inside["sub"] == "f00d" and library["sub"] == "f00d"
    assert library["event"] == "message" and library["logger"] == "botocore"
    assert library["msg"] == "slow 5"
    assert "sub" not in outside


def test_an_exception_stays_on_one_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logs.get_logger("artisync.test").exception("internal_error", sub="ab")
    (line,) = _lines(captured)
    fields = parse_logfmt(line)
    assert fields["error"] == "ValueError: bad\nthing"
    assert "Traceback" in fields["traceback"] and "raise ValueError" in fields["traceback"]


def test_a_field_named_like_a_reserved_key_is_kept_under_another_name(
    captured: io.StringIO,
) -> None:
    logs.get_logger("artisync.test").info("x", level="high", msg="m")
    fields = parse_logfmt(_lines(captured)[0])
    assert (fields["level"], fields["field_level"], fields["field_msg"]) == ("info", "high", "m")


def test_a_bad_log_format_or_level_is_a_clear_error() -> None:
    with pytest.raises(artisync.errors.InvalidInputError, match="'yaml' is not one of text, json"):
        logs.configure("info", "yaml")
    with pytest.raises(artisync.errors.InvalidInputError, match="'loud' is not one of debug"):
        logs.configure("loud", "text")


def test_grep_of_a_submission_id_shows_its_whole_life(home: Path, tmp_path: Path) -> None:
    daemon = FlaggedDaemon(home)
    daemon.start()
    try:
        (tmp_path / "weights.bin").write_bytes(os.urandom(100_000))
        with artisync.init(project="proj", home=home) as run:
            artifact = artisync.Artifact("model", "model")
            artifact.add_file(tmp_path / "weights.bin", policy="immutable")
            run.log_artifact(artifact)
            artifact.wait(timeout=60)
        spool = Spool(daemon.config.spool)
        bad = staged_submission(spool, "proj", "data", {})
        bad.entries.append(FileEntry("gone", str(tmp_path / "gone"), 1, 1, 1))
        drop(spool, bad)
        assert result_of(spool, bad.id)["status"] == "rejected"
    finally:
        assert daemon.stop() == 0
    lines = daemon.logs().splitlines()
    parsed = [parse_logfmt(line) for line in lines]  # every line is logfmt
    assert [p["event"] for p in parsed][-1] == "stopped"

    good = [p for line, p in zip(lines, parsed, strict=True) if artifact.submission_id in line]
    assert all(p["sub"] == artifact.submission_id for p in good)
    events = [p["event"] if p["event"] != "stage" else p["stage"] for p in good]
    assert events == [
        "accepted",
        "claimed",
        "expand",
        "hash",
        "store",
        "manifest",
        "turn",
        "commit",
        "receipt",
        "committed",
    ]
    assert all(float(p["seconds"]) >= 0 for p in good if p["event"] in ("stage", "committed"))
    committed = good[-1]
    assert (committed["project"], committed["name"], committed["version"]) == (
        "proj",
        "model",
        "v0",
    )
    hashed = next(p for p in good if p.get("stage") == "hash")
    assert hashed["bytes"] == "100000"

    rejected = [p for line, p in zip(lines, parsed, strict=True) if bad.id in line]
    assert rejected[0]["event"] == "claimed"
    assert rejected[-1]["event"] == "rejected" and rejected[-1]["level"] == "warning"
    assert "gone: No such file" in rejected[-1]["reason"]


def test_the_daemon_logs_json_lines_with_log_format_json(home: Path) -> None:
    daemon = FlaggedDaemon(home, "--log-format", "json", "--log-level", "debug")
    daemon.start()
    spool = Spool(daemon.config.spool)
    sub = staged_submission(spool, "proj", "data", {"a": b"1"})
    drop(spool, sub)
    assert result_of(spool, sub.id)["status"] == "committed"
    assert daemon.stop() == 0
    objects = [json.loads(line) for line in daemon.logs().splitlines()]
    assert objects[0]["event"] == "ready" and objects[-1]["event"] == "stopped"
    assert {"claimed", "committed"} <= {o["event"] for o in objects if o.get("sub") == sub.id}


def test_the_daemon_refuses_an_unknown_log_format(home: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "artisync.cli",
            "--home",
            str(home),
            "daemon",
            "--log-format",
            "xml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--log-format: invalid choice: 'xml'" in done.stderr


def test_the_daemon_writes_for_journald_when_its_stderr_is_the_journal(home: Path) -> None:
    daemon = FlaggedDaemon(home)
    daemon.log.touch()  # the "journal": systemd names the stream it gives by dev:inode
    st = os.stat(daemon.log)
    daemon.start(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    spool = Spool(daemon.config.spool)
    sub = staged_submission(spool, "proj", "data", {"a": b"1"})
    drop(spool, sub)
    assert result_of(spool, sub.id)["status"] == "committed"
    assert daemon.stop() == 0
    lines = daemon.logs().splitlines()
    assert lines[0].startswith("<6>level=info event=ready ")
    assert all(re.match(r"<[0-7]>level=", line) for line in lines), lines
    assert not any("time=" in line for line in lines)
