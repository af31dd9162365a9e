"""What ``import_registry`` did: counts of what it copied and found already there, the
conflicts it left alone, and the versions it renumbered."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["Conflict", "Counts", "ImportReport"]


@dataclass(slots=True)
class Counts:
    """How many of each kind of record; ``lineage`` counts edges (produced and used),
    ``history`` rows of runs' history."""

    projects: int = 0
    runs: int = 0
    sweeps: int = 0
    collections: int = 0
    versions: int = 0
    aliases: int = 0
    tags: int = 0
    submissions: int = 0
    parts: int = 0
    lineage: int = 0
    history: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def total(self) -> int:
        """Every record counted."""
        return sum(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        """``3 projects, 10 runs, ...``: the kinds with a non-zero count, or ``nothing``."""
        label = {"lineage": "lineage edges", "history": "history rows"}
        shown = [
            f"{getattr(self, f.name)} {label.get(f.name, f.name)}"
            for f in fields(self)
            if getattr(self, f.name)
        ]
        return ", ".join(shown) or "nothing"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Something of the node that the server holds otherwise, left as the server has it.

    ``subject`` names the record (``artifact local/proj/model``, ``submission 9f2c...``);
    ``detail`` says how the two differ and what to do about it.
    """

    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


@dataclass(slots=True)
class ImportReport:
    """The outcome of copying one embedded registry into a server's database.

    ``copied`` is what the import added; ``present`` what the server already held the
    same (a second import of the same home finds everything here). ``runs_updated``
    counts runs the node had changed later than the server (their fields were copied).
    ``conflicts`` are records left as the server has them; ``renumbered`` says which of
    the node's versions got other numbers on the server (only with ``renumber=True``).
    """

    source: str
    target: str
    copied: Counts = field(default_factory=Counts)
    present: Counts = field(default_factory=Counts)
    runs_updated: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self, *, max_listed: int = 20) -> list[str]:
        """The report for a terminal: a few lines, then at most ``max_listed`` conflicts."""
        out = [
            f"imported {self.source} into {self.target} in {self.seconds:.1f}s",
            f"copied: {self.copied.describe()}",
            f"already there: {self.present.describe()}",
        ]
        if self.runs_updated:
            out.append(f"runs updated from the node (changed there since): {self.runs_updated}")
        for note in self.renumbered[:max_listed]:
            out.append(f"renumbered: {note}")
        if self.conflicts:
            out.append(f"conflicts, left as the server has them: {len(self.conflicts)}")
            out.extend(f"  {conflict}" for conflict in self.conflicts[:max_listed])
            if len(self.conflicts) > max_listed:
                out.append(f"  and {len(self.conflicts) - max_listed} more")
        else:
            out.append("conflicts: none")
        return out
