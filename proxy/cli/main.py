"""`billing-proxy`: the parser of every command group, and running the command it names."""

import argparse
import os
import sys
from pathlib import Path

from billing.catalog import CatalogError
from billing.db.tenants import AlreadyExists, Conflict, NotFound
from proxy.cli import budgets, finance, keys, prices, reports, server, tenants
from proxy.cli.arguments import FORMATS, year_month
from proxy.cli.support import CliError
from proxy.config.settings import load_settings
from proxy.config.values import ConfigError
from proxy.observability.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing-proxy", description="Cost-accounting proxy for LLM APIs.")
    parser.add_argument("--config", type=Path, help="TOML file with settings (see README)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show the logs of the libraries underneath (the embedded PostgreSQL, alembic)")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_command(*names, **kwargs):
        command = sub.add_parser(*names, **kwargs)
        command.add_argument("--format", choices=FORMATS, default="table")
        return command

    server.add_serve_commands(sub)
    tenants.add_commands(sub)
    keys.add_commands(sub)
    tenants.add_credit_commands(sub)
    budgets.add_commands(sub, data_command)
    reports.add_log_commands(data_command)
    prices.add_commands(sub)
    reports.add_commands(sub, data_command)
    finance.add_finance_commands(sub, data_command, year_month)
    server.add_simulator_command(sub)
    return parser


# What a shell reports for a command killed by SIGPIPE (128 + 13), as `yes | head -1` does.
BROKEN_PIPE_STATUS = 141


def main(argv: list[str] | None = None) -> int:
    """Run a command; its exit status. A reader that stops early (`billing-proxy tenants
    list | head -1`) ends the command quietly, with the status a shell gives SIGPIPE."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can be caught, not at interpreter exit
    except BrokenPipeError:
        # Python would flush stdout again at exit and complain: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_STATUS


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"billing-proxy: {exc}", file=sys.stderr)
        return 2
    serving = args.handler in (server.cmd_serve, server.cmd_simulate_upstream)
    # A command's output is what it prints; its own logs say only what went wrong, unless asked.
    configure_logging(settings.log_level, settings.log_format if args.handler is server.cmd_serve else "text",
                      verbose=args.verbose, own_level=None if serving or args.verbose else "WARNING")
    try:
        args.handler(args, settings)
    except (NotFound, AlreadyExists, Conflict, CatalogError, CliError, ConfigError, ValueError) as exc:
        print(f"billing-proxy: {exc}", file=sys.stderr)
        return 1
    return 0
