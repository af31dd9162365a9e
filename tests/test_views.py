"""What the CLI prints: lineage graphs (text, DOT, JSON) and ``ls`` listings."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from artisync.errors import InvalidInputError
from artisync.registry import Registry, Version
from artisync.views import human_age, human_size
from artisync.views.lineage import (
    LineageGraph,
    build_lineage,
    node_label,
    render_dot,
    render_text,
    to_json,
    version_key,
)
from artisync.views.listing import (
    collections_json,
    collections_text,
    versions_json,
    versions_text,
)
from registry_backends import commit as commit_version


def commit(
    reg: Registry, name: str, digest: str, run_id: str | None = None, **overrides: Any
) -> Version:
    kind = "model" if name.startswith("model") else "dataset"
    fields = {"name": name, "type": kind, "run_id": run_id, **overrides}
    return commit_version(reg, digest, **fields).version


def run(reg: Registry, run_id: str, job_type: str, project: str = "proj") -> None:
    reg.ensure_run(project, None, run_id, job_type=job_type)


def fresh(reg: Registry, version: Version) -> Version:
    return reg.get_version_by_id(version.id)


@pytest.fixture
def pipeline(registry: Registry) -> dict[str, Version]:
    """ingest → raw:v0 → prep-1 → data:v0 ┐
    vocab:v0 (no run) ───────────────────┴→ train-1 → model:v0, model:v1 [best]
    model:v1 → eval-1 → report:v0 → publish-1;  model:v1 → serve-1"""
    run(registry, "ingest", "ingest")
    raw = commit(registry, "raw", "r0", "ingest")
    run(registry, "prep-1", "preprocess")
    registry.record_use("prep-1", raw.id)
    data = commit(registry, "data", "d0", "prep-1")
    vocab = commit(registry, "vocab", "w0")
    run(registry, "train-1", "train")
    registry.record_use("train-1", data.id)
    registry.record_use("train-1", vocab.id)
    model0 = commit(registry, "model", "m0", "train-1")
    model1 = commit(registry, "model", "m1", "train-1", aliases=["best"])
    run(registry, "eval-1", "evaluate")
    registry.record_use("eval-1", model1.id)
    report = commit(registry, "report", "p0", "eval-1")
    run(registry, "serve-1", "deploy")
    registry.record_use("serve-1", model1.id)
    run(registry, "publish-1", "publish")
    registry.record_use("publish-1", report.id)
    versions = {"raw": raw, "data": data, "vocab": vocab, "model0": model0}
    versions |= {"model1": model1, "report": report}
    return {name: fresh(registry, version) for name, version in versions.items()}


def distances(graph: LineageGraph) -> dict[str, int]:
    """Node label → distance from the center, for readable asserts."""
    return {node_label(graph, node): node.distance for node in graph.nodes.values()}


def edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    labels = {key: node_label(graph, node) for key, node in graph.nodes.items()}
    return {(labels[e.source], labels[e.target], e.kind) for e in graph.edges}


# -- building the graph -------------------------------------------------------------------


def test_lineage_walks_producers_upstream_and_consumers_downstream(
    registry: Registry, pipeline: dict[str, Version]
) -> None:
    graph = build_lineage(registry, pipeline["model1"], depth=2)
    assert graph.center == version_key(pipeline["model1"])
    assert distances(graph) == {
        "model:v1 [best, latest]": 0,
        "run train-1 (train)": -1,
        "data:v0 [latest]": -2,
        "vocab:v0 [latest]": -2,
        "run eval-1 (evaluate)": 1,
        "run serve-1 (deploy)": 1,
        "report:v0 [latest]": 2,
    }
    assert edges(graph) == {
        ("run train-1 (train)", "model:v1 [best, latest]", "logged"),
        ("data:v0 [latest]", "run train-1 (train)", "used"),
        ("vocab:v0 [latest]", "run train-1 (train)", "used"),
        ("model:v1 [best, latest]", "run eval-1 (evaluate)", "used"),
        ("model:v1 [best, latest]", "run serve-1 (deploy)", "used"),
        ("run eval-1 (evaluate)", "report:v0 [latest]", "logged"),
    }


def test_lineage_leaves_out_siblings_of_the_path(
    registry: Registry, pipeline: dict[str, Version]
) -> None:
    # model:v0 came from the same run, but neither from nor into model:v1.
    graph = build_lineage(registry, pipeline["model1"], depth=5)
    assert version_key(pipeline["model0"]) not in graph.nodes


def test_lineage_marks_nodes_with_more_beyond_the_depth(
    registry: Registry, pipeline: dict[str, Version]
) -> None:
    graph = build_lineage(registry, pipeline["model1"], depth=2)
    truncated = {node.key for node in graph.nodes.values() if node.truncated}
    assert truncated == {version_key(pipeline["data"]), version_key(pipeline["report"])}
    deeper = build_lineage(registry, pipeline["model1"], depth=4)
    assert distances(deeper)["raw:v0 [latest]"] == -4
    assert distances(deeper)["run publish-1 (publish)"] == 3
    assert [n.key for n in deeper.nodes.values() if n.truncated] == [version_key(pipeline["raw"])]


def test_lineage_of_depth_zero_is_the_center_alone(
    registry: Registry, pipeline: dict[str, Version]
) -> None:
    graph = build_lineage(registry, pipeline["vocab"], depth=0)
    assert list(graph.nodes) == [version_key(pipeline["vocab"])]
    assert graph.edges == [] and graph.center_node.truncated
    lonely = commit(registry, "lonely", "l0")
    assert not build_lineage(registry, lonely, depth=0).center_node.truncated
    with pytest.raises(InvalidInputError, match="depth"):
        build_lineage(registry, lonely, depth=-1)


def test_a_node_reached_two_ways_appears_once_with_both_edges(
    registry: Registry,
) -> None:
    run(registry, "prep", "preprocess")
    data = commit(registry, "data", "d0", "prep")
    vocab = commit(registry, "vocab", "w0", "prep")
    run(registry, "train", "train")
    registry.record_use("train", data.id)
    registry.record_use("train", vocab.id)
    model = commit(registry, "model", "m0", "train")
    graph = build_lineage(registry, model, depth=3)
    assert list(distances(graph).values()).count(-3) == 1
    assert ("run prep (preprocess)", "data:v0 [latest]", "logged") in edges(graph)
    assert ("run prep (preprocess)", "vocab:v0 [latest]", "logged") in edges(graph)
    text = render_text(graph)
    assert text.count("run prep (preprocess)") == 2
    assert "run prep (preprocess) (shown below)" in text


def test_a_run_that_used_what_it_logged_ends_the_walk(registry: Registry) -> None:
    run(registry, "loop", "train")
    version = commit(registry, "model", "m0", "loop")
    registry.record_use("loop", version.id)
    graph = build_lineage(registry, fresh(registry, version), depth=6)
    assert len(graph.nodes) == 2
    assert edges(graph) == {
        ("run loop (train)", "model:v0 [latest]", "logged"),
        ("model:v0 [latest]", "run loop (train)", "used"),
    }
    assert render_text(graph) == (
        "    ┌── model:v0 [latest] (shown below)\n"
        "┌── run loop (train)\n"
        "● model:v0 [latest]\n"
        "└── run loop (train) (shown above)\n"
    )


def test_nodes_of_other_projects_are_named_with_their_project(
    registry: Registry,
) -> None:
    version = commit(registry, "model", "m0")
    run(registry, "consumer", "evaluate", project="other")
    registry.record_use("consumer", version.id, project="other")
    graph = build_lineage(registry, fresh(registry, version))
    assert "run other/consumer (evaluate)" in distances(graph)
    assert graph.nodes["run:local/other/consumer"].distance == 1


# -- text ---------------------------------------------------------------------------------


def test_text_draws_upstream_above_and_downstream_below_the_marked_center(
    registry: Registry, pipeline: dict[str, Version]
) -> None:
    graph = build_lineage(registry, pipeline["model1"], depth=2)
    assert render_text(graph) == (
        "    ┌── vocab:v0 [latest]\n"
        "    ├── data:v0 [latest] …\n"
        "┌── run train-1 (train)\n"
        "● model:v1 [best, latest]\n"
        "├── run eval-1 (evaluate)\n"
        "│   └── report:v0 [latest] …\n"
        "└── run serve-1 (deploy)\n"
        "… marks more lineage beyond depth 2\n"
    )


def test_text_can_be_plain_ascii(registry: Registry, pipeline: dict[str, Version]) -> None:
    graph = build_lineage(registry, pipeline["model1"], depth=2)
    text = render_text(graph, ascii=True)
    assert text.isascii()
    assert text.splitlines()[:5] == [
        "    /-- vocab:v0 [latest]",
        "    +-- data:v0 [latest] ...",
        "/-- run train-1 (train)",
        "* model:v1 [best, latest]",
        "+-- run eval-1 (evaluate)",
    ]


# -- DOT ----------------------------------------------------------------------------------


@dataclass
class Dot:
    """A parsed DOT digraph: node attributes and edges, with strings unescaped."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    defaults: dict[str, dict[str, str]] = field(default_factory=dict)


