"""The `billing-proxy` command line."""

import argparse
import asyncio
import logging
import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from aiohttp import web

from billing.catalog import CatalogError
from billing.db.engine import embedded_database_url, make_engine
from billing.db.keys import issue_key, list_keys, revoke_key
from billing.db.migrate import upgrade_to_head
from billing.db.prices import load_pricebook, set_price, sync_catalog
from billing.db.reports import monthly_report
from billing.db.tenants import AlreadyExists, NotFound, create_tenant, get_tenant, list_tenants, update_tenant
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier, exact_sum
from billing.report import (COST_FIELDS, TOKEN_FIELDS, money, parse_dimensions, parse_month, report_dict,
                            row_dict)
from proxy.app import create_app, merged_catalog
from proxy.cli_format import parse_duration, render, to_json
from proxy.settings import ConfigError, Settings, load_settings

log = logging.getLogger("billing_proxy")


class CliError(Exception):
    pass


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded_database_url(settings.home)


def _ready_database(settings: Settings) -> str:
    url = database_url(settings)
    upgrade_to_head(url)
    return url


def _run_db(settings: Settings, action) -> None:
    """Migrate, then run `action(engine)` on a fresh engine in a fresh event loop."""
    url = _ready_database(settings)

    async def runner():
        engine = make_engine(url, pool_size=2)
        try:
            await sync_catalog(engine, merged_catalog(settings))
            return await action(engine)
        finally:
            await engine.dispose()

    asyncio.run(runner())


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative number")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --- commands ---------------------------------------------------------------------------

def cmd_serve(args, settings: Settings) -> None:
    url = _ready_database(settings)
    where = "embedded PostgreSQL in " + str(settings.home) if not settings.database_url else "DATABASE_URL"
    log.info("billing-proxy on http://%s:%d (database: %s, upstream: %s)", args.host, args.port, where,
             settings.upstream_base_url)
    web.run_app(create_app(settings, url), host=args.host, port=args.port, print=None,
                handler_cancellation=False, shutdown_timeout=30)


def cmd_migrate(args, settings: Settings) -> None:
    _ready_database(settings)
    print("database schema is up to date")


TENANT_COLUMNS = ["id", "name", "status", "monthly_budget_usd", "monthly_token_quota", "price_multiplier",
                  "created_at"]


def cmd_tenants(args, settings: Settings) -> None:
    async def action(engine):
        if args.tenants_command == "create":
            tenants = [await create_tenant(engine, args.name, monthly_budget_usd=args.monthly_budget,
                                           monthly_token_quota=args.monthly_token_quota,
                                           price_multiplier=args.price_multiplier or Decimal(1))]
        elif args.tenants_command == "update":
            changes = {k: v for k, v in (("monthly_budget_usd", args.monthly_budget),
                                         ("monthly_token_quota", args.monthly_token_quota),
                                         ("price_multiplier", args.price_multiplier)) if v is not None}
            tenants = [await update_tenant(engine, args.name, **changes)]
        else:
            tenants = await list_tenants(engine)
        rows = [t.__dict__ for t in tenants]
        if args.tenants_command != "list" and args.format == "json":
            print(to_json({c: rows[0][c] for c in TENANT_COLUMNS}))
        else:
            print(render(rows, TENANT_COLUMNS, args.format))

    _run_db(settings, action)


KEY_COLUMNS = ["id", "display_prefix", "tenant", "label", "status", "created_at", "expires_at", "revoked_at"]


def cmd_keys(args, settings: Settings) -> None:
    async def action(engine):
        if args.keys_command == "issue":
            expires_at = datetime.now(timezone.utc) + args.expires_in if args.expires_in else None
            issued = await issue_key(engine, args.tenant, label=args.label, expires_at=expires_at)
            if args.format == "json":
                print(to_json({"id": issued.id, "key": issued.secret, "tenant": issued.tenant,
                               "prefix": issued.display_prefix, "label": issued.label,
                               "expires_at": issued.expires_at, "created_at": issued.created_at}))
            else:
                print(f"Issued key {issued.id} for tenant {issued.tenant}. Store it now; it is not shown again:")
                print(issued.secret)
        elif args.keys_command == "revoke":
            await revoke_key(engine, args.id)
            print(to_json({"id": args.id, "status": "revoked"}) if args.format == "json"
                  else f"key {args.id} revoked")
        else:
            keys = await list_keys(engine, args.tenant)
            print(render([k.__dict__ for k in keys], KEY_COLUMNS, args.format))

    _run_db(settings, action)


