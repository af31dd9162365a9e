"""Hypothesis strategies for spool submissions that are wrong in every way we can name.

Each strategy yields a :class:`Case`: a label saying what is wrong and a function
that renders the spool file's bytes for a given submission id. Every case starts
from :func:`valid` (a correct submission whose snapshot :func:`write_snapshot`
puts in place) and breaks exactly one thing, so that every case must be rejected:

- broken JSON (cut short, random bytes, other JSON types, invalid UTF-8, NaN);
- wrong types for each field (a string of aliases, a float size, a bool version...);
- unknown formats, format versions, fields, kinds and actions, missing fields;
- paths escaping the artifact root or the submission's staging area, relative
  local paths;
- huge, negative and non-finite numbers (sizes, times, TTLs, max_objects);
- invalid names, types, aliases, tags, projects and entities;
- missing files (snapshots, immutable files and directories, ``file://`` references)
  and snapshots whose size or digest is not theirs;
- what is over a bound or never valid (issue 13): control characters and huge lengths
  in every name, too many aliases, long descriptions and entry paths, ``file://`` URIs
  that are not absolute local paths, bare ``s3://`` or ``http://``, integers of more
  than 4,300 digits, a file and a directory of one path.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from artisync.spool import FORMAT, FORMAT_VERSION, Spool

__all__ = ["Case", "categories", "snapshot", "valid", "write_snapshot"]


def snapshot(sub_id: str) -> bytes:
    """The bytes of a submission's snapshot: its own, so that no case finds its blob
    stored already by another (a store skips those without looking at them)."""
    return f"the snapshot of {sub_id}\n".encode()


def _digest(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


_SAMPLE_DIGEST = _digest(snapshot("sample"))
MISSING = "/nonexistent-artisync-fault/file.bin"

Render = Callable[[str], bytes]


@dataclass(frozen=True)
class Case:
    """One malformed submission: what is wrong with it, and its bytes for an id."""

    label: str
    render: Render


def valid(sub_id: str) -> dict[str, Any]:
    """A correct submission of one snapshot (see :func:`write_snapshot`)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "id": sub_id,
        "created_ns": time.time_ns(),
        "project": "fuzz",
        "entity": None,
        "run": {"id": "run-1", "name": None, "job_type": None, "group": None, "config": {}},
        "action": "log",
        "distributed_id": None,
        "artifact": {
            "name": "target",
            "type": "dataset",
            "description": None,
            "metadata": {"k": 1},
            "aliases": ["best"],
            "tags": [],
            "ttl_seconds": None,
        },
        "entries": [
            {
                "kind": "staged",
                "path": "data.bin",
                "staged": f"staging/{sub_id}/0",
                "digest": _digest(snapshot(sub_id)),
                "size": len(snapshot(sub_id)),
            }
        ],
    }


def write_snapshot(spool: Spool, sub_id: str) -> None:
    """The file :func:`valid`'s entry names, as the SDK would have staged it."""
    (spool.staging_dir(sub_id) / "0").write_bytes(snapshot(sub_id))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


KeyPath = tuple[str | int, ...]


_DELETE = object()


def _set(path: KeyPath, value: Any = _DELETE) -> Render:
    """The valid submission with the field at ``path`` set to ``value`` (or deleted)."""

    def render(sub_id: str) -> bytes:
        obj = valid(sub_id)
        target: Any = obj
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = copy.deepcopy(value)
        return _dumps(obj)

    return render


def _with_entry(entry: dict[str, Any]) -> Render:
    """The valid submission with its one entry replaced by ``entry`` ("{id}" filled)."""

    def render(sub_id: str) -> bytes:
        obj = valid(sub_id)
        obj["entries"] = [
            {k: v.replace("{id}", sub_id) if isinstance(v, str) else v for k, v in entry.items()}
        ]
        return _dumps(obj)

    return render


# -- broken JSON ----------------------------------------------------------------------


def _cut(at: int) -> Render:
    def render(sub_id: str) -> bytes:
        data = _dumps(valid(sub_id))
        return data[: at % len(data)]

    return render


def _insert(at: int, junk: bytes) -> Render:
    def render(sub_id: str) -> bytes:
        data = _dumps(valid(sub_id))
        return data[: at % len(data)] + junk + data[at % len(data) :]

    return render


def _raw_metadata(text: str) -> Render:
    def render(sub_id: str) -> bytes:
        return _dumps(valid(sub_id)).replace(b'{"k":1}', text.encode())

    return render