_DOT_TOKEN = re.compile(
    r'\s+|//[^\n]*|(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<id>[A-Za-z_][A-Za-z_0-9]*|-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?))"
    r"|(?P<op>->|[{}\[\];,=])",
    re.S,
)


def _dot_tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _DOT_TOKEN.match(text, position)
        assert match, f"DOT syntax error at {text[position : position + 30]!r}"
        position = match.end()
        if match.group("string") is not None:
            inner = match.group("string")[1:-1]
            # Graphviz reads \" as a quote and keeps other pairs; labels then read \\ and \n.
            value = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), inner, flags=re.S)
            tokens.append(("id", value))
        elif match.group("id") is not None:
            tokens.append(("id", match.group("id")))
        elif match.group("op") is not None:
            tokens.append(("op", match.group("op")))
    return tokens


def parse_dot(text: str) -> Dot:
    """Parse the DOT subset a digraph of nodes, edges and attributes needs; fail loudly."""
    tokens = _dot_tokens(text)
    dot, at = Dot(), 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal at
        assert at < len(tokens), "DOT ended early"
        got_kind, got = tokens[at]
        assert got_kind == kind and (value is None or got == value), (tokens[at], kind, value)
        at += 1
        return got

    def peek(value: str) -> bool:
        return at < len(tokens) and tokens[at] == ("op", value)

    def attributes() -> dict[str, str]:
        found: dict[str, str] = {}
        while peek("["):
            take("op", "[")
            while not peek("]"):
                name = take("id")
                take("op", "=")
                found[name] = take("id")
                if peek(","):
                    take("op", ",")
            take("op", "]")
        return found

    take("id", "digraph")
    if tokens[at][0] == "id":
        take("id")
    take("op", "{")
    while not peek("}"):
        first = take("id")
        if first in ("graph", "node", "edge") and peek("["):
            dot.defaults[first] = attributes()
        elif peek("="):
            take("op", "=")
            take("id")
        elif peek("->"):
            chain = [first]
            while peek("->"):
                take("op", "->")
                chain.append(take("id"))
            attributes()
            dot.edges += list(itertools.pairwise(chain))
        else:
            dot.nodes.setdefault(first, {}).update(attributes())
        if peek(";"):
            take("op", ";")
    take("op", "}")
    assert at == len(tokens), f"text after the graph: {tokens[at:]}"
    return dot


