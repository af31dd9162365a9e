"""The ``artisync`` command (:mod:`artisync.cli.main` wires its subcommands)."""

from artisync.cli.main import main

__all__ = ["main"]