_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)

broken_json = st.one_of(
    st.integers(0, 10_000).map(lambda at: Case("cut short", _cut(at))),
    st.binary(max_size=64).map(lambda b: Case(f"random bytes {b!r}", lambda _: b)),
    st.text(max_size=64).map(lambda t: Case(f"random text {t!r}", lambda _: t.encode())),
    _json.filter(lambda v: not isinstance(v, dict)).map(
        lambda v: Case(f"JSON but not an object: {v!r}", lambda _: _dumps(v))
    ),
    st.tuples(st.integers(0, 10_000), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])).map(
        lambda a: Case(f"invalid UTF-8 {a[1]!r}", _insert(*a))
    ),
    st.sampled_from(
        [
            '{"k":NaN}',
            '{"k":Infinity}',
            '{"k":-Infinity}',
            '{"k":1e999}',
            '{"k":[1,}',
            '{"k":"\\ud800"}',
        ]
    ).map(lambda t: Case(f"not strict JSON in metadata: {t}", _raw_metadata(t))),
)

# -- wrong types ----------------------------------------------------------------------

_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(min_size=1, max_size=8),
    "int": st.integers(-5, 5),
    "float": st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f))
    | st.sampled_from([3.0, 1.5]),
    "bool": st.booleans(),
    "null": st.none(),
    "list": st.lists(st.integers(0, 3), max_size=2),
    "dict": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
}

# Each field (a dotted path), and the JSON types it may hold: any other must be rejected.
# fmt: off
_FIELDS: dict[str, set[str]] = {
    "id": {"str"}, "created_ns": {"int"}, "project": {"str"}, "entity": {"str", "null"},
    "run": {"dict", "null"}, "action": {"str"}, "artifact": {"dict"}, "entries": {"list"},
    "format_version": {"int"}, "artifact.name": {"str"}, "artifact.type": {"str"},
    "artifact.description": {"str", "null"}, "artifact.metadata": {"dict"},
    "artifact.aliases": {"list"}, "artifact.aliases.0": {"str"}, "artifact.tags": {"list"},
    "artifact.ttl_seconds": {"int", "float", "null"}, "run.id": {"str"},
    "run.name": {"str", "null"}, "run.job_type": {"str", "null"},
    "run.group": {"str", "null"}, "run.config": {"dict"}, "entries.0": {"dict"},
    "entries.0.kind": {"str"}, "entries.0.path": {"str"}, "entries.0.staged": {"str"},
    "entries.0.digest": {"str"}, "entries.0.size": {"int"},
}
# fmt: on


def _key_path(dotted: str) -> KeyPath:
    return tuple(int(k) if k.isdigit() else k for k in dotted.split("."))


@st.composite
def _wrong_type(draw: st.DrawFn) -> Case:
    dotted = draw(st.sampled_from(sorted(_FIELDS)))
    path, allowed = _key_path(dotted), _FIELDS[dotted]
    kind = draw(st.sampled_from(sorted(set(_TYPES) - allowed)))
    value = draw(_TYPES[kind])
    if "str" in allowed and kind == "list":
        value = [draw(_TYPES["str"])]  # a list of good strings is still not a string
    # A field that is a str may get any non-str; one that is a list of str
    # (aliases) may get a str, which must not be split into letters.
    return Case(f"{'.'.join(map(str, path))} = {value!r} ({kind})", _set(path, value))


wrong_types = _wrong_type() | st.sampled_from(
    [
        Case("aliases is one string", _set(("artifact", "aliases"), "best")),
        Case("tags is one string", _set(("artifact", "tags"), "tag")),
        Case("format_version true", _set(("format_version",), True)),
        Case("format_version 1.0", _set(("format_version",), 1.0)),
        Case("size true", _set(("entries", 0, "size"), True)),
        Case("ttl true", _set(("artifact", "ttl_seconds"), True)),
    ]
)

# -- formats, fields, kinds, actions ----------------------------------------------------

# fmt: off
_MISSING_KEYS = [_key_path(dotted) for dotted in [
    "format", "format_version", "id", "created_ns", "project", "artifact", "entries",
    "artifact.name", "artifact.type", "run.id", "entries.0.kind", "entries.0.path",
    "entries.0.staged", "entries.0.digest", "entries.0.size",
]]
# fmt: on