def check_with_graphviz(text: str) -> None:
    """When Graphviz is installed, its own parser must accept the text too."""
    dot = shutil.which("dot")
    if dot is not None:
        done = subprocess.run(
            [dot, "-Tcanon"], input=text, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr


def test_dot_draws_runs_as_boxes_versions_as_ellipses_and_highlights_the_center(
    registry: Registry, pipeline: dict[str, Version]
) -> None:
    graph = build_lineage(registry, pipeline["model1"], depth=2)
    text = render_dot(graph)
    check_with_graphviz(text)
    dot = parse_dot(text)
    assert set(dot.nodes) == set(graph.nodes)
    assert sorted(dot.edges) == sorted((e.source, e.target) for e in graph.edges)
    for key, node in graph.nodes.items():
        assert dot.nodes[key]["shape"] == ("box" if node.kind == "run" else "ellipse")
    center = dot.nodes[graph.center]
    assert center["label"] == "model:v1 [best, latest]"
    assert "filled" in center["style"] and "bold" in center["style"]
    others = [attrs for key, attrs in dot.nodes.items() if key != graph.center]
    assert not any("filled" in attrs.get("style", "") for attrs in others)
    assert "dashed" in dot.nodes[version_key(pipeline["data"])]["style"]


def test_dot_escapes_quotes_and_backslashes_in_ids_and_labels(registry: Registry) -> None:
    weird = 'we"ird\\ id\\'
    registry.ensure_run("proj", None, weird, job_type='a "quoted"\njob')
    version = commit(registry, "model", "m0", weird)
    graph = build_lineage(registry, fresh(registry, version))
    text = render_dot(graph)
    check_with_graphviz(text)
    dot = parse_dot(text)
    key = f"run:local/proj/{weird}"
    assert dot.nodes[key]["label"] == 'run we"ird\\ id\\ (a "quoted"\njob)'
    assert dot.edges == [(key, graph.center)]


# -- JSON ---------------------------------------------------------------------------------


def test_lineage_json_is_plain_data(registry: Registry, pipeline: dict[str, Version]) -> None:
    graph = build_lineage(registry, pipeline["model1"], depth=1)
    data = json.loads(json.dumps(to_json(graph)))
    assert data["center"] == version_key(pipeline["model1"]) and data["depth"] == 1
    center = data["nodes"][0]
    assert center["center"] and center["qualified_name"] == "local/proj/model:v1"
    assert datetime.fromisoformat(center["created_at"]).timestamp() == pytest.approx(
        pipeline["model1"].created_at, abs=0.001
    )
    runs = [node for node in data["nodes"] if node["kind"] == "run"]
    assert {(n["id"], n["job_type"], n["distance"]) for n in runs} == {
        ("train-1", "train", -1),
        ("eval-1", "evaluate", 1),
        ("serve-1", "deploy", 1),
    }
    assert {e["kind"] for e in data["edges"]} == {"logged", "used"}


# -- listings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),
        (123_456_789, "117.7 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (3 * 1024**5, "3.0 PiB"),
    ],
)
def test_human_size_uses_binary_units(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_human_size_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError, match="-1"):
        human_size(-1)


