"""`prices`: list them (now, at a moment, or every version), set a version, and resolve
which price a requested model name gets."""

import shlex
import sys
from datetime import datetime, timezone

from billing.db.prices import load_pricebook, set_price
from billing.db.tenants import NotFound, get_tenant, list_tenants
from billing.pricebook import PriceBook
from billing.pricing import Tier, revised
from billing.report import money
from proxy.admin.prices_view import price_rows, version_rows
from proxy.cli import price_import
from proxy.cli.arguments import FORMATS, non_negative_decimal, one_line, tenant_text, timestamp, tool_price
from proxy.cli.output import render, to_json
from proxy.cli.support import CliError, run_db, actor
from proxy.config.settings import Settings

PRICE_COLUMNS = ["model", "tenant", "version", "effective_from", "service_tier", "up_to_input_tokens", "input",
                 "cached", "cache_write", "output", "reasoning", "tools", "cache_storage", "aliases", "source"]


def cmd_prices(args, settings: Settings) -> None:
    async def action(engine):
        if args.prices_command == "set":
            tier = Tier(input=args.input, output=args.output, cached=args.cached,
                        cache_write=args.cache_write, reasoning=args.reasoning)
            tenant_id = (await get_tenant(engine, args.tenant)).id if args.tenant else None
            effective_from = args.effective_from or datetime.now(timezone.utc)
            async with engine.connect() as conn:
                current = (await load_pricebook(conn)).version_at(args.model, effective_from, tenant_id)
            version = revised(current, (tier,), model=args.model, effective_from=effective_from, source="cli",
                              tenant_id=tenant_id, service_tier=args.service_tier, tools=dict(args.tool or ()),
                              cache_storage=args.cache_storage)  # ValueError: exit 1 with its message
            version_id = await set_price(engine, version, actor=actor())
            print(to_json({"model": args.model, "version": version_id, "effective_from": version.effective_from})
                  if args.format == "json" else f"price version {version_id} of {args.model} set")
            return
        async with engine.connect() as conn:
            book = await load_pricebook(conn)
        tenants = await list_tenants(engine)
        tenant_names = {t.id: t.name for t in tenants}
        at = args.at or datetime.now(timezone.utc)
        if args.prices_command == "resolve":
            tenant_id = next((t.id for t in tenants if t.name == args.tenant), None) if args.tenant else None
            if args.tenant and tenant_id is None:
                raise NotFound(f"no tenant named {args.tenant!r}")
            match = book.explain(args.name, at, tenant_id)
            print_resolution(match, args, tenant_names, nearest_priced(book, args.name, at) if match.model is None
                             else None)
            return
        if args.model and args.model not in book.models:
            match = book.explain(args.model, at)
            if match.model is not None and match.matched_by != "model":
                print(f"{args.model} resolves to {match.model} ({_how(match)})", file=sys.stderr)
        print(render(price_rows(book, at, args.history, args.model, tenant_names), PRICE_COLUMNS, args.format))

    run_db(settings, action)


def _how(match) -> str:
    return {"model": "a priced model", "alias": f"alias {match.alias}", "pattern": f"pattern {match.alias}",
            "default": "the default price '*'"}[match.matched_by]


def nearest_priced(book: PriceBook, name: str, at: datetime) -> list[dict]:
    """The priced names nearest to an unpriced `name` (PriceBook.nearest_priced), each with
    its standard prices (the top tier: a guess from it never bills below cost) and the
    `prices set` command that would price `name` the same."""
    found = []
    for near in book.nearest_priced(name):
        model = book.resolve_name(near)
        version = book.version_at(model, at) if model is not None else None
        if version is None:
            continue
        tier = next((t for t in version.tiers if t.up_to_input_tokens is None), version.tiers[-1])
        prices = {"input": tier.input, "output": tier.output, "cached": tier.cached_price,
                  "cache_write": tier.cache_write_price, "reasoning": tier.reasoning_price}
        words = ["billing-proxy", "prices", "set", name, *(
            part for field, value in prices.items() for part in (f"--{field.replace('_', '-')}", money(value))),
            *(part for tool, price in sorted(version.tools.items()) for part in ("--tool", f"{tool}={money(price)}")),
            *(("--cache-storage", money(version.cache_storage)) if version.cache_storage is not None else ())]
        found.append({"nearest": near, "model": model, **prices, "command": shlex.join(words)})
    return found


