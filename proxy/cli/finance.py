"""Finance commands: reconcile-upstream, adjust, close-month, months, exports."""

import argparse
import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from billing.db.exports import export_status, release_holds
from billing.db.months import DEFAULT_CLOSE_GRACE, add_adjustment, close_month, closed_months
from billing.db.prices import load_pricebook
from billing.db.reports import upstream_day_model_totals
from billing.report import money, parse_month
from billing.upstream_usage import (MEASURES, OTHER, BillFormatError, Tolerance, Totals, byteplus_bill, drift,
                                    merged, openai_costs, openai_usage)
from proxy.cli.arguments import FORMATS, one_line, reason, tenant_text
from proxy.cli.output import render, to_json
from proxy.cli.support import CliError, run_db, actor
from proxy.config.routing import DEFAULT
from proxy.config.settings import Settings
from proxy.cli.upstream_usage_api import UsageApiError, openai_records

TOKEN_MEASURES = tuple(m for m in MEASURES if m != "cost")


# --- reconcile-upstream ---------------------------------------------------------------

def _window(args) -> tuple[datetime, datetime, str]:
    if args.month:
        start, end = parse_month(args.month)
        return start, end, args.month
    if not (args.from_day and args.to_day):
        raise CliError("give --month YYYY-MM, or --from and --to days (YYYY-MM-DD, both included)")
    start = datetime.combine(args.from_day, datetime.min.time(), timezone.utc)
    end = datetime.combine(args.to_day + timedelta(days=1), datetime.min.time(), timezone.utc)
    if end <= start:
        raise CliError("--to is before --from")
    return start, end, f"{args.from_day}..{args.to_day}"


def _ledger_side(rows: dict, with_storage: bool) -> Totals:
    """The ledger in the upstream's terms: per model its tokens and token cost (with cache
    storage where the bill puts it on the model); tool calls and the rest on OTHER."""
    totals: Totals = {}
    for (day, model), r in rows.items():
        totals[(day, model)] = {"requests": Decimal(r["requests"]),
                                **{m: Decimal(r[m]) for m in TOKEN_MEASURES if m != "requests"},
                                "cost": r["token_cost"] + (r["cost_cache_storage"] if with_storage else 0)}
        other = r["cost_tool_calls"] + (0 if with_storage else r["cost_cache_storage"])
        if other:
            row = totals.setdefault((day, OTHER), {"cost": Decimal(0)})
            row["cost"] += other
    return totals


def _upstream_admin_key(settings: Settings, name: str) -> tuple[str, str]:
    if name == DEFAULT:
        base_url, key = settings.upstream_base_url, settings.upstream_admin_key
    else:
        upstream = next((u for u in settings.upstreams if u.name == name), None)
        if upstream is None:
            raise CliError(f"no upstream named {name!r} in the --config file")
        base_url, key = upstream.base_url, upstream.admin_api_key
    if not key:
        raise CliError(f"upstream {name!r} has no admin key: set UPSTREAM_ADMIN_KEY (the default upstream) or "
                       "admin_api_key_env in its [upstreams.NAME] table; or give a bill file with --file")
    return base_url, key


def _figure(measure: str, value: Decimal | None) -> str | None:
    if value is None:
        return None
    return money(value) if measure == "cost" else str(int(value))


def _drift_rows(rows) -> list[dict]:
    out = []
    for row in rows:
        line = {"day": row.day, "model": row.model, "status": row.status, "drifted": ",".join(row.drifted)}
        for m in MEASURES:
            line[f"ledger_{m}"] = _figure(m, row.ledger.get(m, Decimal(0)) if m in row.upstream or row.ledger.get(m)
                                          else None)
            line[f"upstream_{m}"] = _figure(m, row.upstream.get(m))
        out.append(line)
    return out


