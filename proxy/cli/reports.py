"""Reading the ledger: `report` (monthly costs), `statement` (a tenant's month, CSV or
HTML), `reconcile` (roll-ups and counters against the entries), `audit` and `alerts`."""

from billing.db.alerts import list_alerts
from billing.db.audit import list_audit
from billing.db.dead_letters import dead_letters
from billing.db.months import closed_month, current_month, list_adjustments, month_totals
from billing.db.reports import ledger_totals, monthly_report, quota_comparison, rollup_totals
from billing.db.tenants import get_tenant
from billing.pricing import exact_sum
from billing.reconcile import compare
from billing.report import (COST_FIELDS, COUNT_FIELDS, adjustment_dict, money, parse_month, report_columns,
                            report_csv_text, report_dict, row_dict)
from billing.report_dimensions import shown
from billing.statement import statement_csv, statement_from
from proxy.admin.markup import issued_today
from proxy.admin.pages import statement_page
from proxy.cli.arguments import dimensions, one_line, statement_group, tenant_text, whole_number, year_month
from proxy.cli.output import render, to_json
from proxy.cli.support import CliError, run_db
from proxy.config.settings import Settings

AUDIT_COLUMNS = ["id", "at", "actor", "action", "target", "details"]
ALERT_COLUMNS = ["id", "tenant", "scope", "scope_id", "period_start", "limit_kind", "threshold", "limit_value",
                 "spent", "forecast_usd", "attempts", "delivered_at", "last_error"]


def cmd_alerts(args, settings: Settings) -> None:
    async def action(engine):
        print(render([a.__dict__ for a in await list_alerts(engine, args.tenant, args.limit)], ALERT_COLUMNS,
                     args.format))

    run_db(settings, action)


def cmd_audit(args, settings: Settings) -> None:
    async def action(engine):
        records = await list_audit(engine, target=args.target, limit=args.limit)
        rows = [{**r.__dict__, "details": r.details if args.format == "json" else to_json(r.details).replace("\n", "")}
                for r in records]
        print(render(rows, AUDIT_COLUMNS, args.format))

    run_db(settings, action)


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
        rows = [{**row_dict(r), **{d: shown(r.group[d]) for d in report.by}} for r in report.rows]
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

    run_db(settings, action)


def cmd_statement(args, settings: Settings) -> None:
    async def action(engine):
        await get_tenant(engine, args.tenant)  # an unknown tenant is an error, not an empty statement
        statement = statement_from(await monthly_report(engine, args.month, tenant=args.tenant, by=(args.group_by,)))
        print(statement_page(statement, issued_today()) if args.format == "html" else statement_csv(statement), end="")

    run_db(settings, action)


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

    run_db(settings, action)


def add_log_commands(data_command) -> None:
    audit = data_command("audit", help="list the audit log of key, tenant and price changes")
    audit.add_argument("--target", type=one_line, help="only this target, e.g. key:12 or tenant:3")
    audit.add_argument("--limit", type=whole_number, default=100)
    audit.set_defaults(handler=cmd_audit)

    alerts = data_command("alerts", help="list threshold alerts and their delivery")
    alerts.add_argument("--tenant", type=tenant_text)
    alerts.add_argument("--limit", type=whole_number, default=100)
    alerts.set_defaults(handler=cmd_alerts)


def add_commands(sub, data_command) -> None:
    report = data_command("report", help="monthly cost report")
    report.add_argument("--month", type=year_month, default=current_month(), metavar="YYYY-MM",
                        help="default: the current month (UTC)")
    report.add_argument("--tenant", type=tenant_text)
    report.add_argument("--by", type=dimensions, default=(), metavar="tenant,key,model,service_tier,day,user,tag:NAME",
                        help="entries without an end user or that tag are grouped apart, as (none)")
    report.set_defaults(handler=cmd_report)

    statement = sub.add_parser("statement", help="a tenant's monthly statement: one line per model (or end user, or "
                                                 "tag value), and the total")
    statement.add_argument("--tenant", required=True, type=tenant_text)
    statement.add_argument("--month", type=year_month, default=current_month(), metavar="YYYY-MM",
                           help="default: the current month (UTC)")
    statement.add_argument("--format", choices=("csv", "html"), default="csv")
    statement.add_argument("--group-by", type=statement_group, default="model", metavar="model|user|tag:NAME",
                           help="one line per model (default), per end user, or per value of a tag, for chargeback")
    statement.set_defaults(handler=cmd_statement)

    reconcile = sub.add_parser("reconcile", help="check rollups and quota counters against the raw ledger")
    reconcile.add_argument("--month", type=year_month, default=current_month(), metavar="YYYY-MM",
                           help="default: the current month (UTC)")
    reconcile.set_defaults(handler=cmd_reconcile)
