"""`keys`: issue, list, show, update, rotate and revoke a tenant's API keys. A new secret
is printed once, alone on stdout."""

import sys
from datetime import datetime, timedelta, timezone

from billing.db.keys import get_key, issue_key, list_keys, revoke_key, rotate_key, update_key
from proxy.cli.arguments import (FORMATS, KEY_LIMIT_FLAGS, add_limit_flags, duration, limit_values, model_names,
                                 non_negative_decimal, one_line, tenant_text)
from proxy.cli.output import render, to_json
from proxy.cli.support import run_db, actor
from proxy.config.settings import Settings

KEY_COLUMNS = ["id", "display_prefix", "tenant", "label", "status", "allowed_models", "monthly_budget_usd",
               "daily_budget_usd", "weekly_budget_usd", "requests_per_minute", "tokens_per_minute", "max_concurrent",
               "daily_request_quota", "monthly_request_quota", "max_call_usd", "fit_floor_tokens", "created_at", "last_used_at", "expires_at", "revoked_at"]


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
                                     **limit_values(args, KEY_LIMIT_FLAGS), actor=actor())
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
            changes.update(limit_values(args, KEY_LIMIT_FLAGS))
            key = await update_key(engine, args.id, **changes, actor=actor())
        else:
            key = await get_key(engine, args.id)
        row = key.__dict__
        print(to_json(row) if args.format == "json" else render([row], KEY_COLUMNS, args.format))

    run_db(settings, action)


def add_commands(sub) -> None:
    keys = sub.add_parser("keys", help="issue and revoke tenant API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    issue = keys_sub.add_parser("issue")
    issue.add_argument("--tenant", required=True, type=tenant_text)
    issue.add_argument("--label", type=one_line)
    issue.add_argument("--expires-in", type=duration, metavar="30d")
    issue.add_argument("--models", type=model_names, metavar="a,b*", help="allow only these models (names or patterns)")
    issue.add_argument("--monthly-budget", type=non_negative_decimal, metavar="USD")
    add_limit_flags(issue, KEY_LIMIT_FLAGS, clearable=False)
    issue.add_argument("--format", choices=("table", "json"), default="table")
    listing = keys_sub.add_parser("list")
    listing.add_argument("--tenant", type=tenant_text)
    listing.add_argument("--format", choices=FORMATS, default="table")
    for name in ("show", "revoke"):
        command = keys_sub.add_parser(name)
        command.add_argument("id", type=int)
        command.add_argument("--format", choices=FORMATS, default="table")
    rotate = keys_sub.add_parser("rotate")
    rotate.add_argument("id", type=int)
    rotate.add_argument("--grace", type=duration, default=timedelta(0), metavar="1h",
                        help="how long the old secret keeps working (default: not at all)")
    rotate.add_argument("--format", choices=("table", "json"), default="table")
    change = keys_sub.add_parser("update")
    change.add_argument("id", type=int)
    change.add_argument("--label", type=one_line)
    change.add_argument("--models", type=model_names, metavar="a,b*")
    change.add_argument("--any-model", action="store_true", help="remove the allow-list")
    change.add_argument("--monthly-budget", type=non_negative_decimal, metavar="USD")
    change.add_argument("--no-monthly-budget", action="store_true", help="remove the key's budget")
    change.add_argument("--expires-in", type=duration, metavar="30d")
    add_limit_flags(change, KEY_LIMIT_FLAGS, clearable=True)
    change.add_argument("--format", choices=FORMATS, default="table")
    keys.set_defaults(handler=cmd_keys)