PRICE_COLUMNS = ["model", "tenant", "version", "effective_from", "up_to_input_tokens", "input", "cached",
                 "cache_write", "output", "reasoning", "source"]


def cmd_prices(args, settings: Settings) -> None:
    async def action(engine):
        if args.prices_command == "set":
            tier = Tier(input=args.input, output=args.output, cached=args.cached,
                        cache_write=args.cache_write, reasoning=args.reasoning)
            tenant_id = (await get_tenant(engine, args.tenant)).id if args.tenant else None
            version = PriceVersion(model=args.model, effective_from=args.effective_from or datetime.now(timezone.utc),
                                   tiers=(tier,), source="cli", tenant_id=tenant_id)
            version_id = await set_price(engine, version)
            print(to_json({"model": args.model, "version": version_id, "effective_from": version.effective_from})
                  if args.format == "json" else f"price version {version_id} of {args.model} set")
            return
        async with engine.connect() as conn:
            book = await load_pricebook(conn)
        tenant_names = {t.id: t.name for t in await list_tenants(engine)}
        at = args.at or datetime.now(timezone.utc)
        print(render(price_rows(book, at, args.history, args.model, tenant_names), PRICE_COLUMNS, args.format))

    _run_db(settings, action)


def price_rows(book: PriceBook, at: datetime, history: bool, model: str | None,
               tenant_names: dict[int, str]) -> list[dict]:
    """One row per tier: the versions in force at `at`, or with `history` every version."""
    owners = sorted({(v.model, v.tenant_id or 0) for v in book.all_versions()})
    rows = []
    for name, tenant_id in owners:
        if model is not None and name != model:
            continue
        tenant = tenant_id or None
        if history:
            versions = book.versions(name, tenant)
        else:
            current = book.version_at(name, at, tenant)
            versions = [current] if current else []
        for version in versions:
            for tier in version.tiers:
                rows.append({"model": name, "tenant": tenant_names.get(tenant_id), "version": version.id,
                             "effective_from": version.effective_from, "up_to_input_tokens": tier.up_to_input_tokens,
                             "input": tier.input, "cached": tier.cached_price, "cache_write": tier.cache_write_price,
                             "output": tier.output, "reasoning": tier.reasoning_price, "source": version.source})
    return rows


def cmd_report(args, settings: Settings) -> None:
    async def action(engine):
        report = await monthly_report(engine, args.month, tenant=args.tenant, by=args.by)
        if args.format == "json":
            print(to_json(report_dict(report)))
            return
        columns = [*report.by, *(["key_id"] if "key" in report.by else []), "requests", *TOKEN_FIELDS, "cost",
                   *COST_FIELDS]
        rows = [row_dict(r) for r in report.rows]
        columns.insert(columns.index("cost") + 1, "charge")
        if args.format == "csv":
            print(render(rows, columns, "csv"))
            return
        if report.by and rows:
            rows.append({columns[0]: "TOTAL", "requests": report.total_requests, "cost": report.total_cost,
                         "charge": report.total_charge,
                         **{f: sum(r.tokens[f] for r in report.rows) for f in TOKEN_FIELDS},
                         **{f: exact_sum(r.costs[f] for r in report.rows) for f in COST_FIELDS}})
        scope = f", tenant {report.tenant}" if report.tenant else ""
        print(f"Cost report for {report.month}{scope} (USD)")
        print(render(rows, columns, "table"))
        print(f"Total: {report.total_requests} requests, cost {money(report.total_cost)} USD, "
              f"charged {money(report.total_charge)} USD")

    _run_db(settings, action)


def cmd_simulate_upstream(args, settings: Settings) -> None:
    from proxy.simulator import create_simulator
    log.info("simulated upstream on http://%s:%d/v1", args.host, args.port)
    web.run_app(create_simulator(api_key=args.api_key), host=args.host, port=args.port, print=None)


