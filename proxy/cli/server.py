"""Commands that run something: `serve` (the proxy), `migrate` (the schema), and
`simulate-upstream` (the stand-in upstream)."""

import argparse
import logging

from aiohttp import web

from proxy.observability.access_log import batch_lines
from proxy.cli.arguments import positive_int
from proxy.cli.support import CliError, ready_database, check_port_free
from proxy.config.settings import Settings
from proxy.serve import run_server, run_workers

log = logging.getLogger("billing_proxy")


def cmd_serve(args, settings: Settings) -> None:
    if not args.reuse_port:  # a worker's supervisor has checked already
        check_port_free(args.host, args.port)
    if not settings.upstream_api_key:
        log.warning("UPSTREAM_API_KEY is not set: calls go to %s with no credential, and it will refuse them "
                    "(401). Set UPSTREAM_API_KEY, or point UPSTREAM_BASE_URL at `billing-proxy simulate-upstream` "
                    "to try the proxy (README, Quick start).", settings.upstream_base_url)
    url = ready_database(settings)
    batch_lines(settings.log_format)  # the access log, written in batches (proxy/observability/access_log.py)
    where = "embedded PostgreSQL in " + str(settings.home) if not settings.database_url else "DATABASE_URL"
    log.info("billing-proxy on http://%s:%d (database: %s, upstream: %s, workers: %d)", args.host, args.port, where,
             settings.upstream_base_url, args.workers)
    if args.workers > 1:
        worker_args = [*(["--config", str(args.config)] if args.config else []), "serve", "--host", args.host,
                       "--port", str(args.port), "--reuse-port"]
        code = run_workers(args.workers, url, worker_args)
        if code:
            raise CliError("a worker did not stop cleanly")
        return
    run_server(settings, url, args.host, args.port, reuse_port=args.reuse_port)


def cmd_migrate(args, settings: Settings) -> None:
    ready_database(settings)
    print("database schema is up to date")


def cmd_simulate_upstream(args, settings: Settings) -> None:
    from proxy.simulator import create_simulator
    check_port_free(args.host, args.port)
    log.info("simulated upstream on http://%s:%d/v1", args.host, args.port)
    web.run_app(create_simulator(api_key=args.api_key, admin_key=args.admin_key), host=args.host, port=args.port,
                print=None)


def add_serve_commands(sub) -> None:
    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=positive_int, default=1,
                       help="processes serving one port (SO_REUSEPORT); default 1")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers
    serve.set_defaults(handler=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(handler=cmd_migrate)


def add_simulator_command(sub) -> None:
    sim = sub.add_parser("simulate-upstream", help="run a local stand-in for the upstream API")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9000)
    sim.add_argument("--api-key", help="require this upstream key (default: accept any)")
    sim.add_argument("--admin-key", help="require this admin key on its Usage and Costs API (default: any)")
    sim.set_defaults(handler=cmd_simulate_upstream)
