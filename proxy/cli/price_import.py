"""`prices import`: the installed price source's prices as new versions, shown before they
are written (`--apply`)."""

import sys
from datetime import datetime, timezone

from billing.db.prices import apply_import, load_pricebook
from billing.price_import import ImportPlan, plan_import
from billing.price_source import installed_source
from proxy.cli.arguments import FORMATS, one_line
from proxy.cli.output import render, to_json
from proxy.cli.support import actor, run_db
from proxy.config.settings import Settings

CHANGE_COLUMNS = ["model", "change", "effective_from", "service_tiers", "input", "cached", "cache_write", "output",
                  "long_context", "was", "note"]


def cmd_import(args, settings: Settings) -> None:
    async def action(engine):
        source = installed_source(args.provider or ("openai",))
        async with engine.connect() as conn:
            book = await load_pricebook(conn)
        plan = plan_import(book, source, datetime.now(timezone.utc), models=args.model, skip=tuple(args.skip or ()),
                           replace_corrections=args.replace_corrections)
        added = await apply_import(engine, plan, actor=actor()) if args.apply else None
        print_plan(plan, args.format, added)

    run_db(settings, action)


def _prices(version) -> dict:
    first = version.tiers[0]
    long_context = version.tiers[1:]
    return {"input": first.input, "cached": first.cached_price, "cache_write": first.cache_write,
            "output": first.output, "service_tiers": ",".join(sorted(version.service_tiers)) or None,
            "long_context": "; ".join(f"above {prev.up_to_input_tokens:,}: {t.input}/{t.output}"
                                      for prev, t in zip(version.tiers, long_context)) or None}


def change_rows(plan: ImportPlan) -> list[dict]:
    rows = []
    for change in plan.changes:
        row = {"model": change.model, "change": change.kind.replace("_", " "), "note": change.note or None}
        if change.version is not None:
            row |= {"effective_from": change.version.effective_from, **_prices(change.version)}
        if change.replaces is not None:
            was = change.replaces.tiers[0]
            row["was"] = f"{was.input}/{was.output} (version {change.replaces.id})"
        rows.append(row)
    return rows


def print_plan(plan: ImportPlan, fmt: str, added: int | None) -> None:
    rows = change_rows(plan)
    if fmt == "json":
        print(to_json({"source": plan.source, "changes": [{c: r.get(c) for c in CHANGE_COLUMNS} for r in rows],
                       "aliases": [{"alias": a, "model": m} for a, m in plan.aliases], "unchanged": plan.unchanged,
                       "skipped": [{"model": m, "what": w} for m, w in plan.skipped], "applied": added is not None,
                       "versions_added": added}))
        return
    print(f"source: {plan.source}")
    print(render(rows, CHANGE_COLUMNS, fmt) if rows else "no price changes")
    if plan.aliases:
        print(f"{len(plan.aliases)} new names: " + ", ".join(f"{a} -> {m}" for a, m in plan.aliases[:20])
              + (" ..." if len(plan.aliases) > 20 else ""))
    print(f"{plan.unchanged} models unchanged; {len(plan.skipped)} with prices this book does not hold "
          "(--format json lists them)")
    if added is None:
        print(f"nothing written: run again with --apply to add these {len(plan.versions)} versions", file=sys.stderr)
    else:
        print(f"{added} price versions added")


def add_command(prices_sub) -> None:
    command = prices_sub.add_parser(
        "import", help="add the installed price source's (genai-prices) new and changed prices as versions")
    command.add_argument("--provider", action="append", default=None, metavar="ID",
                         help="a provider of the source (repeatable; default: openai)")
    command.add_argument("--model", type=one_line, metavar="PATTERN", help="only models matching it, e.g. 'gpt-5*'")
    command.add_argument("--skip", action="append", type=one_line, metavar="PATTERN",
                         help="leave out models matching it (repeatable): where you keep another source's price")
    command.add_argument("--apply", action="store_true", help="write the versions shown (default: only show them)")
    command.add_argument("--replace-corrections", action="store_true",
                         help="also replace prices an operator set by hand")
    command.add_argument("--format", choices=FORMATS, default="table")
    command.set_defaults(handler=cmd_import)
