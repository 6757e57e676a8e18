"""The `billing-proxy` command line."""

import argparse
import logging
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from aiohttp import web

from billing.catalog import NAME_PATTERN, CatalogError
from billing.db.alerts import list_alerts
from billing.db.audit import list_audit
from billing.db.credits import add_credit, credit_history, credit_standing
from billing.db.quota import month_standing
from billing.db.keys import get_key, issue_key, list_keys, revoke_key, rotate_key, update_key
from billing.db.prices import load_pricebook, set_price
from billing.db.reports import ledger_totals, monthly_report, quota_comparison, rollup_totals
from billing.db.dead_letters import dead_letters
from billing.db.months import closed_month, current_month, list_adjustments, month_totals
from billing.reconcile import compare
from billing.statement import statement_csv, statement_from
from proxy.admin.pages import issued_today, statement_page
from billing.db.tenants import (AlreadyExists, Conflict, NotFound, create_tenant, get_tenant, list_tenants,
                                update_tenant)
from billing.pricing import Tier, exact_sum, revised
from billing.report import (COST_FIELDS, COUNT_FIELDS, adjustment_dict, money, parse_dimensions, parse_month, report_columns,
                            report_csv_text, report_dict, row_dict)
from proxy.observability.access_log import batch_lines
from proxy.observability.logs import configure_logging
from proxy.serve import run_server, run_workers
from proxy.cli.output import parse_duration, render, to_json
from proxy.admin.prices_view import price_rows, version_rows
from proxy.cli.finance import add_finance_commands
from proxy.cli.support import CliError, _ready_database, _run_db, actor, check_port_free
from proxy.config.settings import ConfigError, Settings, load_settings

log = logging.getLogger("billing_proxy")


def _tool_price(text: str) -> tuple[str, Decimal]:
    name, equals, price = text.partition("=")
    if not equals or not NAME_PATTERN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=USD_PER_1000_CALLS, e.g. web_search=10.00")
    return name, _decimal(price)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative number")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _bounded_count(text: str) -> int:
    """A positive whole number a limit column holds (rpm, tpm, concurrent calls)."""
    value = _positive(text)
    if value > 1_000_000_000:
        raise argparse.ArgumentTypeError("at most 1000000000")
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
    if not args.reuse_port:  # a worker's supervisor has checked already
        check_port_free(args.host, args.port)
    if not settings.upstream_api_key:
        log.warning("UPSTREAM_API_KEY is not set: calls go to %s with no credential, and it will refuse them "
                    "(401). Set UPSTREAM_API_KEY, or point UPSTREAM_BASE_URL at `billing-proxy simulate-upstream` "
                    "to try the proxy (README, Quick start).", settings.upstream_base_url)
    url = _ready_database(settings)
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
    _ready_database(settings)
    print("database schema is up to date")


TENANT_COLUMNS = ["id", "name", "status", "monthly_budget_usd", "monthly_token_quota", "daily_budget_usd",
                  "weekly_budget_usd", "daily_token_quota", "weekly_token_quota", "requests_per_minute",
                  "tokens_per_minute", "prepaid", "price_multiplier", "time_zone", "alert_thresholds", "created_at"]
# (flag, column, parser, metavar) of the limits beside the monthly ones; `--no-FLAG` clears one.
TENANT_LIMIT_FLAGS = (("daily-budget", "daily_budget_usd", _decimal, "USD"),
                      ("weekly-budget", "weekly_budget_usd", _decimal, "USD"),
                      ("daily-token-quota", "daily_token_quota", _count, "N"),
                      ("weekly-token-quota", "weekly_token_quota", _count, "N"),
                      ("rpm", "requests_per_minute", _bounded_count, "N"),
                      ("tpm", "tokens_per_minute", _bounded_count, "N"))
