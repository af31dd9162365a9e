"""A thousand generated malformed submissions: each is rejected with a reason a user can
act on, none as an "internal error", and the daemon keeps serving.

The submissions come from the hypothesis strategies in ``malformed_submissions.py``
(one thing wrong in each: broken JSON, wrong types, unknown formats, escaping paths,
huge or negative numbers, bad names, missing files...). They are dropped into
``spool/new`` in one go, as clients do while the daemon is down, with a good
submission of one collection after every fifty: the good ones must all commit, in the
order they were published, and every blob must hash to its name.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy

from artisync.spool import Spool, next_seq
from consistency import Logged, check_consistency
from daemon_harness import DaemonProcess, drop, result_of, staged_submission, wait_for
from malformed_submissions import FIFO, Case, categories, write_snapshot

COUNT = 1000
# One good submission after every this many malformed ones: they must commit, in order.
GOOD_EVERY = 50


def _examples(strategy: SearchStrategy[Case], count: int) -> list[Case]:
    """Up to ``count`` examples of ``strategy``, the same on every run (derandomized,
    no example database); fewer if it has fewer distinct ones."""
    found: list[Case] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Case) -> None:
        found.append(case)

    collect()
    return found


def _generate(count: int) -> list[Case]:
    """``count`` cases, an equal share from each category. A category with fewer
    distinct cases than its share repeats them: each is a new submission all the same."""
    kinds = list(categories().values())
    generated: list[Case] = []
    for i, strategy in enumerate(kinds):
        share = count // len(kinds) + (1 if i < count % len(kinds) else 0)
        generated += itertools.islice(itertools.cycle(_examples(strategy, share)), share)
    return generated


def _rejections(spool: Spool) -> dict[str, dict[str, object]]:
    found = {}
    for path in spool.folder("failed").glob("*.error.json"):
        error = json.loads(path.read_bytes())
        found[error["id"]] = error
    return found


def test_a_thousand_malformed_submissions_are_each_rejected_with_a_reason(
    home: Path, tmp_path: Path
) -> None:
    generated = _generate(COUNT)
    assert len(generated) == COUNT
    if not os.path.exists(FIFO):
        os.mkfifo(FIFO)
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        spool = Spool(daemon.config.spool)
        written: dict[str, Case] = {}
        goods = []
        for i, case in enumerate(generated):
            sub_id = uuid.uuid4().hex
            write_snapshot(spool, sub_id)
            (spool.folder("tmp") / f"{sub_id}.json").write_bytes(case.render(sub_id))
            written[sub_id] = case
            spool.publish(spool.folder("tmp") / f"{sub_id}.json", next_seq())
            if i % GOOD_EVERY == GOOD_EVERY - 1:  # good ones among them, in one collection
                data = {"a.txt": b"still served %d" % len(goods)}
                good = staged_submission(
                    spool, "fuzz", "after", data, metadata={"index": len(goods)}
                )
                drop(spool, good)
                goods.append(good)
        for good in goods:
            assert result_of(spool, good.id, deadline=120)["status"] == "committed", daemon.logs()
        with daemon.registry() as registry:
            versions = registry.list_versions("fuzz", "after")
        assert [v.metadata["index"] for v in versions] == list(range(len(goods))), "in order"

        try:
            rejected = wait_for(
                lambda: (found := _rejections(spool)).keys() >= written.keys() and found,
                deadline=60,
                what="every malformed submission to be rejected",
            )
        except AssertionError:
            missing = written.keys() - _rejections(spool).keys()
            found = {i: (spool.find_result(i) or {}).get("status") for i in missing}
            labels = "; ".join(f"{written[i].label}: {status}" for i, status in found.items())
            raise AssertionError(f"not rejected: {labels}") from None
        for sub_id, case in written.items():
            reason = rejected[sub_id]["reason"]
            assert isinstance(reason, str) and reason.strip(), case.label
            assert not reason.startswith("internal error"), f"{case.label}: {reason}"
            status, answer = daemon.request("GET", f"/v1/submissions/{sub_id}?wait=0")
            assert (status, answer["status"]) == (200, "rejected"), (case.label, answer)
            assert answer["reason"] == reason, case.label

        logged = [Logged(sub_id, "fuzz", "target", bad=True) for sub_id in written]
        logged += [Logged(good.id, "fuzz", "after") for good in goods]
        check_consistency(home, logged, tmp_path / "downloads")
        assert daemon.proc is not None and daemon.proc.poll() is None, "the daemon died"
    finally:
        daemon.kill()
