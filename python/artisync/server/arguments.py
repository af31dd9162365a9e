"""What a request carries, read one field at a time, each checked as it is read.

Every caller of the HTTP API is untrusted. A route reads its path segments, query
parameters and JSON body through :class:`Arguments`; a value of the wrong type, a name
that breaks ``artisync.names``' rules, a control character in an identifier or a field
the route does not take is a :class:`BadArgument`, which the app answers 400 with the
field named. Only values that passed reach the registry, so nothing a caller sends can
become a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

from artisync.errors import InvalidInputError
from artisync.registry.contract import MAX_JSON_DEPTH, json_depth

__all__ = ["MAX_DEPTH", "Arguments", "BadArgument", "parse_body"]

MAX_DEPTH: Final = MAX_JSON_DEPTH

# Longest identifier or free-text field not bounded by a names rule: far beyond real
# ones, short enough for a log line.
_MAX_TEXT: Final = 1024
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class BadArgument(InvalidInputError):
    """A value the caller sent that the route cannot take; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_body(text: str, what: str) -> dict[str, Any]:
    """The JSON object of a request body, or :class:`BadArgument` on ``body``."""
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise BadArgument("body", f"must be a JSON object ({what}): {exc}") from None
    if not isinstance(body, dict):
        raise BadArgument("body", f"must be a JSON object ({what}), not {_kind(body)}")
    return body


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; json.loads would take them otherwise.
    raise ValueError(f"{name} is not JSON")