KEY_LIMIT_FLAGS = (("daily-budget", "daily_budget_usd", _decimal, "USD"),
                   ("weekly-budget", "weekly_budget_usd", _decimal, "USD"),
                   ("rpm", "requests_per_minute", _bounded_count, "N"),
                   ("tpm", "tokens_per_minute", _bounded_count, "N"),
                   ("max-concurrent", "max_concurrent", _bounded_count, "N"))
CREDIT_COLUMNS = ["id", "amount_usd", "reason", "actor", "created_at"]


def _add_limit_flags(command, flags, clearable: bool) -> None:
    for flag, column, kind, metavar in flags:
        command.add_argument(f"--{flag}", dest=column, type=kind, metavar=metavar)
        if clearable:
            command.add_argument(f"--no-{flag}", dest=f"no_{column}", action="store_true",
                                 help=f"remove the {flag} limit")


def _limit_values(args, flags) -> dict:
    """The limits named on the command line (None where `--no-FLAG` clears one)."""
    values = {column: getattr(args, column) for _, column, _, _ in flags if getattr(args, column) is not None}
    values.update({column: None for _, column, _, _ in flags if getattr(args, f"no_{column}", False)})
    return values
STANDING_COLUMNS = ["period_start", "resets_at", "spent_usd", "reserved_usd", "budget_remaining_usd",
                    "spent_tokens", "reserved_tokens", "tokens_remaining"]


def cmd_tenants(args, settings: Settings) -> None:
    async def action(engine):
        command = args.tenants_command
        if command == "list":
            print(render([t.__dict__ for t in await list_tenants(engine)], TENANT_COLUMNS, args.format))
            return
        if command == "create":
            tenant = await create_tenant(engine, args.name, monthly_budget_usd=args.monthly_budget,
                                         monthly_token_quota=args.monthly_token_quota,
                                         price_multiplier=args.price_multiplier or Decimal(1),
                                         time_zone=args.time_zone or "UTC", alert_thresholds=args.alert_thresholds,
                                         prepaid=args.prepaid, **_limit_values(args, TENANT_LIMIT_FLAGS), actor=actor())
        elif command == "update":
            changes = {k: v for k, v in (("name", args.rename), ("monthly_budget_usd", args.monthly_budget),
                                         ("monthly_token_quota", args.monthly_token_quota),
                                         ("price_multiplier", args.price_multiplier),
                                         ("time_zone", args.time_zone), ("alert_thresholds", args.alert_thresholds))
                       if v is not None}
            changes.update({k: None for k, flag in (("monthly_budget_usd", args.no_monthly_budget),
                                                    ("monthly_token_quota", args.no_monthly_token_quota)) if flag})
            changes.update(_limit_values(args, TENANT_LIMIT_FLAGS))
            if args.prepaid or args.postpaid:
                changes["prepaid"] = bool(args.prepaid)
            tenant = await update_tenant(engine, args.name, **changes, actor=actor())
        elif command in ("suspend", "resume"):
            tenant = await update_tenant(engine, args.name, status="suspended" if command == "suspend" else "active",
                                         actor=actor())
        else:
            tenant = await get_tenant(engine, args.name)
        row = tenant.__dict__
        month = (await month_standing(engine, tenant, datetime.now(timezone.utc))).__dict__
        credit = _credit_row(await credit_standing(engine, tenant.id)) if tenant.prepaid else None
        if args.format == "json":
            print(to_json({**row, "month": month, **({"credit": credit} if credit else {})}))
        else:
            print(render([row], TENANT_COLUMNS, args.format))
            print()
            print(render([month], STANDING_COLUMNS, args.format))
            if credit:
                print()
                print(render([credit], list(credit), args.format))

    _run_db(settings, action)


KEY_COLUMNS = ["id", "display_prefix", "tenant", "label", "status", "allowed_models", "monthly_budget_usd",
               "daily_budget_usd", "weekly_budget_usd", "requests_per_minute", "tokens_per_minute", "max_concurrent",
               "created_at", "last_used_at", "expires_at", "revoked_at"]


