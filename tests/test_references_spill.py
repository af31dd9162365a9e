"""Remote prefixes through the daemon's expansion: the listing goes to a scratch file a
page at a time and comes back a chunk at a time, the same items as held in memory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from artisync.daemon.expand import Item, plan
from artisync.references import gcs as gcs_module
from artisync.references import s3 as s3_module
from artisync.spool import ArtifactInfo, ReferenceEntry, Submission
from servers import GCS, S3


def _submission(*refs: str) -> Submission:
    return Submission(
        id="0" * 32,
        created_ns=time.time_ns(),
        project="proj",
        artifact=ArtifactInfo(name="refs", type="dataset"),
        entries=[ReferenceEntry(path="", ref=ref) for ref in refs],
    )


def _items(sub: Submission, tmp_path: Path, spill: bool) -> list[Item]:
    scratch = (lambda what: tmp_path / f"{what}.scratch") if spill else None
    expansion = plan(sub, tmp_path, scratch)
    return [item for chunk in expansion.chunks(7) for item in chunk]


def _facts(items: list[Item]) -> list[tuple[object, ...]]:
    return [(i.path, i.ref, i.digest, i.size, i.extra, i.stored) for i in items]


def test_an_s3_prefix_is_spilled_page_by_page_and_read_back_the_same(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket(versioned=True)
    s3.put_many(bucket, {f"images/{i:02d}.png": b"%d" % i for i in range(25)})
    s3.put_many(bucket, {"model.h5": b"weights"})
    monkeypatch.setattr(s3_module, "LIST_PAGE", 10)  # three pages
    sub = _submission(f"s3://{bucket}/images", f"s3://{bucket}/model.h5")
    in_memory = _facts(_items(sub, tmp_path, spill=False))
    spilled = _facts(_items(sub, tmp_path, spill=True))
    assert spilled == in_memory
    assert len(spilled) == 26 and all(extra.get("versionID") for *_, extra, _ in spilled)
    rows = (tmp_path / "ref0.scratch").read_text().splitlines()
    assert len(rows) == 25 and json.loads(rows[0])[0] == "00.png"
    assert not (tmp_path / "ref1.scratch").read_bytes()  # one object: no listing


def test_a_gcs_prefix_is_spilled_page_by_page_and_read_back_the_same(
    gcs: GCS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = gcs.bucket()
    gcs.put_many(bucket, {f"images/{i:02d}.png": b"%d" % i for i in range(25)})
    monkeypatch.setattr(gcs_module, "LIST_PAGE", 10)
    sub = _submission(f"gs://{bucket}/images")
    assert _facts(_items(sub, tmp_path, spill=True)) == _facts(_items(sub, tmp_path, spill=False))
    assert len((tmp_path / "ref0.scratch").read_text().splitlines()) == 25
