"""What ``artisync lineage`` shows: the runs and versions around one version.

:func:`build_lineage` walks the registry's lineage edges out from a center version,
upstream (the run that created it, the versions that run used, the runs that
created those, ...) and downstream (the runs that used it, the versions those runs
logged, ...), ``depth`` hops each way. The graph has two kinds of edges, both
pointing the way data flows: run → version it logged, version → run that used it.
It is then drawn as a terminal tree (:func:`render_text`), as Graphviz DOT
(:func:`render_dot`) or as plain dicts (:func:`to_json`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from artisync.errors import InvalidInputError
from artisync.registry.contract import Registry
from artisync.registry.model import Run, Version
from artisync.views.listing import iso_time
from artisync.views.terminal import printable

__all__ = [
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "build_lineage",
    "dot_quote",
    "node_label",
    "render_dot",
    "render_text",
    "run_key",
    "to_json",
    "version_key",
]


def run_key(run: Run) -> str:
    """A run's node key: run ids are unique within a project only."""
    return f"run:{run.entity}/{run.project}/{run.id}"


def version_key(version: Version) -> str:
    """A version's node key (version ids are unique registry-wide)."""
    return f"version:{version.id}"


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A run or a version in the graph (exactly one of ``run`` and ``version`` is set).

    ``distance`` is the number of hops from the center, negative upstream and
    positive downstream (0 for the center). ``truncated`` says the node has
    neighbours beyond ``depth`` that the graph leaves out.
    """

    key: str
    distance: int
    run: Run | None = None
    version: Version | None = None
    truncated: bool = False

    @property
    def kind(self) -> str:
        """``"run"`` or ``"version"``."""
        return "run" if self.run is not None else "version"

    @property
    def hidden(self) -> bool:
        """Whether the node is in a project the caller may not see (no name is known)."""
        record = self.run if self.run is not None else self.version
        return record is not None and record.hidden


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """An edge in the direction data flows: run → version it logged, or
    version → run that used it."""

    source: str
    target: str

    @property
    def kind(self) -> str:
        """``"logged"`` (run → version) or ``"used"`` (version → run)."""
        return "logged" if self.source.startswith("run:") else "used"


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """Runs and versions within ``depth`` hops of the ``center`` version.

    ``nodes`` is keyed by node key, in the order the walk found them (center first);
    ``edges`` has no duplicates. Each node appears once.
    """

    center: str
    depth: int
    nodes: dict[str, LineageNode]
    edges: list[LineageEdge] = field(default_factory=list)

    @property
    def center_node(self) -> LineageNode:
        """The version the graph was built around."""
        return self.nodes[self.center]

    def inputs(self, key: str) -> list[LineageNode]:
        """The nodes with an edge into ``key`` (what it came from), in edge order."""
        return [self.nodes[e.source] for e in self.edges if e.target == key]

    def outputs(self, key: str) -> list[LineageNode]:
        """The nodes ``key`` has an edge to (what came from it), in edge order."""
        return [self.nodes[e.target] for e in self.edges if e.source == key]


# -- building -----------------------------------------------------------------------------


def _neighbours(registry: Registry, node: LineageNode, upstream: bool) -> Iterator[LineageNode]:
    """The nodes one hop from ``node`` (with distance 0: the caller sets it). A hidden
    neighbour (a project the caller may not see) is a leaf of its own: nothing is known
    to lead on from it."""
    if node.hidden:
        return
    side = "up" if upstream else "down"
    if node.version is not None:
        if upstream:
            producer = registry.produced_by(node.version.id)
            runs = [] if producer is None else [producer]
        else:
            runs = registry.used_by(node.version.id)
        for n, run in enumerate(runs):
            key = f"hidden:{side}:{node.key}:{n}" if run.hidden else run_key(run)
            yield LineageNode(key, 0, run=run)
        return
    owner = node.run
    assert owner is not None
    lookup = registry.used_by_run if upstream else registry.logged_by_run
    for n, version in enumerate(lookup(owner.id, project=owner.project, entity=owner.entity)):
        key = f"hidden:{side}:{node.key}:{n}" if version.hidden else version_key(version)
        yield LineageNode(key, 0, version=version)


def build_lineage(registry: Registry, version: Version, depth: int = 2) -> LineageGraph:
    """The lineage graph around ``version``, ``depth`` hops upstream and downstream.

    Upstream follows ``produced_by`` (version → the run that created it) and
    ``used_by_run`` (run → the versions it used); downstream follows ``used_by``
    and ``logged_by_run``. Nodes one hop beyond ``depth`` are not added, but the
    nodes at ``depth`` that have them are marked ``truncated``. A node reached
    twice is kept once (its first, nearest place); an edge between two nodes
    already in the graph is still recorded.
    """
    if depth < 0:
        raise InvalidInputError(f"lineage depth must be 0 or more, got {depth}")
    center = LineageNode(version_key(version), 0, version=version)
    nodes = {center.key: center}
    edges: dict[LineageEdge, None] = {}
    for upstream in (True, False):
        sign = -1 if upstream else 1
        frontier = [center.key]
        # One hop past depth, only to learn which nodes have more beyond it.
        for hop in range(1, depth + 2):
            reached: list[str] = []
            for key in frontier:
                for found in _neighbours(registry, nodes[key], upstream):
                    edge = LineageEdge(found.key, key) if upstream else LineageEdge(key, found.key)
                    if found.key in nodes:
                        edges.setdefault(edge)
                    elif hop > depth:
                        nodes[key] = replace(nodes[key], truncated=True)
                    else:
                        nodes[found.key] = replace(found, distance=sign * hop)
                        edges.setdefault(edge)
                        reached.append(found.key)
            frontier = reached
    return LineageGraph(center.key, depth, nodes, list(edges))


# -- text ---------------------------------------------------------------------------------


def _qualifier(entity: str, project: str, center: LineageNode) -> str:
    """The ``entity/project/`` prefix of a node from another project than the center's."""
    home = center.version
    assert home is not None
    if entity != home.entity:
        return f"{entity}/{project}/"
    return f"{project}/" if project != home.project else ""