def _print_secret(issued, fmt: str, verb: str) -> None:
    if fmt == "json":
        print(to_json({"id": issued.id, "key": issued.secret, "tenant": issued.tenant,
                       "prefix": issued.display_prefix, "label": issued.label, "expires_at": issued.expires_at,
                       "created_at": issued.created_at, "old_key_valid_until": issued.old_secret_valid_until}))
        return
    # The secret alone on stdout (`KEY=$(billing-proxy keys issue ...)`); what it is, on stderr.
    print(f"{verb} key {issued.id} ({issued.display_prefix}) of tenant {issued.tenant}. Store it now; it is not "
          "shown again.", file=sys.stderr)
    if issued.old_secret_valid_until is not None:
        print(f"The previous secret works until {issued.old_secret_valid_until.isoformat()}.", file=sys.stderr)
    print(issued.secret)


def cmd_keys(args, settings: Settings) -> None:
    async def action(engine):
        command = args.keys_command
        if command == "issue":
            expires_at = datetime.now(timezone.utc) + args.expires_in if args.expires_in else None
            issued = await issue_key(engine, args.tenant, label=args.label, expires_at=expires_at,
                                     allowed_models=args.models, monthly_budget_usd=args.monthly_budget,
                                     **_limit_values(args, KEY_LIMIT_FLAGS), actor=actor())
            _print_secret(issued, args.format, "Issued")
            return
        if command == "rotate":
            _print_secret(await rotate_key(engine, args.id, grace=args.grace, actor=actor()), args.format, "Rotated")
            return
        if command == "list":
            print(render([k.__dict__ for k in await list_keys(engine, args.tenant)], KEY_COLUMNS, args.format))
            return
        if command == "revoke":
            key = await revoke_key(engine, args.id, actor=actor())
        elif command == "update":
            changes = {k: v for k, v in (("label", args.label), ("allowed_models", args.models),
                                         ("monthly_budget_usd", args.monthly_budget)) if v is not None}
            if args.expires_in:
                changes["expires_at"] = datetime.now(timezone.utc) + args.expires_in
            changes.update({k: None for k, flag in (("allowed_models", args.any_model),
                                                    ("monthly_budget_usd", args.no_monthly_budget)) if flag})
            changes.update(_limit_values(args, KEY_LIMIT_FLAGS))
            key = await update_key(engine, args.id, **changes, actor=actor())
        else:
            key = await get_key(engine, args.id)
        row = key.__dict__
        print(to_json(row) if args.format == "json" else render([row], KEY_COLUMNS, args.format))

    _run_db(settings, action)


def _credit_row(standing) -> dict:
    return {**standing.__dict__, "balance_usd": standing.balance_usd}


def cmd_credits(args, settings: Settings) -> None:
    async def action(engine):
        if args.credits_command == "add":
            topup = await add_credit(engine, args.tenant, args.amount, args.reason, actor=actor())
            if args.format != "json":
                print(f"Added {money(topup.amount_usd)} USD of credit to {args.tenant} (top-up {topup.id}).")
        standing = _credit_row(await credit_standing(engine, args.tenant))
        history = [t.__dict__ for t in await credit_history(engine, args.tenant)]
        if args.format == "json":
            print(to_json({**standing, "topups": history}))
            return
        if not standing["prepaid"]:
            print(f"{args.tenant} is not prepaid: its credit is not spent until `tenants update --prepaid`.")
        print(render([standing], list(standing), args.format))
        if args.credits_command == "show":
            print()
            print(render(history, CREDIT_COLUMNS, args.format))

    _run_db(settings, action)


AUDIT_COLUMNS = ["id", "at", "actor", "action", "target", "details"]
ALERT_COLUMNS = ["id", "tenant", "scope", "scope_id", "period_start", "limit_kind", "threshold", "limit_value",
                 "spent", "attempts", "delivered_at", "last_error"]


def cmd_alerts(args, settings: Settings) -> None:
    async def action(engine):
        print(render([a.__dict__ for a in await list_alerts(engine, args.tenant, args.limit)], ALERT_COLUMNS,
                     args.format))

    _run_db(settings, action)


