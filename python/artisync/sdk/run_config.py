"""``run.config`` (and ``artisync.config``): a run's hyperparameters, with W&B's semantics.

What W&B scripts do with ``wandb.config`` works the same here: attribute and item
access (``config.lr``, ``config["lr"]``), ``update(d, allow_val_change=False)`` from a
dict, an ``argparse.Namespace``, absl/TensorFlow flags or any object with a
``__dict__``; ``setdefaults``; ``keys``/``items``/``get``/``as_dict``. As in W&B,
changing a key that holds another value raises unless ``allow_val_change=True``, leading
dashes of keys are stripped, and keys a sweep set are *locked*: the trial's own
defaults do not override them (a warning says the update was ignored).

A config given to ``init`` as a string is the path of a YAML file, and a
``config-defaults.yaml`` in the working directory is loaded first, as W&B does.
Every value must be JSON (numpy scalars and arrays are converted, as W&B converts them).
Changes reach the registry at the run's next flush (:mod:`artisync.sdk.run_recorder`).
"""

from __future__ import annotations

import argparse
import inspect
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final

from artisync.errors import InvalidInputError
from artisync.sdk.validation import require_json

__all__ = ["DEFAULTS_FILE", "Config", "ConfigError", "config_items", "json_friendly"]

DEFAULTS_FILE: Final = "config-defaults.yaml"
"""Loaded into every run's config from the working directory, as W&B does."""


class ConfigError(InvalidInputError):
    """A config key was changed to another value without ``allow_val_change=True``."""