@pytest.mark.parametrize(
    ("age", "shown"),
    [
        (-5, "just now"),
        (0.5, "just now"),
        (1, "1s ago"),
        (59.9, "59s ago"),
        (60, "1m ago"),
        (180, "3m ago"),
        (3599, "59m ago"),
        (3600, "1h ago"),
        (86399, "23h ago"),
        (2 * 86400, "2d ago"),
        (59 * 86400, "59d ago"),
        (60 * 86400, "2mo ago"),
        (719 * 86400, "23mo ago"),
        (720 * 86400, "1y ago"),
        (3 * 365 * 86400, "3y ago"),
    ],
)
def test_human_age_rounds_down_to_the_largest_unit(age: float, shown: str) -> None:
    assert human_age(age) == shown


def test_versions_listing_shows_aliases_sizes_files_ages_and_short_digests(
    registry: Registry,
) -> None:
    digest = "9e107d9d372bb6826bd81d3542a419d6"
    commit(registry, "model", digest, size=10)
    commit(
        registry,
        "model",
        "e4d909c290d0fb1ca068ffaddf22cbd0",
        size=1536,
        file_count=12,
        aliases=["best"],
    )
    versions = registry.list_versions("proj", "model")
    now = versions[-1].created_at + 180
    assert versions_text(versions, now=now) == (
        "VERSION  ALIASES          SIZE  FILES  CREATED  DIGEST\n"
        "v0                        10 B      1  3m ago   9e107d9d\n"
        "v1       best, latest  1.5 KiB     12  3m ago   e4d909c2"
    )
    assert versions_text([]) == "no versions"