def cmd_audit(args, settings: Settings) -> None:
    async def action(engine):
        records = await list_audit(engine, target=args.target, limit=args.limit)
        rows = [{**r.__dict__, "details": r.details if args.format == "json" else to_json(r.details).replace("\n", "")}
                for r in records]
        print(render(rows, AUDIT_COLUMNS, args.format))

    _run_db(settings, action)


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
            print_resolution(book.explain(args.name, at, tenant_id), args, tenant_names)
            return
        if args.model and args.model not in book.models:
            match = book.explain(args.model, at)
            if match.model is not None and match.matched_by != "model":
                print(f"{args.model} resolves to {match.model} ({_how(match)})", file=sys.stderr)
        print(render(price_rows(book, at, args.history, args.model, tenant_names), PRICE_COLUMNS, args.format))

    _run_db(settings, action)


def _how(match) -> str:
    return {"model": "a priced model", "alias": f"alias {match.alias}", "pattern": f"pattern {match.alias}",
            "default": "the default price '*'"}[match.matched_by]


def print_resolution(match, args, tenant_names: dict[int, str]) -> None:
    """Which price a requested name gets, and how; or why it gets none (exit 1)."""
    if match.model is None:
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


def cmd_report(args, settings: Settings) -> None:
    async def action(engine):
        report = await monthly_report(engine, args.month, tenant=args.tenant, by=args.by)
        if args.format == "json":
            print(to_json(report_dict(report)))
            return
        if args.format == "csv":
            print(report_csv_text(report), end="")
            return
        columns = report_columns(report)
        rows = [row_dict(r) for r in report.rows]
        if report.by and rows:
            rows.append({columns[0]: "TOTAL", "requests": report.total_requests, "cost": report.total_cost,
                         "charge": report.total_usage_charge, "cache_savings": report.total_cache_savings,
                         **{f: sum(r.tokens[f] for r in report.rows) for f in COUNT_FIELDS},
                         **{f: exact_sum(r.costs[f] for r in report.rows) for f in COST_FIELDS}})
        scope = f", tenant {report.tenant}" if report.tenant else ""
        print(f"Cost report for {report.month}{scope} (USD)")
        print(render(rows, columns, "table"))
        if report.adjustments:
            print("\nAdjustments (not usage; in the total charged)")
            print(render([adjustment_dict(a) for a in report.adjustments], ["id", "tenant", "amount", "reason", "at"],
                         "table"))
        adjusted = f" (usage {money(report.total_usage_charge)}, adjustments {money(report.total_adjustments)})" \
            if report.adjustments else ""
        print(f"Total: {report.total_requests} requests, cost {money(report.total_cost)} USD, "
              f"charged {money(report.total_charge)} USD{adjusted}, "
              f"cache savings {money(report.total_cache_savings)} USD")

    _run_db(settings, action)


def cmd_statement(args, settings: Settings) -> None:
    async def action(engine):
        await get_tenant(engine, args.tenant)  # an unknown tenant is an error, not an empty statement
        statement = statement_from(await monthly_report(engine, args.month, tenant=args.tenant, by=("model",)))
        print(statement_page(statement, issued_today()) if args.format == "html" else statement_csv(statement), end="")

    _run_db(settings, action)


