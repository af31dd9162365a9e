"""``run.summary`` (and ``artisync.summary``): one value per metric, with W&B's semantics.

Each ``run.log`` row sets the summary's keys to their last logged values (``_step``,
``_runtime`` and ``_timestamp`` included, as W&B does); the script may also set keys
itself (``run.summary["best_acc"] = acc`` or ``run.summary.best_acc = acc``), which
stay until logged again. Nested dicts read back as sub-summaries whose items are set
in place. Item and attribute access, ``update``, ``get``, ``keys``, ``del``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from artisync.sdk.run_config import json_friendly
from artisync.sdk.validation import require_json

__all__ = ["Summary"]


class _Missing(KeyError, AttributeError):
    """A missing key: ``KeyError`` for items, ``AttributeError`` for attributes."""


class _Node(MutableMapping[str, Any]):
    """A dict of the summary (the root or a nested one) with item and attribute access."""

    _data: dict[str, Any]
    _root: Summary

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            raise _Missing(key) from None
        if isinstance(value, dict):
            return _SubSummary(value, self._root)
        return value

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delitem__(self, key: str) -> None:
        with self._root._lock:
            try:
                del self._data[key]
            except KeyError:
                raise _Missing(key) from None
        self._root._changed()

    def __delattr__(self, key: str) -> None:
        del self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return repr(self._data)

    def update(self, d: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:  # type: ignore[override]
        items = {**(d or {}), **kwargs}
        clean = {str(k): json_friendly(v) for k, v in items.items()}
        for key, value in clean.items():
            require_json(value, f"run.summary[{key!r}]")
        with self._root._lock:
            self._data.update(clean)
        self._root._changed()


class _SubSummary(_Node):
    def __init__(self, data: dict[str, Any], root: Summary) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_root", root)


class Summary(_Node):
    """A run's summary: W&B's ``run.summary``. See the module docstring."""

    _lock: threading.Lock
    _on_change: Callable[[], None] | None

    def __init__(
        self,
        initial: Mapping[str, Any] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        object.__setattr__(self, "_data", dict(initial or {}))
        object.__setattr__(self, "_root", self)
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_on_change", on_change)

    def _absorb(self, row: Mapping[str, Any]) -> None:
        """Take a completed ``run.log`` row's values: already plain JSON (the history
        checked them), so not converted and checked a second time."""
        with self._lock:
            self._data.update(row)
        self._changed()

    def as_dict(self) -> dict[str, Any]:
        """A deep-enough copy of the summary (what the registry stores)."""
        with self._lock:
            copied: dict[str, Any] = _copy(self._data)
        return copied

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
