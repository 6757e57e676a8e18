"""`tenants` (create, update, show, suspend, resume, list) and `credits` (prepaid top-ups
and balance)."""

from datetime import datetime, timezone
from decimal import Decimal

from billing.db.credits import add_credit, credit_history, credit_standing
from billing.db.quota import month_standing
from billing.db.alert_destinations import set_destinations
from billing.db.tenants import create_tenant, get_tenant, list_tenants, update_tenant
from billing.report import money
from proxy.cli.arguments import (FORMATS, TENANT_LIMIT_FLAGS, add_limit_flags, limit_values, new_tenant_name,
                                 non_negative_decimal, percentages, reason, tenant_text, whole_number)
from proxy.cli.output import render, to_json
from proxy.cli.support import run_db, actor
from proxy.config.settings import Settings

TENANT_COLUMNS = ["id", "name", "status", "monthly_budget_usd", "monthly_token_quota", "daily_budget_usd",
                  "weekly_budget_usd", "daily_token_quota", "weekly_token_quota", "requests_per_minute",
                  "tokens_per_minute", "daily_request_quota", "monthly_request_quota", "max_call_usd",
                  "fit_floor_tokens", "enforcement", "prepaid", "price_multiplier", "time_zone", "alert_thresholds", "created_at"]
CREDIT_COLUMNS = ["id", "amount_usd", "reason", "actor", "created_at"]
STANDING_COLUMNS = ["period_start", "resets_at", "spent_usd", "reserved_usd", "budget_remaining_usd",
                    "spent_tokens", "reserved_tokens", "tokens_remaining"]


def cmd_tenants(args, settings: Settings) -> None:
    async def action(engine):
        command = args.tenants_command
        if command == "list":
            print(render([t.__dict__ for t in await list_tenants(engine)], TENANT_COLUMNS, args.format))
            return
        if command == "alert-destinations":
            await _destinations(engine, args)
            return
        if command == "create":
            tenant = await create_tenant(engine, args.name, monthly_budget_usd=args.monthly_budget,
                                         monthly_token_quota=args.monthly_token_quota,
                                         price_multiplier=args.price_multiplier or Decimal(1),
                                         time_zone=args.time_zone or "UTC", alert_thresholds=args.alert_thresholds,
                                         prepaid=args.prepaid, **limit_values(args, TENANT_LIMIT_FLAGS),
                                         enforcement=args.enforcement or "hard", actor=actor())
        elif command == "update":
            changes = {k: v for k, v in (("name", args.rename), ("monthly_budget_usd", args.monthly_budget),
                                         ("monthly_token_quota", args.monthly_token_quota),
                                         ("price_multiplier", args.price_multiplier),
                                         ("time_zone", args.time_zone), ("alert_thresholds", args.alert_thresholds))
                       if v is not None}
            changes.update({k: None for k, flag in (("monthly_budget_usd", args.no_monthly_budget),
                                                    ("monthly_token_quota", args.no_monthly_token_quota)) if flag})
            changes.update(limit_values(args, TENANT_LIMIT_FLAGS))
            if args.enforcement:
                changes["enforcement"] = args.enforcement
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

    run_db(settings, action)


async def _destinations(engine, args) -> None:
    changes = {}
    if args.slack_url is not None or args.no_slack:
        changes["slack_url"] = None if args.no_slack else args.slack_url
    if args.email is not None or args.no_email:
        changes["emails"] = [] if args.no_email else args.email
    shown = await set_destinations(engine, args.name, **changes, actor=actor())
    row = {**shown.__dict__, "emails": ",".join(shown.emails) if args.format != "json" else shown.emails}
    print(to_json(row) if args.format == "json" else render([row], ["tenant", "slack_url", "emails"], args.format))


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

    run_db(settings, action)


def add_commands(sub) -> None:
    tenants = sub.add_parser("tenants", help="manage tenants (teams)")
    tenants_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    for name in ("create", "update"):
        command = tenants_sub.add_parser(name)
        command.add_argument("name", type=new_tenant_name if name == "create" else tenant_text)
        command.add_argument("--monthly-budget", type=non_negative_decimal, metavar="USD")
        command.add_argument("--monthly-token-quota", type=whole_number, metavar="N")
        command.add_argument("--price-multiplier", type=non_negative_decimal, metavar="X",
                             help="charge this tenant the upstream cost times X (1.2: markup, 0.9: discount)")
        command.add_argument("--time-zone", metavar="IANA", help="where the tenant's month begins (default UTC)")
        command.add_argument("--alert-thresholds", type=percentages, metavar="50,80,100",
                             help="percent of a limit at which to send an alert")
        command.add_argument("--format", choices=FORMATS, default="table")
        command.add_argument("--enforcement", choices=("hard", "soft"),
                             help="hard (default): no call may take spend past a limit; soft: admit while "
                                  "spend is under it, and report the overrun")
        if name == "update":
            command.add_argument("--rename", metavar="NEW_NAME", type=new_tenant_name)
            command.add_argument("--no-monthly-budget", action="store_true", help="remove the budget")
            command.add_argument("--no-monthly-token-quota", action="store_true", help="remove the token quota")
            billing = command.add_mutually_exclusive_group()
            billing.add_argument("--prepaid", action="store_true", help="spend a credit balance (credits add)")
            billing.add_argument("--postpaid", action="store_true", help="stop spending the credit balance")
        else:
            command.add_argument("--prepaid", action="store_true", help="spend a credit balance (credits add)")
        add_limit_flags(command, TENANT_LIMIT_FLAGS, clearable=name == "update")
    for name in ("show", "suspend", "resume"):
        command = tenants_sub.add_parser(name)
        command.add_argument("name", type=tenant_text)
        command.add_argument("--format", choices=FORMATS, default="table")
    tenants_sub.add_parser("list").add_argument("--format", choices=FORMATS, default="table")
    destinations = tenants_sub.add_parser("alert-destinations", help="the tenant's own Slack hook and email "
                                          "recipients for alerts, besides the operator's (audited); no option: show")
    destinations.add_argument("name", type=tenant_text)
    slack = destinations.add_mutually_exclusive_group()
    slack.add_argument("--slack-url", metavar="URL", help="a Slack incoming webhook")
    slack.add_argument("--no-slack", action="store_true", help="remove the Slack hook")
    email = destinations.add_mutually_exclusive_group()
    email.add_argument("--email", action="append", metavar="ADDRESS", help="a recipient (repeatable; replaces "
                       "the list)")
    email.add_argument("--no-email", action="store_true", help="remove every recipient")
    destinations.add_argument("--format", choices=FORMATS, default="table")
    tenants.set_defaults(handler=cmd_tenants)


def add_credit_commands(sub) -> None:
    credits = sub.add_parser("credits", help="prepaid credit: top-ups and balance")
    credits_sub = credits.add_subparsers(dest="credits_command", required=True)
    add = credits_sub.add_parser("add", help="top up a tenant's credit (audited)")
    add.add_argument("--tenant", required=True, type=tenant_text)
    add.add_argument("--amount", type=non_negative_decimal, required=True, metavar="USD")
    add.add_argument("--reason", required=True, metavar="TEXT", type=reason)
    add.add_argument("--format", choices=FORMATS, default="table")
    show = credits_sub.add_parser("show", help="balance and top-ups")
    show.add_argument("--tenant", required=True, type=tenant_text)
    show.add_argument("--format", choices=FORMATS, default="table")
    credits.set_defaults(handler=cmd_credits)
