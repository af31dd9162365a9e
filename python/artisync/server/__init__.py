"""``artisync server``: the registry's HTTP API for many nodes, on PostgreSQL."""

from artisync.server.app import ROUTES, create_app
from artisync.server.caller import Caller
from artisync.server.settings import ServerSettings

__all__ = ["ROUTES", "Caller", "ServerSettings", "create_app"]
