"""What the CLI prints: pure functions from registry records to text, DOT and dicts."""

from artisync.views.lineage import LineageEdge, LineageGraph, LineageNode, build_lineage
from artisync.views.listing import human_age, human_size

__all__ = [
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "build_lineage",
    "human_age",
    "human_size",
]