class Arguments:
    """The fields of one part of a request (its body, path or query), checked as read.

    ``prefix`` is prepended to field names in messages (``query.limit``), so the caller
    learns where the bad value was.
    """

    def __init__(self, values: dict[str, Any], prefix: str = "") -> None:
        self._values = values
        self._prefix = prefix
        self._read: set[str] = set()

    def given(self, field: str) -> bool:
        """Whether the caller sent ``field`` (an absent field keeps its default)."""
        return field in self._values

    def bad(self, field: str, message: str) -> BadArgument:
        """The error for ``field``, named as the caller sent it."""
        return BadArgument(self._prefix + field, message)

    def _take(self, field: str, required: bool) -> Any:
        self._read.add(field)
        if field not in self._values and required:
            raise self.bad(field, "is required")
        return self._values.get(field)

    def name(self, field: str, check: Callable[[str], object] | None = None) -> str:
        """A required identifier: a non-empty str without control characters, then
        ``check`` (a validator of ``artisync.names``)."""
        value = self.optional_name(field, check, required=True)
        assert value is not None
        return value

    def optional_name(
        self,
        field: str,
        check: Callable[[str], object] | None = None,
        *,
        required: bool = False,
    ) -> str | None:
        """:meth:`name`, or None when absent or null."""
        value = self._take(field, required)
        if value is None and not required:
            return None
        text = self._text(field, value)
        if not text:
            raise self.bad(field, "must not be empty")
        if bad := sorted(set(_CONTROL.findall(text))):
            raise self.bad(
                field,
                f"must not contain control characters (found {', '.join(map(repr, bad))})",
            )
        if check is not None:
            try:
                check(text)
            except InvalidInputError as exc:
                raise self.bad(field, str(exc)) from None
        return text

    def free_text(self, field: str, *, limit: int | None = _MAX_TEXT) -> str | None:
        """A str (any characters but NUL, at most ``limit`` long) or None."""
        value = self._take(field, False)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.bad(field, f"must be a string or null, not {_kind(value)}")
        if "\x00" in value:
            raise self.bad(field, "must not contain NUL characters")
        if limit is not None and len(value) > limit:
            raise self.bad(field, f"is {len(value)} characters long; at most {limit} are taken")
        return value

    def json_object(self, field: str, *, required: bool = True) -> dict[str, Any] | None:
        """A JSON object, nested at most :data:`MAX_DEPTH` deep (None: absent or null
        when not required)."""
        value = self._take(field, required)
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            raise self.bad(field, f"must be a JSON object, not {_kind(value)}")
        if json_depth(value) > MAX_DEPTH:
            raise self.bad(field, f"nests deeper than {MAX_DEPTH} levels")
        return value

    def json_objects(self, field: str, *, limit: int) -> list[dict[str, Any]]:
        """A list of at most ``limit`` JSON objects, each nested at most
        :data:`MAX_DEPTH` deep (what the registry checks further is its own)."""
        value = self._take(field, True)
        if not isinstance(value, list):
            raise self.bad(field, f"must be a list of JSON objects, not {_kind(value)}")
        if len(value) > limit:
            raise self.bad(field, f"holds {len(value)} items; at most {limit} are taken at once")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.bad(f"{field}[{i}]", f"must be a JSON object, not {_kind(item)}")
            if json_depth(item) > MAX_DEPTH:
                raise self.bad(f"{field}[{i}]", f"nests deeper than {MAX_DEPTH} levels")
        return value

    def checked_text(self, field: str, check: Callable[[str | None], str | None]) -> str | None:
        """A str or None (absent or null) that ``check`` accepts (it bounds the length)."""
        value = self.free_text(field, limit=None)
        try:
            return check(value)
        except InvalidInputError as exc:
            raise self.bad(field, str(exc)) from None

    def count(self, field: str, *, required: bool = True, default: int = 0) -> int:
        """A whole number >= 0."""
        value = self._take(field, required)
        if value is None and not self.given(field):
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.bad(field, f"must be a whole number >= 0, not {_shown(value)}")
        return value

    def seconds(self, field: str) -> float | None:
        """A finite number or null (the registry says which numbers it takes)."""
        value = self._take(field, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(field, f"must be a number of seconds or null, not {_kind(value)}")
        if not math.isfinite(value):
            raise self.bad(field, "must be a finite number")
        return value

    def number_text(self, field: str, *, default: float | None = None) -> float:
        """A finite number written as text (a query parameter); required when there is
        no ``default``."""
        value = self._take(field, default is None)
        if value is None:
            assert default is not None
            return default
        text = self._text(field, value)
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise self.bad(field, f"must be a finite number, not {_shown(text)}")
        return number

    def boolean(self, field: str, default: bool) -> bool:
        """true or false (absent: ``default``)."""
        value = self._take(field, False)
        if not self.given(field):
            return default
        if not isinstance(value, bool):
            raise self.bad(field, f"must be true or false, not {_shown(value)}")
        return value

    def names(
        self, field: str, check: Callable[[str], object], *, required: bool = False
    ) -> list[str]:
        """A list of strings, each passing ``check`` (absent: empty)."""
        value = self._take(field, required)
        if value is None and not self.given(field):
            return []
        if not isinstance(value, list):
            raise self.bad(field, f"must be a list of strings, not {_kind(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            text = self._text(f"{field}[{i}]", item)
            try:
                check(text)
            except InvalidInputError as exc:
                raise self.bad(f"{field}[{i}]", str(exc)) from None
            out.append(text)
        return out

    def objects(self, field: str, *, limit: int) -> list[Arguments]:
        """A non-empty list of at most ``limit`` JSON objects, each read as arguments of
        its own (named ``field[i].x`` in messages)."""
        value = self._take(field, True)
        if not isinstance(value, list) or not value:
            raise self.bad(field, f"must be a non-empty list of objects, not {_shown(value)}")
        if len(value) > limit:
            raise self.bad(field, f"holds {len(value)} items; at most {limit} are taken at once")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.bad(f"{field}[{i}]", f"must be a JSON object, not {_kind(item)}")
            out.append(Arguments(item, f"{self._prefix}{field}[{i}]."))
        return out

    def finish(self, what: str) -> None:
        """Refuse a field the route does not take: a typo must not pass silently."""
        if unknown := sorted(set(self._values) - self._read):
            takes = ", ".join(sorted(self._read)) or "none"
            raise self.bad(unknown[0], f"is not a field of {what}; it takes {takes}")

    def _text(self, field: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.bad(field, f"must be a string, not {_kind(value)}")
        if len(value) > _MAX_TEXT:
            raise self.bad(field, f"is {len(value)} characters long; at most {_MAX_TEXT} are taken")
        return value


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