structure = st.one_of(
    st.sampled_from([None, "", "artisync.submission2", "wandb", 7, ["artisync.submission"]]).map(
        lambda f: Case(f"format {f!r}", _set(("format",), f))
    ),
    st.sampled_from([0, 2, -1, 10**30, "1", None]).map(
        lambda v: Case(f"format_version {v!r}", _set(("format_version",), v))
    ),
    st.sampled_from(_MISSING_KEYS).map(lambda p: Case(f"missing {'.'.join(map(str, p))}", _set(p))),
    st.tuples(
        st.sampled_from([(), ("artifact",), ("run",), ("entries", 0)]),
        st.sampled_from(["extra", "Format", "versions", "_id"]),
    ).map(lambda a: Case(f"unknown field {a[1]!r} in {a[0]}", _set((*a[0], a[1]), 1))),
    st.sampled_from(["file ", "symlink", "", "STAGED", "blob"]).map(
        lambda k: Case(f"unknown kind {k!r}", _set(("entries", 0, "kind"), k))
    ),
    st.sampled_from(["", "LOG", "commit", "delete"]).map(
        lambda a: Case(f"unknown action {a!r}", _set(("action",), a))
    ),
    st.sampled_from(
        [
            Case("upsert without distributed_id", _set(("action",), "upsert")),
            Case("finish without distributed_id", _set(("action",), "finish")),
            Case("log with a distributed_id", _set(("distributed_id",), "group-1")),
            Case(
                "the file names another id",
                lambda sub_id: _dumps(valid(sub_id) | {"id": sub_id[::-1]}),
            ),
            Case(
                "two entries with one path",
                lambda sub_id: _dumps(valid(sub_id) | {"entries": valid(sub_id)["entries"] * 2}),
            ),
        ]
    ),
)

# -- paths ------------------------------------------------------------------------------

_ESCAPES = ["../x", "../../etc/passwd", "/abs/x", "a/../../b", "..", "", "x/\x00/y", "/"]
_STAGED_ESCAPES = [
    "../../etc/passwd",
    "/etc/passwd",
    "staging/{id}/../../../x",
    "staging/other-submission/0",
    "staging/{id}",
    "tmp/{id}.json",
    "staging/{id}/./0",
]

paths = st.one_of(
    st.sampled_from(_ESCAPES).map(
        lambda p: Case(f"entry path {p!r}", _set(("entries", 0, "path"), p))
    ),
    st.sampled_from(_STAGED_ESCAPES).map(
        lambda p: Case(
            f"snapshot {p!r}",
            lambda sub_id: _set(("entries", 0, "staged"), p.replace("{id}", sub_id))(sub_id),
        )
    ),
    st.sampled_from(["relative/file.bin", "file.bin", "./x"]).map(
        lambda p: Case(
            f"immutable file at relative {p!r}",
            _with_entry(
                {"kind": "file", "path": "f", "local_path": p, "size": 1, "mtime_ns": 1, "inode": 1}
            ),
        )
    ),
    st.sampled_from(["relative/dir", "."]).map(
        lambda p: Case(
            f"immutable dir at relative {p!r}",
            _with_entry({"kind": "dir", "path": "d", "local_path": p}),
        )
    ),
)

# -- numbers -------------------------------------------------------------------------------

_HUGE = [-1, -(2**70), 2**63, 2**64, 10**30]

numbers = st.one_of(
    st.sampled_from(_HUGE).map(
        lambda n: Case(f"size {n}", _set(("entries", 0, "size"), n))
    ),
    st.sampled_from([-1, -(2**70), 2**63, 10**30]).map(
        lambda n: Case(f"created_ns {n}", _set(("created_ns",), n))
    ),
    st.sampled_from([-1, 0, -0.5, 10**40, 1e300]).map(
        lambda t: Case(f"ttl_seconds {t}", _set(("artifact", "ttl_seconds"), t))
    ),
    st.sampled_from([0, -3, 2**63, 10**40]).map(
        lambda m: Case(
            f"max_objects {m}",
            _with_entry({"kind": "reference", "path": "r", "ref": "file:///etc", "max_objects": m}),
        )
    ),
    st.sampled_from([("inode", -1), ("inode", 2**64), ("mtime_ns", 2**63), ("size", -5)]).map(
        lambda kv: Case(
            f"immutable file {kv[0]} {kv[1]}",
            _with_entry(
                {"kind": "file", "path": "f", "local_path": "/etc/hostname", "size": 1,
                 "mtime_ns": 1, "inode": 1} | {kv[0]: kv[1]}
            ),
        )
    ),
    st.sampled_from([1, 7, 4096, -1, -5]).map(
        lambda change: Case(
            f"snapshot size off by {change}",
            lambda sub_id: _set(("entries", 0, "size"), len(snapshot(sub_id)) + change)(sub_id),
        )
    ),
)  # fmt: skip