def cmd_reconcile_upstream(args, settings: Settings) -> None:
    """Exit 1 (via CliError) when a day × model drifts past the tolerance."""
    start, end, period = _window(args)
    tolerance = Tolerance(args.tolerance, args.cost_tolerance)
    fetched: dict[str, list] = {}
    if args.file is None:
        base_url, key = _upstream_admin_key(settings, args.upstream)
        try:
            fetched["usage"], fetched["costs"] = asyncio.run(openai_records(base_url, key, start, end))
        except UsageApiError as exc:
            raise CliError(f"the upstream's Usage API: {exc}") from None
        source = "openai-usage-api"
    else:
        try:
            bill_text = args.file.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CliError(f"{args.file}: {exc.strerror or exc}") from None
        source = "byteplus-bill"

    async def action(engine):
        async with engine.connect() as conn:
            book = await load_pricebook(conn)
        normalize = lambda name: book.resolve_name(name) or name  # noqa: E731 - dated names to catalog models
        try:
            if args.file is None:
                upstream = merged(openai_usage(fetched["usage"], normalize), openai_costs(fetched["costs"], normalize))
            else:
                upstream = byteplus_bill(bill_text, normalize)
        except (BillFormatError, KeyError, ValueError) as exc:
            raise CliError(f"cannot read the upstream's records: {exc}") from None
        in_window = {k: v for k, v in upstream.items()
                     if start.date().isoformat() <= k[0] < end.date().isoformat()}
        ledger = _ledger_side(await upstream_day_model_totals(engine, start, end, args.upstream),
                              with_storage=args.file is not None)
        return drift(ledger, in_window, tolerance)

    rows = run_db(settings, action)
    lines = _drift_rows(rows)
    drifted = [r for r in rows if r.status != "ok"]
    if args.format == "json":
        print(to_json({"period": period, "upstream": args.upstream, "source": source,
                       "tolerance": {"percent": str(args.tolerance), "cost_usd": money(args.cost_tolerance)},
                       "drifted": len(drifted), "rows": lines}))
    else:
        columns = ["day", "model", "status", *[f"{side}_{m}" for m in MEASURES for side in ("ledger", "upstream")]]
        if args.format == "table":
            print(f"Ledger vs {source} for {period}, upstream {args.upstream} (tolerance {args.tolerance}%, "
                  f"cost {money(args.cost_tolerance)} USD a row)")
        print(render(lines, columns, args.format))
    if drifted:
        raise CliError(f"{len(drifted)} day × model row(s) drift past the tolerance: " + "; ".join(
            f"{r.day} {r.model} {r.status} ({', '.join(r.drifted)})" for r in drifted[:5]))


# --- adjustments and closing ------------------------------------------------------------

def cmd_adjust(args, settings: Settings) -> None:
    async def action(engine):
        made = await add_adjustment(engine, args.tenant, args.amount, args.reason, month=args.month, actor=actor())
        kind = "credit" if made.amount_usd < 0 else "charge"
        if args.format == "json":
            print(to_json({**made.__dict__, "event_id": str(made.event_id), "kind": kind}))
        else:
            print(f"Adjustment {made.id}: {kind} of {money(abs(made.amount_usd))} USD to {made.tenant} for "
                  f"{made.month} ({made.reason}).")

    run_db(settings, action)


def cmd_close_month(args, settings: Settings) -> None:
    async def action(engine):
        closed = await close_month(engine, args.month, actor=actor(), grace=args.grace)
        if args.format == "json":
            print(to_json(closed.__dict__))
            return
        print(f"{closed.month} is closed: its statements are frozen; entries that arrive for it from now on are "
              "booked late, in the open month.")
        rows = [{"tenant": tenant, **totals} for tenant, totals in closed.totals.items()]
        print(render(rows, ["tenant", "requests", "charge", "adjustments", "total"], args.format))

    run_db(settings, action)


