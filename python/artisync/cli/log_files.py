"""``artisync log``: log a file or directory as a new version and wait for it, with a
progress bar on a terminal."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import artisync
from artisync.errors import InvalidInputError, NoDaemonWarning
from artisync.launch import why_not_autostarted
from artisync.names import validate_artifact_name, validate_project
from artisync.sdk.client import TERMINAL, DaemonClient
from artisync.sdk.registry_access import registry_for
from artisync.views.terminal import printable

__all__ = ["add_command"]


def _log(args: argparse.Namespace) -> int:
    path = Path(args.path)
    validate_project(args.project)
    name = args.name or path.resolve().name
    if args.name is None:
        try:
            validate_artifact_name(name)
        except InvalidInputError as e:
            raise InvalidInputError(
                f"{e} (the name comes from the path {args.path!r}; give one with --name NAME)"
            ) from None
    # The command logs whatever WANDB_MODE says: a disabled or offline run is the
    # script's choice, not this command's.
    run = artisync.init(
        project=args.project, job_type="artisync-log", mode="online", home=args.home
    )
    assert isinstance(run, artisync.Run)
    # The command waits itself (bars, --timeout, Ctrl-C); finishing the run must not.
    run.wait_at_finish = False
    with run:
        artifact = artisync.Artifact(name, args.type)
        if path.is_dir():
            artifact.add_dir(path, policy=args.policy)
        else:
            artifact.add_file(path, policy=args.policy)
        client = DaemonClient(run.settings)
        with warnings.catch_warnings():
            # Said below in the command's own words, not as a Python warning.
            warnings.simplefilter("ignore", NoDaemonWarning)
            run.log_artifact(artifact, aliases=args.alias or None)
        if client.queue_status() is None and (reason := why_not_autostarted(run.settings)):
            # Nothing would ever answer: say so now rather than wait for nobody.
            print(
                printable(
                    f"artisync: no daemon runs on {run.settings.home} and none was started: "
                    f"{reason}.\n{name} is queued (submission {artifact.submission_id}) and "
                    f"commits once one runs: artisync --home {run.settings.home} daemon"
                ),
                file=sys.stderr,
            )
            return 1
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        try:
            if sys.stdout.isatty() and not args.quiet:
                _wait_with_bar(client, artifact.submission_id, deadline)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            artifact.wait(timeout=remaining)
        except KeyboardInterrupt:
            holder = (
                "the daemon still has it"
                if client.queue_status() is not None
                else f"it waits in {run.settings.spool / 'new'} for a daemon"
            )
            print(
                f"\nstopped waiting for submission {artifact.submission_id}: {holder} "
                "(`artisync status` shows it)",
                file=sys.stderr,
            )
            return 130
    qualified = f"{run.project}/{artifact.name}:{artifact.version}"
    done = registry_for(run.settings).submission_result(artifact.submission_id)
    if done is not None and not done.created:
        print(printable(f"{qualified} ({artifact.digest}): identical to {artifact.version}, "
                        "no new version"))  # fmt: skip
    else:
        print(printable(f"{qualified} ({artifact.digest})"))
    return 0


def _wait_with_bar(client: DaemonClient, sub_id: str, deadline: float | None) -> None:
    """Draw the submission's bars until the daemon has finished with it, stops
    answering (the caller's ``wait`` then watches the spool), or ``deadline`` passes."""
    # Imported when bars are drawn: rich loads only for a terminal.
    from artisync.cli.progress_bars import SubmissionBars

    bars = SubmissionBars(transient=True)
    with bars.progress:
        while deadline is None or time.monotonic() < deadline:
            answer = client.status(sub_id, wait=_POLL_SECONDS)
            if answer is None or answer.get("status") in TERMINAL:
                return
            snapshot = client.progress() or {}
            mine = [s for s in snapshot.get("active") or [] if s.get("id") == sub_id]
            bars.update(mine)
            bars.refresh()


# How often the bars ask the daemon: smooth enough to see bytes move, cheap for it.
_POLL_SECONDS = 0.25


def add_command(commands: Any) -> None:
    """Add ``log`` to the ``artisync`` parser."""
    log = commands.add_parser("log", help="log a file or directory as a new version and wait")
    log.add_argument("path", help="the file or directory to log")
    log.add_argument("--project", required=True, help="the project the artifact belongs to")
    log.add_argument("--name", help="artifact name (default: the path's basename)")
    log.add_argument("--type", required=True, help="the artifact's type, e.g. dataset or model")
    log.add_argument("--alias", action="append", help="an alias for the version (repeatable)")
    log.add_argument(
        "--policy",
        default="immutable",
        choices=["immutable", "mutable"],
        help="immutable (default here: the command waits, so the files are read in place "
        "and a change is detected) or mutable (snapshot first)",
    )
    log.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    log.add_argument("--quiet", "-q", action="store_true", help="no progress bar while waiting")
    log.set_defaults(run=_log)