# -- names --------------------------------------------------------------------------------

_BAD_NAMES = ["", "a/b", "a:b", "..", ".", "x" * 129, "sp ace", "ünï", "tab\t"]

names = st.one_of(
    st.sampled_from(_BAD_NAMES).map(
        lambda n: Case(f"artifact name {n!r}", _set(("artifact", "name"), n))
    ),
    st.sampled_from(["", "a/b", "a:b", "wandb-history", "x" * 129]).map(
        lambda t: Case(f"artifact type {t!r}", _set(("artifact", "type"), t))
    ),
    st.sampled_from(["", "a/b", "x:y", "v3", "v0"]).map(
        lambda a: Case(f"alias {a!r}", _set(("artifact", "aliases"), ["ok", a]))
    ),
    st.sampled_from(["", " lead", "bad!", "a\tb", "trailing "]).map(
        lambda t: Case(f"tag {t!r}", _set(("artifact", "tags"), [t]))
    ),
    st.sampled_from(["", "a/b", "x:y", "x" * 129]).map(
        lambda p: Case(f"project {p!r}", _set(("project",), p))
    ),
    st.sampled_from(["", "a/b", "e:x"]).map(lambda e: Case(f"entity {e!r}", _set(("entity",), e))),
    st.just(
        Case(
            "upsert with an empty distributed_id",
            lambda sub_id: _dumps(valid(sub_id) | {"action": "upsert", "distributed_id": ""}),
        )
    ),
)

# -- missing or wrong content --------------------------------------------------------------

content = st.one_of(
    st.just(
        Case(
            "snapshot missing",
            lambda sub_id: _set(("entries", 0, "staged"), f"staging/{sub_id}/gone")(sub_id),
        )
    ),
    st.just(
        Case(
            "immutable file missing",
            _with_entry(
                {"kind": "file", "path": "f", "local_path": MISSING, "size": 1, "mtime_ns": 1,
                 "inode": 1}
            ),
        )
    ),
    st.just(
        Case(
            "immutable directory missing",
            _with_entry({"kind": "dir", "path": "d", "local_path": MISSING}),
        )
    ),
    st.just(
        Case(
            "file reference missing",
            _with_entry({"kind": "reference", "path": "r", "ref": f"file://{MISSING}"}),
        )
    ),
    st.sampled_from(["not-base64!", "", "AAAA", _SAMPLE_DIGEST[:-4], _SAMPLE_DIGEST + "AAAA"]).map(
        lambda d: Case(f"snapshot digest {d!r}", _set(("entries", 0, "digest"), d))
    ),
    st.just(
        Case("a reference with an unknown scheme", _with_entry(
            {"kind": "reference", "path": "r", "ref": "ftp://example.invalid/x"}
        ))
    ),
)  # fmt: skip


# -- bounds (issue 13) -------------------------------------------------------------------

# Every field that names something, and where it sits in the submission.
_NAMED_FIELDS: list[KeyPath] = [
    ("project",), ("entity",), ("artifact", "type"), ("artifact", "aliases", 0),
    ("artifact", "tags", 0), ("run", "id"), ("run", "name"), ("run", "group"),
    ("run", "job_type"),
]  # fmt: skip
_CONTROLS = ["\x00", "\x1b[2J", "\r", "\n", "\x7f", "\x85", "\x07"]


def _set_named(path: KeyPath, value: str) -> Render:
    def render(sub_id: str) -> bytes:
        obj = valid(sub_id)
        obj["artifact"]["tags"] = ["tag"]
        target: Any = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return _dumps(obj)

    return render


def _huge_int(digits: int) -> Render:
    """The valid submission with metadata holding an integer of ``digits`` digits
    (written by hand: Python will not turn such an int into text)."""

    def render(sub_id: str) -> bytes:
        return _dumps(valid(sub_id)).replace(b'{"k":1}', b'{"k":' + b"7" * digits + b"}")

    return render


def _two_entries(first: str, second: str) -> Render:
    """Two snapshots of the one staged file, at ``first`` and ``second``."""

    def render(sub_id: str) -> bytes:
        obj = valid(sub_id)
        entry = obj["entries"][0]
        obj["entries"] = [entry | {"path": first}, entry | {"path": second}]
        return _dumps(obj)

    return render


