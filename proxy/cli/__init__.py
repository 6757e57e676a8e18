"""The `billing-proxy` command line, one module per command group."""

from proxy.cli.main import main

__all__ = ["main"]