def test_versions_listing_adds_tags_and_expiry_only_when_some_version_has_them(
    registry: Registry,
) -> None:
    commit(registry, "model", "d0")
    commit(registry, "model", "d1", tags=["nightly"], ttl_seconds=3600)
    versions = registry.list_versions("proj", "model")
    lines = versions_text(versions, now=versions[-1].created_at + 180).splitlines()
    assert lines[0].split() == [
        "VERSION",
        "ALIASES",
        "SIZE",
        "FILES",
        "CREATED",
        "DIGEST",
        "TAGS",
        "EXPIRES",
    ]
    assert lines[2].endswith("nightly  in 57m")
    expired = versions_text(versions, now=versions[-1].created_at + 7200)
    assert expired.splitlines()[2].endswith("expired")


def test_versions_json_has_every_field_with_iso_timestamps(registry: Registry) -> None:
    commit(registry, "model", "d0", metadata={"acc": 0.9}, ttl_seconds=60.0, tags=["x"])
    (version,) = registry.list_versions("proj", "model")
    (data,) = json.loads(json.dumps(versions_json([version])))
    assert data["version"] == "v0" and data["index"] == 0
    assert data["qualified_name"] == "local/proj/model:v0"
    assert (data["aliases"], data["tags"], data["metadata"]) == (["latest"], ["x"], {"acc": 0.9})
    assert (data["size"], data["file_count"], data["digest"]) == (10, 1, "d0")
    created = datetime.fromisoformat(data["created_at"])
    assert created.utcoffset() is not None
    assert created.timestamp() == pytest.approx(version.created_at, abs=0.001)
    expires = datetime.fromisoformat(data["expires_at"]).timestamp()
    assert expires == pytest.approx(version.created_at + 60, abs=0.001)


def test_collections_listing_shows_each_artifact_with_its_latest_version(
    registry: Registry,
) -> None:
    commit(registry, "model", "m0")
    commit(registry, "model", "m1", size=2048)
    commit(registry, "dataset-with-a-long-name", "d0", size=5)
    collections = registry.list_collections("proj")
    latest: dict[str, Version | None] = {
        c.name: registry.get_version("proj", c.name, "latest") for c in collections
    }
    latest["gone"] = None
    now = max(v.created_at for v in latest.values() if v) + 2 * 86400
    assert collections_text(collections, latest, now=now) == (
        "NAME                      TYPE     VERSIONS  LATEST     SIZE  UPDATED\n"
        "dataset-with-a-long-name  dataset         1  v0          5 B  2d ago\n"
        "model                     model           2  v1      2.0 KiB  2d ago"
    )
    data = collections_json(collections, latest)
    assert [(c["name"], c["version_count"]) for c in data] == [
        ("dataset-with-a-long-name", 1),
        ("model", 2),
    ]
    assert data[1]["latest"]["version"] == "v1" and data[1]["latest"]["size"] == 2048
    assert collections_text([], {}) == "no artifacts"


def test_a_collection_without_live_versions_shows_dashes(registry: Registry) -> None:
    version = commit(registry, "model", "m0")
    registry.delete_version(version.id, delete_aliases=True)
    collections = registry.list_collections("proj")
    text = collections_text(collections, {"model": None}, now=version.created_at)
    assert text.splitlines()[1].split() == ["model", "model", "0", "-", "-", "-"]
    assert collections_json(collections, {"model": None})[0]["latest"] is None