def cmd_reconcile(args, settings: Settings) -> None:
    """Exit 1 (via CliError) when the rollups or the quota counters disagree with the ledger."""
    async def action(engine):
        start, end = parse_month(args.month)
        raw = await ledger_totals(engine, start, end)
        differences = compare(raw, await rollup_totals(engine, start, end),
                              lambda k: f"rollup tenant={k[0]} key={k[1]} model={k[2]} day={k[3]} service_tier={k[4]}")
        summed, counted = await quota_comparison(engine, args.month)
        differences += compare(summed, counted, lambda k: f"quota counter {k[0]}={k[1]}")
        entries = sum(v["requests"] for v in raw.values())
        for difference in differences:
            print(difference)
        dead = await dead_letters(engine)
        for letter in dead:
            print(f"dead letter {letter['id']}: {letter['kind']} of call {letter['request_id']} (tenant "
                  f"{letter['tenant_id']}) refused by the database at {letter['failed_at']:%Y-%m-%d %H:%M:%S}: "
                  f"{letter['error']}")
        closed = await closed_month(engine, args.month)
        if closed is not None:  # a closed month's statements must be exactly as they were closed
            async with engine.connect() as conn:
                now = await month_totals(conn, args.month)
            differences += compare(closed.totals, now, lambda k: f"closed {args.month} statement of tenant {k}")
        if differences or dead:
            raise CliError(f"{len(differences)} difference(s) in {args.month}, {len(dead)} dead letter(s) in the "
                           "ledger_dead_letters table")
        usage_charge = exact_sum(v["charge_total"] for v in raw.values())
        async with engine.connect() as conn:
            adjustments = await list_adjustments(conn, args.month)
        adjusted = exact_sum(a.amount_usd for a in adjustments)
        print(f"{args.month}: {entries} ledger entries agree with {len(raw)} rollup rows and "
              f"{len(counted)} quota counters")
        print(f"{args.month}: charged {money(usage_charge + adjusted)} USD = usage {money(usage_charge)} + "
              f"{len(adjustments)} adjustment(s) {money(adjusted)}"
              + (f"; closed {closed.closed_at:%Y-%m-%d %H:%M} UTC, statements unchanged since" if closed else ""))

    _run_db(settings, action)


def cmd_simulate_upstream(args, settings: Settings) -> None:
    from proxy.simulator import create_simulator
    check_port_free(args.host, args.port)
    log.info("simulated upstream on http://%s:%d/v1", args.host, args.port)
    web.run_app(create_simulator(api_key=args.api_key, admin_key=args.admin_key), host=args.host, port=args.port,
                print=None)


