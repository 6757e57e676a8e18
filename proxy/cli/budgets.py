"""`budgets`: budgets inside a tenant. `set` and `remove` every end user's cap, a named
user's own budget or a tag value's, per day or month; `list` shows them with what each
named one spent this period; `runs` lists the run budgets its keys made."""

import argparse
from datetime import datetime, timezone

from billing.attribution import AttributionRules, kept_user
from billing.budgets import BudgetError, Subject, parse_amount, parse_window, tag_subject, user_subject
from billing.db.budgets import list_budgets, list_runs, remove_budget, set_budget
from billing.db.tenants import get_tenant
from proxy.cli.arguments import tenant_text, whole_number
from proxy.cli.output import render
from proxy.cli.support import CliError, actor, run_db
from proxy.config.settings import Settings

BUDGET_COLUMNS = ["tenant", "kind", "subject", "window", "amount_usd", "spent_usd", "held_usd", "period_start"]
RUN_COLUMNS = ["id", "label", "amount_usd", "spent_usd", "held_usd", "requests", "status", "created_at",
               "expires_at", "closed_at"]


def _argument(parse):
    def convert(text: str):
        try:
            return parse(text)
        except BudgetError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return convert


def _subject(args, settings: Settings) -> Subject:
    if args.tag is not None:
        return args.tag
    if args.user is None:
        return Subject("user", None)
    # kept as calls are: hashed with the operator's key, if there is one
    rules = AttributionRules(user_hash_key=settings.user_hash_key.encode() if settings.user_hash_key else None)
    return Subject("user", kept_user(args.user.name, rules))


def cmd_budgets(args, settings: Settings) -> None:
    async def action(engine):
        command = args.budgets_command
        if command == "set":
            budget = await set_budget(engine, args.tenant, _subject(args, settings), args.per, args.amount,
                                      actor=actor())
            print(render([budget.__dict__], BUDGET_COLUMNS, args.format))
        elif command == "remove":
            if not await remove_budget(engine, args.tenant, _subject(args, settings), args.per, actor=actor()):
                raise CliError(f"tenant {args.tenant!r} has no such budget per {args.per}")
            print(f"removed the {args.per} budget of {_subject(args, settings).text}")
        elif command == "list":
            print(render([b.__dict__ for b in await list_budgets(engine, args.tenant)], BUDGET_COLUMNS, args.format))
        else:
            tenant = await get_tenant(engine, args.tenant)
            now = datetime.now(timezone.utc)
            runs = await list_runs(engine, tenant.id, limit=args.limit)
            print(render([{**r.__dict__, "status": r.status(now)} for r in runs], RUN_COLUMNS, args.format))

    run_db(settings, action)


def add_commands(sub, data_command) -> None:
    budgets = sub.add_parser("budgets", help="budgets inside a tenant: end users, tag values, runs")
    commands = budgets.add_subparsers(dest="budgets_command", required=True)

    def subject_flags(command) -> None:
        command.add_argument("--tenant", required=True, type=tenant_text)
        whose = command.add_mutually_exclusive_group()
        whose.add_argument("--user", type=_argument(user_subject), metavar="END_USER",
                           help="one end user (as calls name it); without --user or --tag: every end user")
        whose.add_argument("--tag", type=_argument(tag_subject), metavar="NAME=VALUE",
                           help="one tag value, e.g. project=search")
        command.add_argument("--per", required=True, type=_argument(parse_window), metavar="day|month",
                             help="the budget's period, in the tenant's time zone")

    set_ = commands.add_parser("set", help="set or change a budget (what was spent this period counts)")
    subject_flags(set_)
    set_.add_argument("--amount", required=True, type=_argument(parse_amount), metavar="USD")
    set_.add_argument("--format", choices=("table", "json", "csv"), default="table")
    remove = commands.add_parser("remove", help="remove a budget")
    subject_flags(remove)
    listing = commands.add_parser("list", help="a tenant's user and tag budgets, with this period's spend")
    listing.add_argument("--tenant", required=True, type=tenant_text)
    listing.add_argument("--format", choices=("table", "json", "csv"), default="table")
    runs = commands.add_parser("runs", help="the run budgets a tenant's keys made, newest first")
    runs.add_argument("--tenant", required=True, type=tenant_text)
    runs.add_argument("--limit", type=whole_number, default=100)
    runs.add_argument("--format", choices=("table", "json", "csv"), default="table")
    budgets.set_defaults(handler=cmd_budgets)