# --- parser -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing-proxy", description="Cost-accounting proxy for LLM APIs.")
    parser.add_argument("--config", type=Path, help="TOML file with settings (see README)")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_command(*names, **kwargs):
        command = sub.add_parser(*names, **kwargs)
        command.add_argument("--format", choices=("table", "json", "csv"), default="table")
        return command

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(handler=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(handler=cmd_migrate)

    tenants = sub.add_parser("tenants", help="manage tenants (teams)")
    tenants_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    for name in ("create", "update"):
        command = tenants_sub.add_parser(name)
        command.add_argument("name")
        command.add_argument("--monthly-budget", type=_decimal, metavar="USD")
        command.add_argument("--monthly-token-quota", type=_count, metavar="N")
        command.add_argument("--price-multiplier", type=_decimal, metavar="X",
                             help="charge this tenant the upstream cost times X (1.2: markup, 0.9: discount)")
        command.add_argument("--format", choices=("table", "json", "csv"), default="table")
    tenants_sub.add_parser("list").add_argument("--format", choices=("table", "json", "csv"), default="table")
    tenants.set_defaults(handler=cmd_tenants)

    keys = sub.add_parser("keys", help="issue and revoke tenant API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    issue = keys_sub.add_parser("issue")
    issue.add_argument("--tenant", required=True)
    issue.add_argument("--label")
    issue.add_argument("--expires-in", type=_duration, metavar="30d")
    issue.add_argument("--format", choices=("table", "json"), default="table")
    listing = keys_sub.add_parser("list")
    listing.add_argument("--tenant")
    listing.add_argument("--format", choices=("table", "json", "csv"), default="table")
    revoke = keys_sub.add_parser("revoke")
    revoke.add_argument("id", type=int)
    revoke.add_argument("--format", choices=("table", "json"), default="table")
    keys.set_defaults(handler=cmd_keys)

    prices = sub.add_parser("prices", help="list and set model prices (USD per 1M tokens)")
    prices_sub = prices.add_subparsers(dest="prices_command", required=True)
    plist = prices_sub.add_parser("list")
    plist.add_argument("--at", type=_timestamp, help="show the prices in force at this ISO 8601 time")
    plist.add_argument("--history", action="store_true", help="show every version, past and future")
    plist.add_argument("--model", help="only this model")
    plist.add_argument("--format", choices=("table", "json", "csv"), default="table")
    pset = prices_sub.add_parser("set")
    pset.add_argument("model", help="a model name, or * for the default price of models not priced otherwise")
    pset.add_argument("--tenant", help="this tenant's own price for the model (what it is charged)")
    pset.add_argument("--input", type=_decimal, required=True, metavar="USD")
    pset.add_argument("--output", type=_decimal, required=True, metavar="USD")
    pset.add_argument("--cached", type=_decimal, metavar="USD", help="default: 10%% of --input")
    pset.add_argument("--cache-write", type=_decimal, metavar="USD", help="default: --input")
    pset.add_argument("--reasoning", type=_decimal, metavar="USD", help="default: --output")
    pset.add_argument("--effective-from", type=_timestamp, metavar="ISO8601", help="default: now")
    pset.add_argument("--format", choices=("table", "json"), default="table")
    prices.set_defaults(handler=cmd_prices)

    report = data_command("report", help="monthly cost report")
    report.add_argument("--month", required=True, type=_month, metavar="YYYY-MM")
    report.add_argument("--tenant")
    report.add_argument("--by", type=_dimensions, default=(), metavar="tenant,key,model,day")
    report.set_defaults(handler=cmd_report)

    sim = sub.add_parser("simulate-upstream", help="run a local stand-in for the upstream API")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9000)
    sim.add_argument("--api-key", help="require this upstream key (default: accept any)")
    sim.set_defaults(handler=cmd_simulate_upstream)
    return parser


def _argument(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


_duration = _argument(parse_duration)
_dimensions = _argument(parse_dimensions)
_month = _argument(lambda text: (parse_month(text), text)[1])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"billing-proxy: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        args.handler(args, settings)
    except (NotFound, AlreadyExists, CatalogError, CliError, ConfigError, ValueError) as exc:
        print(f"billing-proxy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
