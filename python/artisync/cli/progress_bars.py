"""What ``artisync status`` and ``artisync log`` draw: the daemon's progress as bars.

The daemon's ``GET /v1/progress`` gives each submission's bytes hashed and stored
against its totals; rich draws them and works out throughput and ETA from how fast the
figures move between polls. :func:`describe` writes the same snapshot as plain lines,
for output that is not a terminal.
"""

from __future__ import annotations

import time
from typing import Any, Final

from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from artisync.sizes import human_size
from artisync.views.terminal import printable

__all__ = ["StatusBars", "SubmissionBars", "describe"]

# The two transfers of a submission, as the daemon names them in its snapshot.
KINDS: Final = ("hash", "store")
# Stages that are waiting rather than working: shown, but not as transfers.
_WAITING: Final = {"queued": "queued", "waiting": "waiting for a slot", "turn": "waiting its turn"}


def _bars(console: Console | None, transient: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        # Ticks even while a store that does not count yet holds the bytes still.
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", style="dim"),
        console=console,
        transient=transient,
        auto_refresh=False,
    )


def _label(item: dict[str, Any]) -> str:
    where = f"{item.get('project') or '?'}/{item.get('name') or '?'}"
    return printable(f"{str(item.get('id', ''))[:8]} {where}")


def _note(item: dict[str, Any]) -> str:
    if item.get("retrying"):
        return printable(f"retrying: {item['retrying']}")
    stage = str(item.get("stage", ""))
    return printable(_WAITING.get(stage, stage))


class SubmissionBars:
    """The hash and store bars of submissions, kept in step with progress snapshots."""

    def __init__(self, console: Console | None = None, *, transient: bool = False) -> None:
        self.progress = _bars(console, transient)
        self._tasks: dict[tuple[str, str], TaskID] = {}

    def update(self, active: list[dict[str, Any]]) -> None:
        """Show exactly the submissions in ``active`` (the snapshot's ``active`` list)."""
        seen: set[tuple[str, str]] = set()
        for item in active:
            # The stage goes beside the hash bar while hashing, beside the store bar else.
            on_hash_row = item.get("stage") == "hash" and (item.get("hash") or {}).get("total")
            for kind in KINDS:
                key = (str(item.get("id")), kind)
                seen.add(key)
                figures = item.get(kind) or {}
                total = int(figures.get("total") or 0)
                description = f"{_label(item)} {kind:<5}"
                note = _note(item) if (kind == "hash") == bool(on_hash_row) else ""
                if key not in self._tasks:
                    self._tasks[key] = self.progress.add_task(description, total=total, note=note)
                self.progress.update(
                    self._tasks[key],
                    completed=int(figures.get("done") or 0),
                    total=total,
                    note=note,
                    # Nothing for the daemon to hash (snapshots were hashed when logged).
                    visible=total > 0 or kind == "store",
                )
        for key in [k for k in self._tasks if k not in seen]:
            self.progress.remove_task(self._tasks.pop(key))

    def refresh(self) -> None:
        """Redraw now (the bars do not refresh on their own)."""
        self.progress.refresh()


class StatusBars:
    """``artisync status``'s live view: a header with the queue, then the bars."""

    def __init__(self, console: Console | None = None) -> None:
        self.header = Text()
        self.bars = SubmissionBars(console)

    def renderable(self) -> RenderableType:
        """What ``rich.live.Live`` draws."""
        return Group(self.header, self.bars.progress)

    def update(self, status: dict[str, Any] | None, progress: dict[str, Any] | None) -> None:
        """Show the daemon's latest answers; ``None`` when it did not answer."""
        if status is None or progress is None:
            self.header = Text("the daemon is not answering; retrying…", style="yellow")
            self.bars.update([])
            return
        self.header = Text(_header(status, progress))
        self.bars.update(list(progress.get("active") or []))


def _header(status: dict[str, Any], progress: dict[str, Any]) -> str:
    stages = ", ".join(
        f"{count} {stage}" for stage, count in (progress.get("by_stage") or {}).items() if count
    )
    return _registry_wait(status, progress) + (
        f"daemon pid {status.get('pid')} on {status.get('home')} "
        f"(store {status.get('store')})\n"
        f"queue {progress.get('queue_depth', 0)}{f' ({stages})' if stages else ''}; "
        f"since start: committed {status.get('committed', 0)}, "
        f"rejected {status.get('rejected', 0)}, "
        f"stored {human_size(int(progress.get('bytes_stored') or 0))}"
        # Only what the daemon hashed itself: snapshots arrive hashed by the SDK, and
        # "hashed 0 B" beside what was stored reads as a fault.
        + (
            f", hashed {human_size(hashed)}"
            if (hashed := int(progress.get("bytes_hashed") or 0))
            else ""
        )
    )


def _registry_wait(status: dict[str, Any], progress: dict[str, Any]) -> str:
    """The first line while the registry server does not answer (commits wait for it)."""
    since = status.get("registry_down_since")
    if not isinstance(since, int | float):
        return ""
    waiting = int(progress.get("queue_depth") or 0)
    return (
        f"registry {status.get('registry')} unreachable since "
        f"{time.strftime('%H:%M:%S', time.localtime(since))}, "
        f"{waiting} submission{'' if waiting == 1 else 's'} waiting\n"
    )


def _transfer_line(kind: str, figures: dict[str, Any]) -> str:
    total, done = int(figures.get("total") or 0), int(figures.get("done") or 0)
    line = f"{kind} {human_size(done)} / {human_size(total)}"
    if total:
        line += f" ({100 * done // total}%)"
    if figures.get("bytes_per_second"):
        line += f" at {human_size(int(figures['bytes_per_second']))}/s"
    if figures.get("eta_seconds") is not None:
        line += f", {figures['eta_seconds']:.0f} s left"
    return line


def describe(status: dict[str, Any], progress: dict[str, Any] | None) -> str:
    """The snapshot as plain text: the header, then one line per submission."""
    lines = [_header(status, progress or {})]
    for item in (progress or {}).get("active") or []:
        transfers = "; ".join(
            _transfer_line(kind, item[kind])
            for kind in KINDS
            if kind == "store" or (item.get(kind) or {}).get("total")
        )
        lines.append(f"  {_label(item)}  {_note(item)}  {transfers}")
    return "\n".join(lines)
