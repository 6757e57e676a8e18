"""`prices import` against the installed price source (genai-prices) and a real database:
shown before it is written, new models appear, changed prices become versions from their
dates, the past is untouched, an operator's correction is held, a second import adds nothing."""

import asyncio
import json
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from billing.catalog import Catalog
from billing.db.prices import load_pricebook, sync_catalog
from billing.db.tables import price_versions
from billing.price_source import installed_source
from billing.pricing import PriceVersion, Tier
from proxy.cli import main

BEFORE = datetime(2026, 10, 1, tzinfo=timezone.utc)


async def run(capsys, *args) -> tuple[int, dict]:
    """The CLI, on a thread of its own (it runs its own event loop)."""
    code = await asyncio.to_thread(main, list(args))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


async def versions_in_db(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(price_versions))).scalar_one()


async def book(engine):
    async with engine.connect() as conn:
        return await load_pricebook(conn)


async def test_import_adds_what_changed_from_its_dates_and_nothing_twice(engine, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    # the book as an older catalog left it: gpt-6-sol at a price the source does not have,
    # from 2026-01-01, before the source's dated changes
    stale = PriceVersion("gpt-6-sol", datetime(2026, 1, 1, tzinfo=timezone.utc),
                         (Tier(input=Decimal(3), output=Decimal(12)),), source="an older catalog")
    await sync_catalog(engine, Catalog(versions=(stale,)))
    operator = await run(capsys, "prices", "set", "gpt-5.4-nano", "--input", "9", "--output", "9")  # a correction
    assert operator[0] == 0
    before = await versions_in_db(engine)
    old = await book(engine)
    kept = {v.id: v for v in old.all_versions()}

    code, shown = await run(capsys, "prices", "import", "--format", "json")
    assert code == 0 and shown["applied"] is False and await versions_in_db(engine) == before  # shown, not written
    by_model: dict[str, list] = {}
    for change in shown["changes"]:
        by_model.setdefault(change["model"], []).append(change)

    source = {m.model: m for m in installed_source().models}
    # a model the book lacks is new, at every date of the source
    new = [m for m in source if not old.versions(m)]
    assert new and all(c["change"] == "new model" for m in new for c in by_model[m])
    # gpt-6-sol: the source's dated changes, from their own dates (after the book's 1970 version)
    dates = [c["effective_from"][:10] for c in by_model["gpt-6-sol"]]
    assert dates == [v.effective_from.date().isoformat() for v in source["gpt-6-sol"].versions[1:]]
    # the operator's correction is held
    assert [c["change"] for c in by_model["gpt-5.4-nano"]] == ["held"]

    code, applied = await run(capsys, "prices", "import", "--apply", "--format", "json")
    added = applied["versions_added"]
    assert code == 0 and added == len([c for c in applied["changes"] if c["change"] != "held"]) > 0
    assert await versions_in_db(engine) == before + added
    after = await book(engine)
    # the past is untouched: every version that was there is there, unchanged, and what was
    # in force before the source's first new date still is
    assert all(after.versions(v.model, v.tenant_id) and v in after.all_versions() for v in kept.values())
    assert after.version_at("gpt-6-sol", BEFORE).tiers[0].input == Decimal(3)
    now = datetime.now(timezone.utc)
    assert after.resolve("gpt-6-sol", now).version.tiers[0].input == Decimal(2)
    assert after.resolve("gpt-5.4-nano", now).version.tiers[0].input == Decimal(9)  # still the operator's
    assert after.resolve(new[0], now) is not None
    assert "genai-prices" in after.resolve("gpt-6-sol", now).version.source

    code, again = await run(capsys, "prices", "import", "--apply", "--format", "json")
    assert code == 0 and again["versions_added"] == 0 and [c["change"] for c in again["changes"]] == ["held"]
    assert await versions_in_db(engine) == before + added

    code, replaced = await run(capsys, "prices", "import", "--replace-corrections", "--model", "gpt-5.4-nano", "--apply",
                         "--format", "json")
    assert code == 0 and replaced["versions_added"] >= 1
    assert (await book(engine)).resolve("gpt-5.4-nano", datetime.now(timezone.utc)).version.tiers[0].input \
        == Decimal("0.2")