def _reference(ref: str) -> Render:
    return _with_entry({"kind": "reference", "path": "r", "ref": ref})


bounds = st.one_of(
    st.tuples(st.sampled_from(_NAMED_FIELDS), st.sampled_from(_CONTROLS)).map(
        lambda a: Case(
            f"{'.'.join(map(str, a[0]))} with {a[1]!r}", _set_named(a[0], f"ok{a[1]}name")
        )
    ),
    st.tuples(st.sampled_from(_NAMED_FIELDS), st.sampled_from([257, 5000, 1_000_000])).map(
        lambda a: Case(
            f"{'.'.join(map(str, a[0]))} of {a[1]} characters", _set_named(a[0], "n" * a[1])
        )
    ),
    st.sampled_from([129, 2_000_000]).map(
        lambda n: Case(f"artifact name of {n} characters", _set(("artifact", "name"), "n" * n))
    ),
    st.sampled_from([257, 10_000]).map(
        lambda n: Case(f"{n} aliases", _set(("artifact", "aliases"), [f"a{i}" for i in range(n)]))
    ),
    st.just(Case("a 65 KiB description", _set(("artifact", "description"), "d" * 66_000))),
    st.sampled_from(["x" * 256, "d/" + "y" * 300 + "/f", "é" * 128, "/".join(["abc"] * 1400)]).map(
        lambda p: Case(f"entry path of {len(p)} characters", _set(("entries", 0, "path"), p))
    ),
    st.sampled_from(
        ["file://host/etc", "file://../etc", "file:etc", "file://", "file:/etc", "file://./x"]
    ).map(lambda r: Case(f"reference {r!r}", _reference(r))),
    st.sampled_from(["s3://", "gs://", "http://", "https://", "s3:///key", "http://:80/x"]).map(
        lambda r: Case(f"bare reference {r!r}", _reference(r))
    ),
    st.sampled_from([4301, 5000, 100_000]).map(
        lambda n: Case(f"an integer of {n} digits", _huge_int(n))
    ),
    st.sampled_from([("a", "a/b"), ("a", "a/b/c"), ("d/a", "d/a/b"), ("a", "a/x")]).map(
        lambda ab: Case(f"file {ab[0]!r} and {ab[1]!r}", _two_entries(*ab))
    ),
    st.just(Case("file 'a' and 'a/b' with 'a-b' between", lambda sub_id: _dumps(
        valid(sub_id) | {"entries": [
            valid(sub_id)["entries"][0] | {"path": p} for p in ("a/b", "a-b", "a")
        ]}
    ))),
    st.sampled_from(["", "x" * 129, "g\x00"]).map(
        lambda d: Case(
            f"upsert with distributed_id {d[:10]!r}",
            lambda sub_id: _dumps(valid(sub_id) | {"action": "upsert", "distributed_id": d}),
        )
    ),
)  # fmt: skip


# -- what is not content (issue 13) --------------------------------------------------------

# A FIFO the fault suite makes before it runs (reading one would block forever).
FIFO = "/tmp/artisync-fault-fifo"
_NOT_CONTENT = ["/dev/zero", "/dev/urandom", "/proc/self/status", "/proc/kmsg", FIFO]


def _immutable_file(path: str) -> Render:
    return _with_entry(
        {"kind": "file", "path": "f", "local_path": path, "size": 0, "mtime_ns": 0, "inode": 0}
    )


not_content = st.one_of(
    st.sampled_from(_NOT_CONTENT).map(
        lambda p: Case(f"file reference to {p}", _reference(f"file://{p}"))
    ),
    st.sampled_from(_NOT_CONTENT).map(lambda p: Case(f"immutable file {p}", _immutable_file(p))),
    st.sampled_from(["/proc/self", "/sys/kernel/mm"]).map(
        lambda p: Case(
            f"immutable directory {p}", _with_entry({"kind": "dir", "path": "d", "local_path": p})
        )
    ),
)


def categories() -> dict[str, st.SearchStrategy[Case]]:
    """Every kind of malformed submission above, by category (generate each in equal
    shares: hypothesis favours the first branch of a ``one_of``)."""
    return {
        "broken JSON": broken_json,
        "wrong types": wrong_types,
        "structure": structure,
        "paths": paths,
        "numbers": numbers,
        "names": names,
        "content": content,
        "bounds": bounds,
        "not content": not_content,
    }
