"""W&B's MongoDB-style run filters and orders, evaluated on registry run records.

``Api().runs(project, filters={"config.lr": 0.1, "summary_metrics.val_acc": {"$gt":
0.9}})`` and ``order="-summary_metrics.val_acc"`` work as in W&B. The registry returns a
project's runs; filtering them here keeps the registry interface small (a project has
thousands of runs, not millions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from artisync.errors import InvalidInputError
from artisync.registry.model import Run

__all__ = ["field_value", "order_runs", "run_matches"]

_MISSING: Final = object()

_TOP_FIELDS: Final[dict[str, Callable[[Run], Any]]] = {
    "id": lambda r: r.id,
    "name": lambda r: r.name or r.id,
    "display_name": lambda r: r.name or r.id,
    "displayName": lambda r: r.name or r.id,
    "group": lambda r: r.group,
    "job_type": lambda r: r.job_type,
    "jobType": lambda r: r.job_type,
    "state": lambda r: r.state,
    "created_at": lambda r: r.created_at,
    "createdAt": lambda r: r.created_at,
}
_NESTED: Final[dict[str, Callable[[Run], Mapping[str, Any]]]] = {
    "config": lambda r: r.config,
    "summary_metrics": lambda r: r.summary,
    "summary": lambda r: r.summary,
}


def field_value(run: Run, key: str) -> Any:
    """The value of ``key`` (``group``, ``config.lr``, ``summary_metrics.acc.top1``)."""
    if key in _TOP_FIELDS:
        return _TOP_FIELDS[key](run)
    head, _, rest = key.partition(".")
    if head not in _NESTED or not rest:
        known = ", ".join([*_TOP_FIELDS, "config.<key>", "summary_metrics.<key>"])
        raise InvalidInputError(f"unknown run field {key!r} in filters or order; known: {known}")
    value: Any = _NESTED[head](run)
    for part in rest.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _compare(value: Any, op: str, operand: Any) -> bool:
    if op == "$exists":
        return (value is not _MISSING) == bool(operand)
    if value is _MISSING:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    if op in ("$in", "$nin"):
        if not isinstance(operand, list | tuple):
            raise InvalidInputError(f"{op} takes a list, not {operand!r}")
        return (value in operand) == (op == "$in")
    if op == "$regex":
        return isinstance(value, str) and re.search(str(operand), value) is not None
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }
    if op not in comparisons:
        raise InvalidInputError(
            f"unknown filter operator {op!r}; use $eq $ne $gt $gte $lt $lte $in $nin $exists "
            "$regex, $and, $or"
        )
    try:
        return comparisons[op](value, operand)
    except TypeError:
        return False  # W&B's server too matches nothing when types do not compare


def run_matches(run: Run, filters: Mapping[str, Any]) -> bool:
    """Whether ``run`` satisfies every condition of ``filters``."""
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}")
    for key, condition in filters.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list):
                raise InvalidInputError(f"{key} takes a list of filters, not {condition!r}")
            results = (run_matches(run, c) for c in condition)
            if not (all(results) if key == "$and" else any(results)):
                return False
            continue
        value = field_value(run, key)
        if isinstance(condition, Mapping) and any(str(k).startswith("$") for k in condition):
            if not all(_compare(value, op, operand) for op, operand in condition.items()):
                return False
        elif not _compare(value, "$eq", condition):
            return False
    return True


def order_runs(runs: list[Run], order: str) -> list[Run]:
    """``runs`` sorted by ``order`` (``"+field"`` ascending, ``"-field"`` descending);
    runs without the field come last either way."""
    if not isinstance(order, str) or not order:
        raise InvalidInputError(f"Invalid order {order!r}: e.g. '-summary_metrics.val_acc'")
    descending = order.startswith("-")
    key = order.lstrip("+-")
    present = [(field_value(r, key), r) for r in runs]
    missing = [r for v, r in present if v is _MISSING or v is None]
    kept = [(v, r) for v, r in present if v is not _MISSING and v is not None]
    try:
        kept.sort(key=lambda pair: pair[0], reverse=descending)
    except TypeError:
        raise InvalidInputError(
            f"cannot order runs by {key!r}: its values are of mixed types"
        ) from None
    return [r for _, r in kept] + missing