def cmd_months(args, settings: Settings) -> None:
    async def action(engine):
        rows = [{"month": c.month, "closed_at": c.closed_at, "actor": c.actor, "tenants": len(c.totals),
                 "total": money(sum((Decimal(t["total"]) for t in c.totals.values()), Decimal(0)))}
                for c in await closed_months(engine)]
        print(render(rows, ["month", "closed_at", "actor", "tenants", "total"], args.format))

    run_db(settings, action)


# --- exports ------------------------------------------------------------------------------

EXPORT_COLUMNS = ["sink", "kind", "enabled", "pending", "oldest_pending", "lag_seconds", "delivered_recently",
                  "held_tenants", "last_error"]


def cmd_exports(args, settings: Settings) -> None:
    async def action(engine):
        if args.exports_command == "retry":
            released = await release_holds(engine, args.sink)
            print(f"{released} held tenant(s) will be retried at the next delivery pass.")
            return
        print(render([s.__dict__ for s in await export_status(engine)], EXPORT_COLUMNS, args.format))

    run_db(settings, action)


# --- parser -------------------------------------------------------------------------------

def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a day looks like 2026-11-03, not {text!r}") from None


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of USD")
    return value


def _non_negative(text: str) -> Decimal:
    value = _usd(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _hours(text: str) -> timedelta:
    value = _non_negative(text)
    return timedelta(hours=float(value))  # a duration, not money


def add_finance_commands(sub, data_command, month_type) -> None:
    upstream = data_command("reconcile-upstream",
                            help="compare the ledger with the upstream's own usage records, day by model")
    upstream.add_argument("--month", type=month_type, metavar="YYYY-MM")
    upstream.add_argument("--from", dest="from_day", type=_day, metavar="YYYY-MM-DD")
    upstream.add_argument("--to", dest="to_day", type=_day, metavar="YYYY-MM-DD", help="included")
    upstream.add_argument("--upstream", default=DEFAULT, help="which configured upstream (default: the default one)")
    upstream.add_argument("--file", type=Path, help="a BytePlus ModelArk bill-details export (CSV or JSON) "
                                                   "instead of the OpenAI Usage API")
    upstream.add_argument("--tolerance", type=_non_negative, default=Decimal(0), metavar="PERCENT",
                          help="drift allowed on every figure, in percent of the upstream's (default 0: exact)")
    upstream.add_argument("--cost-tolerance", type=_non_negative, default=Decimal("0.01"), metavar="USD",
                          help="cost drift allowed per day and model at least (default 0.01: rounding)")
    upstream.set_defaults(handler=cmd_reconcile_upstream)

    adjust = data_command("adjust", help="credit (negative) or charge (positive) a tenant's month, audited")
    adjust.add_argument("--tenant", required=True, type=tenant_text)
    adjust.add_argument("--amount", required=True, type=_usd, metavar="USD")
    adjust.add_argument("--reason", required=True, type=reason)
    adjust.add_argument("--month", type=month_type, metavar="YYYY-MM", help="default: the current month (UTC)")
    adjust.set_defaults(handler=cmd_adjust)

    close = data_command("close-month", help="freeze a month's statements (late entries go to the open month)")
    close.add_argument("month", type=month_type, metavar="YYYY-MM")
    close.add_argument("--grace", type=_hours, default=DEFAULT_CLOSE_GRACE, metavar="HOURS",
                       help=f"after the month's end (default {DEFAULT_CLOSE_GRACE.total_seconds() / 3600:g})")
    close.set_defaults(handler=cmd_close_month)

    data_command("months", help="closed months and their totals").set_defaults(handler=cmd_months)

    exports = sub.add_parser("exports", help="delivery of ledger entries to billing systems")
    exports_sub = exports.add_subparsers(dest="exports_command", required=True)
    status = exports_sub.add_parser("status", help="per sink: pending, lag, held tenants, last error")
    status.add_argument("--format", choices=FORMATS, default="table")
    retry = exports_sub.add_parser("retry", help="retry held tenants now instead of after their backoff")
    retry.add_argument("--sink", type=one_line)
    exports.set_defaults(handler=cmd_exports)