def node_label(graph: LineageGraph, node: LineageNode) -> str:
    """``run <id> (<job_type>)`` or ``name:vN [aliases]``, with ``project/`` in front
    when the node lives in another project than the center."""
    if node.hidden:
        return f"{node.kind} (hidden: in a project you may not see)"
    if node.run is not None:
        run = node.run
        job = f" ({run.job_type})" if run.job_type else ""
        return f"run {_qualifier(run.entity, run.project, graph.center_node)}{run.id}{job}"
    version = node.version
    assert version is not None
    aliases = f" [{', '.join(version.aliases)}]" if version.aliases else ""
    prefix = _qualifier(version.entity, version.project, graph.center_node)
    return f"{prefix}{version.name}:{version.version}{aliases}"


@dataclass(frozen=True, slots=True)
class _Glyphs:
    tee: str
    corner: str  # the last child's connector, downstream
    corner_up: str  # the same in the upstream tree, which is drawn upside down
    bar: str
    mark: str
    more: str


_UNICODE = _Glyphs("├── ", "└── ", "┌── ", "│   ", "●", "…")
_ASCII = _Glyphs("+-- ", "\\-- ", "/-- ", "|   ", "*", "...")


def _branch(
    graph: LineageGraph,
    key: str,
    upstream: bool,
    prefix: str,
    seen: set[str],
    glyphs: _Glyphs,
) -> list[str]:
    """The tree lines under ``key``, in drawing order for downstream and in reverse
    drawing order for upstream (the caller flips those, so that inputs sit above)."""
    children = graph.inputs(key) if upstream else graph.outputs(key)
    lines: list[str] = []
    for index, child in enumerate(children):
        last = index == len(children) - 1
        connector = (glyphs.corner_up if upstream else glyphs.corner) if last else glyphs.tee
        text = node_label(graph, child)
        if child.key in seen:
            # The first drawing came earlier: above, or below once upstream is flipped.
            lines.append(f"{prefix}{connector}{text} (shown {'below' if upstream else 'above'})")
            continue
        seen.add(child.key)
        more = f" {glyphs.more}" if child.truncated else ""
        lines.append(f"{prefix}{connector}{text}{more}")
        inner = prefix + ("    " if last else glyphs.bar)
        lines.extend(_branch(graph, child.key, upstream, inner, seen, glyphs))
    return lines


