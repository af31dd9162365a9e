"""Structured logging: one line per event, ``key=value`` (logfmt) or JSON, journald-aware.

Code logs events, not sentences: an event name and fields::

    log = get_logger("artisync.daemon")
    log.info("committed", sub=sub.id, project="mnist", name="model", version="v3")

which :func:`configure` writes to stderr as::

    time=2025-05-01T12:00:00.123Z level=info event=committed sub=4f… project=mnist …

Every line logged while the daemon works on a submission carries ``sub=<id>``, added
from :mod:`artisync.tracking` even where the caller does not know the id (the store,
references), so ``grep <id>`` shows that submission's whole life. Records of other
libraries (aiohttp, botocore) go through the same formatter as
``event=message logger=… msg="…"``.

Under systemd, when stderr *is* the journal (``$JOURNAL_STREAM`` names its device and
inode), lines carry no timestamp (journald stamps them) and start with the syslog
priority, ``<6>`` for info, which journald records as the entry's level.

The standard library's logging, not structlog: every library artisync uses already
logs through it, so one small formatter covers all of them, and a dependency would buy
only what these ~200 lines do.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from typing import Any, Final, Literal, TextIO, cast, get_args

from artisync import tracking
from artisync.errors import InvalidInputError

__all__ = [
    "LEVELS",
    "EventFormatter",
    "EventLogger",
    "LogFormat",
    "add_log_options",
    "configure",
    "get_logger",
    "stream_is_journal",
]

LogFormat = Literal["text", "json"]
LEVELS: Final = ("debug", "info", "warning", "error")

# The record attribute carrying an event's fields; plain records do not have it.
_FIELDS: Final = "artisync_fields"
# Keys the formatter writes itself: a field of the same name is renamed, not lost.
_RESERVED: Final = frozenset({"time", "level", "event", "logger", "msg", "error", "traceback"})
# syslog priorities (RFC 5424), which journald reads from a "<N>" line prefix.
_PRIORITY: Final = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
# A logfmt value that needs no quotes: no spaces, quotes, '=', or control characters.
_BARE: Final = re.compile(r'[^\s"=\\\x00-\x1f\x7f]+')


class EventLogger:
    """A standard-library logger that takes an event name and fields.

    ``log.info("committed", sub=…, version="v3")``: the event is a short
    ``snake_case`` name saying what happened; fields whose value is ``None`` are left
    out. Nothing is formatted unless the level is enabled.
    """

    __slots__ = ("logger",)

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def debug(self, event: str, /, **fields: Any) -> None:
        """An event only a developer wants to see."""
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: Any) -> None:
        """Something normal happened that an operator may want to trace."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        """Something went wrong and was handled (a rejection, a retry)."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, /, **fields: Any) -> None:
        """Something went wrong that needs a person."""
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        """:meth:`error` with the exception being handled and its traceback."""
        self._log(logging.ERROR, event, fields, exc_info=True)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self.logger.isEnabledFor(level):
            # stacklevel: the record names the caller of info()/warning(), not this file.
            self.logger.log(level, event, exc_info=exc_info, extra={_FIELDS: fields}, stacklevel=3)


def get_logger(name: str) -> EventLogger:
    """The event logger ``name`` (``artisync.daemon``, ``artisync.store``, …)."""
    return EventLogger(name)


class EventFormatter(logging.Formatter):
    """Formats a record as one line of logfmt (``text``) or JSON.

    ``journald=True`` leaves out the timestamp and starts the line with the syslog
    priority in angle brackets, as journald expects from a service's stderr.
    """

    def __init__(self, fmt: LogFormat = "text", *, journald: bool = False) -> None:
        super().__init__()
        self.log_format = fmt
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line, without the trailing newline."""
        fields = self.fields_of(record)
        if self.log_format == "json":
            line = json.dumps(fields, ensure_ascii=False, default=str, separators=(",", ":"))
        else:
            line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        if self.journald:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{line}"
        return line

    def fields_of(self, record: logging.LogRecord) -> dict[str, Any]:
        """The ordered fields of one line: time, level, event, sub, then the rest."""
        out: dict[str, Any] = {}
        if not self.journald:
            out["time"] = _utc_time(record.created)
        out["level"] = record.levelname.lower()
        given = cast("dict[str, Any] | None", getattr(record, _FIELDS, None))
        if given is None:
            out["event"] = "message"
            out["logger"] = record.name
            out["msg"] = record.getMessage()
            given = {}
        else:
            out["event"] = record.msg
        tracked = tracking.current()
        if "sub" not in given and tracked is not None:
            out["sub"] = tracked.sub_id
        for key, value in given.items():
            if value is not None:
                out[f"field_{key}" if key in _RESERVED else key] = _plain(value)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            out["error"] = f"{type(error).__name__}: {error}"
            out["traceback"] = "".join(traceback.format_exception(error)).rstrip()
        return out


def _utc_time(created: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def _plain(value: Any) -> Any:
    """A value JSON can carry as it is: numbers, strings, booleans, lists and dicts."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return _round(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)  # Path, exceptions, enums, ...


def _round(value: float) -> float:
    # Milliseconds for seconds, three digits for rates: enough for a person, and the
    # lines stay short.
    if not math.isfinite(value) or value == 0 or abs(value) >= 1e-3:
        return round(value, 3) if math.isfinite(value) else value
    return float(f"{value:.3g}")


def _logfmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if _BARE.fullmatch(text):
        return text
    # JSON string escaping: quotes, backslashes and newlines escaped, so one event
    # stays one line whatever its values hold.
    return json.dumps(text, ensure_ascii=False)


def stream_is_journal(stream: TextIO) -> bool:
    """Whether ``stream`` is connected to journald: systemd sets ``$JOURNAL_STREAM`` to
    ``<device>:<inode>`` of the stream it gives a service, and this one is that stream."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in expected.split(":"))
        stat = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False  # not set, malformed, or a stream without a file descriptor
    return (stat.st_dev, stat.st_ino) == (device, inode)


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, as every long-running command takes them
    (what :func:`configure` is then called with)."""
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning"],
        help="the least important events logged (default info)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=list(get_args(LogFormat)),
        help="one line per event: text is key=value (logfmt), json one object per line",
    )


def configure(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every record, artisync's and its libraries', to ``stream`` (stderr), one
    line per event at ``level`` and above, replacing handlers configured before."""
    if fmt not in get_args(LogFormat):
        raise InvalidInputError(
            f"log format {fmt!r} is not one of {', '.join(get_args(LogFormat))}"
        )
    if level.lower() not in LEVELS:
        raise InvalidInputError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(EventFormatter(cast("LogFormat", fmt), journald=stream_is_journal(out)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