# --- parser -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing-proxy", description="Cost-accounting proxy for LLM APIs.")
    parser.add_argument("--config", type=Path, help="TOML file with settings (see README)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show the logs of the libraries underneath (the embedded PostgreSQL, alembic)")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_command(*names, **kwargs):
        command = sub.add_parser(*names, **kwargs)
        command.add_argument("--format", choices=("table", "json", "csv"), default="table")
        return command

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=_positive, default=1,
                       help="processes serving one port (SO_REUSEPORT); default 1")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers
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
        command.add_argument("--time-zone", metavar="IANA", help="where the tenant's month begins (default UTC)")
        command.add_argument("--alert-thresholds", type=_percentages, metavar="50,80,100",
                             help="percent of a limit at which to send an alert")
        command.add_argument("--format", choices=("table", "json", "csv"), default="table")
        if name == "update":
            command.add_argument("--rename", metavar="NEW_NAME")
            command.add_argument("--no-monthly-budget", action="store_true", help="remove the budget")
            command.add_argument("--no-monthly-token-quota", action="store_true", help="remove the token quota")
            billing = command.add_mutually_exclusive_group()
            billing.add_argument("--prepaid", action="store_true", help="spend a credit balance (credits add)")
            billing.add_argument("--postpaid", action="store_true", help="stop spending the credit balance")
        else:
            command.add_argument("--prepaid", action="store_true", help="spend a credit balance (credits add)")
        _add_limit_flags(command, TENANT_LIMIT_FLAGS, clearable=name == "update")
    for name in ("show", "suspend", "resume"):
        command = tenants_sub.add_parser(name)
        command.add_argument("name")
        command.add_argument("--format", choices=("table", "json", "csv"), default="table")
    tenants_sub.add_parser("list").add_argument("--format", choices=("table", "json", "csv"), default="table")
    tenants.set_defaults(handler=cmd_tenants)

    keys = sub.add_parser("keys", help="issue and revoke tenant API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    issue = keys_sub.add_parser("issue")
    issue.add_argument("--tenant", required=True)
    issue.add_argument("--label")
    issue.add_argument("--expires-in", type=_duration, metavar="30d")
    issue.add_argument("--models", type=_models, metavar="a,b*", help="allow only these models (names or patterns)")
    issue.add_argument("--monthly-budget", type=_decimal, metavar="USD")
    _add_limit_flags(issue, KEY_LIMIT_FLAGS, clearable=False)
    issue.add_argument("--format", choices=("table", "json"), default="table")
    listing = keys_sub.add_parser("list")
    listing.add_argument("--tenant")
    listing.add_argument("--format", choices=("table", "json", "csv"), default="table")
    for name in ("show", "revoke"):
        command = keys_sub.add_parser(name)
        command.add_argument("id", type=int)
        command.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rotate = keys_sub.add_parser("rotate")
    rotate.add_argument("id", type=int)
    rotate.add_argument("--grace", type=_duration, default=timedelta(0), metavar="1h",
                        help="how long the old secret keeps working (default: not at all)")
    rotate.add_argument("--format", choices=("table", "json"), default="table")
    change = keys_sub.add_parser("update")
    change.add_argument("id", type=int)
    change.add_argument("--label")
    change.add_argument("--models", type=_models, metavar="a,b*")
    change.add_argument("--any-model", action="store_true", help="remove the allow-list")
    change.add_argument("--monthly-budget", type=_decimal, metavar="USD")
    change.add_argument("--no-monthly-budget", action="store_true", help="remove the key's budget")
    change.add_argument("--expires-in", type=_duration, metavar="30d")
    _add_limit_flags(change, KEY_LIMIT_FLAGS, clearable=True)
    change.add_argument("--format", choices=("table", "json", "csv"), default="table")
    keys.set_defaults(handler=cmd_keys)

    credits = sub.add_parser("credits", help="prepaid credit: top-ups and balance")
    credits_sub = credits.add_subparsers(dest="credits_command", required=True)
    add = credits_sub.add_parser("add", help="top up a tenant's credit (audited)")
    add.add_argument("--tenant", required=True)
    add.add_argument("--amount", type=_decimal, required=True, metavar="USD")
    add.add_argument("--reason", required=True, metavar="TEXT")
    add.add_argument("--format", choices=("table", "json", "csv"), default="table")
    show = credits_sub.add_parser("show", help="balance and top-ups")
    show.add_argument("--tenant", required=True)
    show.add_argument("--format", choices=("table", "json", "csv"), default="table")
    credits.set_defaults(handler=cmd_credits)

    audit = data_command("audit", help="list the audit log of key, tenant and price changes")
    audit.add_argument("--target", help="only this target, e.g. key:12 or tenant:3")
    audit.add_argument("--limit", type=_count, default=100)
    audit.set_defaults(handler=cmd_audit)

    alerts = data_command("alerts", help="list threshold alerts and their delivery")
    alerts.add_argument("--tenant")
    alerts.add_argument("--limit", type=_count, default=100)
    alerts.set_defaults(handler=cmd_alerts)

    prices = sub.add_parser("prices", help="list and set model prices (USD per 1M tokens)")
    prices_sub = prices.add_subparsers(dest="prices_command", required=True)
    plist = prices_sub.add_parser("list")
    plist.add_argument("--at", type=_timestamp, help="show the prices in force at this ISO 8601 time")
    plist.add_argument("--history", action="store_true", help="show every version, past and future")
    plist.add_argument("--model", help="only this model")
    plist.add_argument("--format", choices=("table", "json", "csv"), default="table")
    resolve = prices_sub.add_parser("resolve", help="which price a requested model name gets, and how")
    resolve.add_argument("name", help="a model name as clients send it, e.g. seed-1-6-250915")
    resolve.add_argument("--tenant", help="also this tenant's own price")
    resolve.add_argument("--service-tier", metavar="NAME", help="the tier the reply reports (default: standard)")
    resolve.add_argument("--at", type=_timestamp, help="at this ISO 8601 time (default: now)")
    resolve.add_argument("--format", choices=("table", "json", "csv"), default="table")
    pset = prices_sub.add_parser("set")
    pset.add_argument("model", help="a model name, or * for the default price of models not priced otherwise")
    pset.add_argument("--tenant", help="this tenant's own price for the model (what it is charged)")
    pset.add_argument("--input", type=_decimal, required=True, metavar="USD")
    pset.add_argument("--output", type=_decimal, required=True, metavar="USD")
    pset.add_argument("--cached", type=_decimal, metavar="USD", help="default: 10%% of --input")
    pset.add_argument("--cache-write", type=_decimal, metavar="USD", help="default: --input")
    pset.add_argument("--reasoning", type=_decimal, metavar="USD", help="default: --output")
    pset.add_argument("--service-tier", metavar="NAME", help="these are the prices of this service tier (flex, "
                      "priority, ...); the other tiers' prices are kept")
    pset.add_argument("--tool", action="append", type=_tool_price, metavar="NAME=USD_PER_1000_CALLS",
                      help="price of a built-in tool's calls (repeatable): web_search=10.00")
    pset.add_argument("--cache-storage", type=_decimal, metavar="USD", help="per 1M tokens per hour of cache storage")
    pset.add_argument("--effective-from", type=_timestamp, metavar="ISO8601", help="default: now")
    pset.add_argument("--format", choices=("table", "json"), default="table")
    prices.set_defaults(handler=cmd_prices)

    report = data_command("report", help="monthly cost report")
    report.add_argument("--month", type=_month, default=current_month(), metavar="YYYY-MM",
                        help="default: the current month (UTC)")
    report.add_argument("--tenant")
    report.add_argument("--by", type=_dimensions, default=(), metavar="tenant,key,model,service_tier,day")
    report.set_defaults(handler=cmd_report)

    statement = sub.add_parser("statement", help="a tenant's monthly statement: one line per model, and the total")
    statement.add_argument("--tenant", required=True)
    statement.add_argument("--month", type=_month, default=current_month(), metavar="YYYY-MM",
                           help="default: the current month (UTC)")
    statement.add_argument("--format", choices=("csv", "html"), default="csv")
    statement.set_defaults(handler=cmd_statement)

    reconcile = sub.add_parser("reconcile", help="check rollups and quota counters against the raw ledger")
    reconcile.add_argument("--month", type=_month, default=current_month(), metavar="YYYY-MM",
                           help="default: the current month (UTC)")
    reconcile.set_defaults(handler=cmd_reconcile)

    add_finance_commands(sub, data_command, _month)

    sim = sub.add_parser("simulate-upstream", help="run a local stand-in for the upstream API")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9000)
    sim.add_argument("--api-key", help="require this upstream key (default: accept any)")
    sim.add_argument("--admin-key", help="require this admin key on its Usage and Costs API (default: any)")
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
_percentages = _argument(lambda text: [int(v) for v in text.split(",") if v.strip()])
_models = _argument(lambda text: [m.strip() for m in text.split(",") if m.strip()] or _no_models())


def _no_models():
    raise ValueError("name at least one model or pattern")
_dimensions = _argument(parse_dimensions)
_month = _argument(lambda text: (parse_month(text), text)[1])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"billing-proxy: {exc}", file=sys.stderr)
        return 2
    serving = args.handler in (cmd_serve, cmd_simulate_upstream)
    # A command's output is what it prints; its own logs say only what went wrong, unless asked.
    configure_logging(settings.log_level, settings.log_format if args.handler is cmd_serve else "text",
                      verbose=args.verbose, own_level=None if serving or args.verbose else "WARNING")
    try:
        args.handler(args, settings)
    except (NotFound, AlreadyExists, Conflict, CatalogError, CliError, ConfigError, ValueError) as exc:
        print(f"billing-proxy: {exc}", file=sys.stderr)
        return 1
    return 0