def _print_unpriced(match, args, nearest: list[dict]) -> None:
    """An unpriced name: the nearest priced names and the commands that would price it like
    each (nothing in a table when none is near), then exit 1 with the reason."""
    if args.format == "json":
        print(to_json({"name": match.name, "model": None, "matched_by": match.matched_by, "alias": match.alias,
                       "reason": match.reason, "nearest_priced": nearest}))
    elif nearest:
        print(render(nearest, ["nearest", "model", "input", "output", "cached", "cache_write", "reasoning"]
                     + (["command"] if args.format == "csv" else []), args.format))
        if args.format == "table":
            for near in nearest:
                print(f"\nTo price {match.name} like {near['nearest']}:\n  {near['command']}")
    raise CliError(f"{match.name} is not priced: {match.reason}")


def print_resolution(match, args, tenant_names: dict[int, str], nearest: list[dict] | None = None) -> None:
    """Which price a requested name gets, and how; or why it gets none (exit 1), with the
    nearest priced names (`nearest_priced`) when given."""
    if match.model is None:
        if nearest is not None:
            _print_unpriced(match, args, nearest)
        raise CliError(f"{match.name} is not priced: {match.reason}")
    version, service_tier = match.version, args.service_tier or "default"
    tier_note = "" if version.prices_service_tier(args.service_tier) else (
        " (not priced for this model: billed at the standard prices and flagged)")
    summary = {"name": match.name, "model": match.model, "matched_by": match.matched_by, "alias": match.alias,
               "version": version.id, "effective_from": version.effective_from, "source": version.source,
               "service_tier": service_tier + tier_note,
               "tenant_version": match.tenant_version.id if match.tenant_version else None}
    versions = [(version, None), *([(match.tenant_version, tenant_names.get(match.tenant_version.tenant_id))]
                                   if match.tenant_version else [])]
    rows = [row for v, tenant in versions for row in version_rows(v, tenant, [])
            if row["service_tier"] in ("default", service_tier)]
    if args.format == "json":
        print(to_json({**summary, "service_tier": service_tier, "service_tier_priced": not tier_note,
                       "prices": rows}))
        return
    print(render([{"field": k, "value": v} for k, v in summary.items()], ["field", "value"], args.format))
    print()
    print(render(rows, PRICE_COLUMNS, args.format))


def add_commands(sub) -> None:
    prices = sub.add_parser("prices", help="list and set model prices (USD per 1M tokens)")
    prices_sub = prices.add_subparsers(dest="prices_command", required=True)
    plist = prices_sub.add_parser("list")
    plist.add_argument("--at", type=timestamp, help="show the prices in force at this ISO 8601 time")
    plist.add_argument("--history", action="store_true", help="show every version, past and future")
    plist.add_argument("--model", type=one_line, help="only this model")
    plist.add_argument("--format", choices=FORMATS, default="table")
    resolve = prices_sub.add_parser("resolve", help="which price a requested model name gets, and how")
    resolve.add_argument("name", help="a model name as clients send it, e.g. seed-1-6-250915")
    resolve.add_argument("--tenant", type=tenant_text, help="also this tenant's own price")
    resolve.add_argument("--service-tier", metavar="NAME", help="the tier the reply reports (default: standard)")
    resolve.add_argument("--at", type=timestamp, help="at this ISO 8601 time (default: now)")
    resolve.add_argument("--format", choices=FORMATS, default="table")
    pset = prices_sub.add_parser("set")
    pset.add_argument("model", help="a model name, or * for the default price of models not priced otherwise")
    pset.add_argument("--tenant", type=tenant_text, help="this tenant's own price for the model (what it is charged)")
    pset.add_argument("--input", type=non_negative_decimal, required=True, metavar="USD")
    pset.add_argument("--output", type=non_negative_decimal, required=True, metavar="USD")
    pset.add_argument("--cached", type=non_negative_decimal, metavar="USD", help="default: 10%% of --input")
    pset.add_argument("--cache-write", type=non_negative_decimal, metavar="USD", help="default: --input")
    pset.add_argument("--reasoning", type=non_negative_decimal, metavar="USD", help="default: --output")
    pset.add_argument("--service-tier", metavar="NAME", help="these are the prices of this service tier (flex, "
                      "priority, ...); the other tiers' prices are kept")
    pset.add_argument("--tool", action="append", type=tool_price, metavar="NAME=USD_PER_1000_CALLS",
                      help="price of a built-in tool's calls (repeatable): web_search=10.00")
    pset.add_argument("--cache-storage", type=non_negative_decimal, metavar="USD", help="per 1M tokens per hour of cache storage")
    pset.add_argument("--effective-from", type=timestamp, metavar="ISO8601", help="default: now")
    pset.add_argument("--format", choices=("table", "json"), default="table")
    prices.set_defaults(handler=cmd_prices)
    price_import.add_command(prices_sub)