def render_text(graph: LineageGraph, *, ascii: bool = False) -> str:
    """The graph as a terminal tree: upstream above the center, downstream below.

    Upstream is drawn as a tree hanging upward (each node's inputs above it),
    downstream as an ordinary tree; the center is marked ``●`` (``*`` with
    ``ascii=True``, which draws with ASCII only). A node reached a second way is
    named again with "(shown above)" or "(shown below)"; ``…`` marks nodes with
    more lineage beyond the depth.
    """
    glyphs = _ASCII if ascii else _UNICODE
    seen = {graph.center}
    upstream = _branch(graph, graph.center, True, "", seen, glyphs)
    center = graph.center_node
    more = f" {glyphs.more}" if center.truncated else ""
    lines = [*reversed(upstream), f"{glyphs.mark} {node_label(graph, center)}{more}"]
    lines += _branch(graph, graph.center, False, "", seen, glyphs)
    if any(node.truncated for node in graph.nodes.values()):
        lines.append(f"{glyphs.more} marks more lineage beyond depth {graph.depth}")
    # Names and run ids are shown, never obeyed by the terminal (see terminal.py).
    return "\n".join(printable(line) for line in lines) + "\n"


# -- DOT and JSON -------------------------------------------------------------------------


def dot_quote(text: str) -> str:
    """``text`` as a DOT quoted string (backslashes, quotes and newlines escaped, other
    control characters shown as ``\\x1b`` escapes, as a terminal view would)."""
    escaped = printable(text, keep="\r\n").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "\\r").replace("\n", "\\n") + '"'


def render_dot(graph: LineageGraph) -> str:
    """The graph in Graphviz DOT: runs as boxes, versions as ellipses, the center
    filled and bold, truncated and hidden nodes dashed; data flows top to bottom."""
    lines = [
        "digraph lineage {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555"];',
    ]
    for node in graph.nodes.values():
        attributes = {
            "shape": "box" if node.run is not None else "ellipse",
            "label": dot_quote(node_label(graph, node)),
        }
        styles = []
        if node.key == graph.center:
            styles += ["filled", "bold"]
            attributes["fillcolor"] = dot_quote("#ffd966")
            attributes["penwidth"] = "2"
        if node.truncated or node.hidden:
            styles.append("dashed")
        if styles:
            attributes["style"] = dot_quote(",".join(styles))
        listed = ", ".join(f"{name}={value}" for name, value in attributes.items())
        lines.append(f"  {dot_quote(node.key)} [{listed}];")
    for edge in graph.edges:
        lines.append(f"  {dot_quote(edge.source)} -> {dot_quote(edge.target)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_json(graph: LineageGraph, node: LineageNode) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "key": node.key,
        "kind": node.kind,
        "distance": node.distance,
        "center": node.key == graph.center,
        "truncated": node.truncated,
        "label": node_label(graph, node),
    }
    if node.hidden:
        return facts | {"hidden": True}
    if node.run is not None:
        run = node.run
        facts |= {
            "id": run.id,
            "entity": run.entity,
            "project": run.project,
            "name": run.name,
            "job_type": run.job_type,
            "group": run.group,
            "state": run.state,
            "created_at": iso_time(run.created_at),
        }
    else:
        version = node.version
        assert version is not None
        facts |= {
            "id": version.id,
            "entity": version.entity,
            "project": version.project,
            "name": version.name,
            "type": version.type,
            "version": version.version,
            "qualified_name": version.qualified_name,
            "aliases": list(version.aliases),
            "digest": version.digest,
            "size": version.size,
            "file_count": version.file_count,
            "created_at": iso_time(version.created_at),
        }
    return facts


def to_json(graph: LineageGraph) -> dict[str, Any]:
    """The graph as plain dicts: ``center`` (a node key), ``depth``, ``nodes`` (in
    the order found) and ``edges`` (``source``, ``target``, ``kind``)."""
    return {
        "center": graph.center,
        "depth": graph.depth,
        "nodes": [_node_json(graph, node) for node in graph.nodes.values()],
        "edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in graph.edges],
    }
