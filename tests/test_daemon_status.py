"""What the daemon answers about submissions, and how much of it it keeps in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from artisync.config import Config
from artisync.daemon import service
from artisync.spool import next_seq


async def test_the_daemon_forgets_old_finished_submissions_but_still_answers_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "REMEMBER_FINISHED", 2)
    daemon = service.Daemon(Config.defaults(tmp_path))
    for i in range(5):
        sub_id = f"{i:032x}"
        daemon._states[sub_id] = service._State("queued", f"{i}")
        result = {"id": sub_id, "status": "committed"}
        daemon.spool.complete(daemon.spool.folder("work") / f"{next_seq()}-{sub_id}.json", result)
        daemon._on_status(sub_id, "committed", result)
    assert sorted(daemon._states) == [f"{3:032x}", f"{4:032x}"]
    assert (await daemon.status_of(f"{0:032x}", 0))["status"] == "committed"