def json_friendly(value: Any) -> Any:
    """``value`` with numpy scalars and arrays (and anything with ``tolist``/``item``)
    made plain Python, tuples made lists and sets sorted lists, as W&B stores them.
    NaN and infinities become None: the registry stores strict JSON (a diverged
    ``loss`` must not stop the training loop)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_friendly(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_friendly(v) for v in value]
    if isinstance(value, set | frozenset):
        return [json_friendly(v) for v in sorted(value, key=repr)]
    if isinstance(value, Path):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist) and not isinstance(value, str | bytes | int | float | bool):
        return json_friendly(tolist())
    if isinstance(value, float):
        return value
    return value


def _from_yaml(path: str | Path, *, must_exist: bool) -> dict[str, Any]:
    """The mapping a W&B config YAML file holds; each key may be ``{value: x}`` (W&B's
    sweep-style files) or the value itself. ``{}`` for a missing optional file."""
    file = Path(path)
    if not file.is_file():
        if must_exist:
            raise InvalidInputError(
                f"config file {str(path)!r} does not exist: pass a dict, or the path of a "
                "YAML file of key: value lines"
            )
        return {}
    import yaml  # only scripts that name a YAML config load PyYAML

    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"config file {str(path)!r} is not valid YAML: {e}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InvalidInputError(
            f"config file {str(path)!r} holds a {type(loaded).__name__}, not a mapping of "
            "key: value"
        )
    out: dict[str, Any] = {}
    for key, value in loaded.items():
        if key == "wandb_version" or key == "_wandb":
            continue
        wrapped = isinstance(value, dict) and set(value) <= {"value", "desc"} and "value" in value
        out[str(key)] = value["value"] if wrapped else value
    return out


def config_items(
    params: object,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> dict[str, Any]:
    """The key/value pairs of a config source, as W&B reads them: a mapping, a YAML path,
    an ``argparse.Namespace``, absl or TensorFlow flags, or any object's ``__dict__``;
    filtered by ``include`` or ``exclude`` keys."""
    if include and exclude:
        raise InvalidInputError(
            "config_include_keys and config_exclude_keys cannot both be given: pick one"
        )
    items: dict[str, Any]
    if params is None:
        items = {}
    elif isinstance(params, Config):
        items = params.as_dict()
    elif isinstance(params, Mapping):
        items = {str(k): v for k, v in params.items()}
    elif isinstance(params, str | Path):
        items = _from_yaml(params, must_exist=True)
    elif isinstance(params, argparse.Namespace):
        items = dict(vars(params))
    else:
        items = _object_items(params)
    if include:
        items = {k: v for k, v in items.items() if k in include}
    if exclude:
        items = {k: v for k, v in items.items() if k not in exclude}
    return items


def _object_items(params: object) -> dict[str, Any]:
    module = inspect.getmodule(params)
    name = module.__name__ if module is not None else ""
    if name == "absl.flags" or name.startswith("absl.flags."):
        flags: Any = getattr(params, "FLAGS", params)
        return {key: flags[key].value for key in dir(flags)}
    if not hasattr(params, "__dict__"):
        raise InvalidInputError(
            f"config must be a dict, a YAML file path, an argparse.Namespace or an object "
            f"with attributes, not {type(params).__name__}"
        )
    return {k: v for k, v in vars(params).items() if not k.startswith("__")}


class _Missing(KeyError, AttributeError):
    """A key that is not set: a ``KeyError`` for ``config[k]``, an ``AttributeError``
    for ``config.k`` (so that ``getattr(config, k, default)`` and ``hasattr`` work)."""


class Config(MutableMapping[str, Any]):
    """A run's config: W&B's ``wandb.config``. See the module docstring."""

    _items: dict[str, Any]
    _locked: dict[str, str]
    _on_change: Callable[[], None] | None
    _lock: threading.Lock

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        object.__setattr__(self, "_items", {})
        object.__setattr__(self, "_locked", {})
        object.__setattr__(self, "_on_change", on_change)
        object.__setattr__(self, "_lock", threading.Lock())

    def __repr__(self) -> str:
        return repr(self.as_dict())

    # -- reading -----------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise _Missing(key) from None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[str]:  # type: ignore[override]
        """The keys, without W&B's private ``_``-prefixed ones."""
        return [k for k in self._items if not k.startswith("_")]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(k, v) for k, v in self._items.items() if not k.startswith("_")]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [v for _, v in self.items()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """A plain copy of every item (what the registry stores)."""
        with self._lock:
            return dict(self._items)

    # -- writing -----------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self._apply({key: value}, allow_val_change=False)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._items[key]
        self._changed()

    def update(  # type: ignore[override]
        self, d: object = None, allow_val_change: bool | None = None, **kwargs: Any
    ) -> None:
        """Add the items of ``d`` (any config source: see :func:`config_items`).

        Raises:
            ConfigError: a key already holds another value and ``allow_val_change`` is
                not True.
        """
        items = config_items(d)
        items.update(kwargs)
        self._apply(items, allow_val_change=bool(allow_val_change))

    def setdefaults(self, d: object) -> None:
        """Add the items of ``d`` whose keys are not set yet."""
        items = {k: v for k, v in config_items(d).items() if k.strip("-") not in self._items}
        self._apply(items, allow_val_change=False)

    def update_locked(self, d: Mapping[str, Any], user: str = "sweep") -> None:
        """Set ``d``'s items and lock their keys: later updates of them are ignored with
        a warning (how a sweep's parameters win over a trial's own defaults)."""
        clean = self._sanitized(d)
        with self._lock:
            for key, value in clean.items():
                self._items[key] = value
                self._locked[key] = user
        self._changed()

    def persist(self) -> None:
        """W&B's explicit "send the config now": the next flush sends it anyway."""
        self._changed()

    def _notify(self, on_change: Callable[[], None] | None) -> None:
        """Call ``on_change`` after each change from now on."""
        object.__setattr__(self, "_on_change", on_change)

    def _over(self, stored: Mapping[str, Any]) -> Config:
        """A resumed run's config: what it had (``stored``) with this one's items and
        locks over it, calling the same ``on_change``."""
        merged = Config(self._on_change)
        merged._items.update(stored)
        merged._items.update(self._items)
        merged._locked.update(self._locked)
        return merged

    def _apply(self, items: Mapping[str, Any], *, allow_val_change: bool) -> None:
        clean = self._sanitized(items)
        ignored: list[str] = []
        with self._lock:
            for key, value in clean.items():
                if key in self._locked:
                    if self._items.get(key) != value:
                        ignored.append(key)
                    continue
                if not allow_val_change and key in self._items and self._items[key] != value:
                    raise ConfigError(
                        f"Attempted to change value of config key {key!r} from "
                        f"{self._items[key]!r} to {value!r}: pass allow_val_change=True to "
                        "config.update() if you really mean it"
                    )
            for key, value in clean.items():
                if key not in self._locked:
                    self._items[key] = value
        for key in ignored:
            warnings.warn(
                f"Config item {key!r} was locked by {self._locked[key]!r} (ignored update).",
                stacklevel=3,
            )
        self._changed()

    def _sanitized(self, items: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for key, value in items.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"config keys are strings, not {type(key).__name__}")
            friendly = json_friendly(value)
            require_json(friendly, f"config[{key!r}]")
            clean[key.strip("-")] = friendly
        return clean

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
