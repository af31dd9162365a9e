"""The registry as a node sees ``artisync server``: its HTTP API (``HttpRegistry``).

``registry`` maps each ``Registry`` call to a route; ``transport`` sends requests and
turns answers and failures back into the registry's records and errors.
"""

from artisync.registry.http.registry import HttpRegistry

__all__ = ["HttpRegistry"]
