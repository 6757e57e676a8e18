"""What a small budget does: for a monthly budget of $0.05, a daily budget of $0.01 and $1 of
prepaid credit, with the shipped prices and no `max_output_tokens`:

1. 20 short calls one after another ("hello", 24 output tokens): how many were answered,
   and what was spent against the limit;
2. on a fresh tenant, a burst of 50 calls at once over two proxy processes, then calls
   one at a time until the limit refuses for good, each reply as long as its cap allows
   (so every call spends what it was fitted to): how many the burst served, how many
   followed, and the share of the limit spent in the end (never over 100%).

    python bench/small_budgets.py [--model gpt-5]

Uses DATABASE_URL, or the embedded PostgreSQL; runs the simulator as the upstream.
"""

import argparse
import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.db.credits import add_credit  # noqa: E402
from billing.db.engine import make_engine  # noqa: E402
from billing.db.keys import issue_key  # noqa: E402
from billing.db.tenants import create_tenant  # noqa: E402
from bench.common import simulator_and_proxies  # noqa: E402

BUDGETS = {  # name: (tenant settings, the limit in USD)
    "monthly $0.05": ({"monthly_budget_usd": Decimal("0.05")}, Decimal("0.05")),
    "daily $0.01": ({"daily_budget_usd": Decimal("0.01")}, Decimal("0.01")),
    "prepaid $1": ({"prepaid": True}, Decimal("1")),
}


async def tenant(engine, name: str, settings: dict, limit: Decimal) -> str:
    await create_tenant(engine, name, **settings)
    if settings.get("prepaid"):
        await add_credit(engine, name, limit, "bench")
    return (await issue_key(engine, name)).secret


async def spent(engine, name: str) -> Decimal:
    await asyncio.sleep(1.5)  # the last entries reach the ledger
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT coalesce(sum(charge_total), 0) FROM ledger_entries e "
                                        "JOIN tenants t ON t.id = e.tenant_id WHERE t.name = :n"),
                                   {"n": name})).scalar_one()


async def run(urls: list[str], database_url: str, label: str, model: str, index: int) -> list[str]:
    settings, limit = BUDGETS[label]
    engine = make_engine(database_url, pool_size=1)
    lines = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def call(secret: str, i: int, output: int) -> tuple[int, dict]:
                headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                           "x-sim-output-tokens": str(output), "x-sim-delay-ms": "100"}
                body = {"model": model, "input": "hello"}
                async with http.post(urls[i % 2] + "/v1/responses", data=json.dumps(body), headers=headers) as reply:
                    return reply.status, await reply.json()

            name = f"short-{index}"
            secret = await tenant(engine, name, settings, limit)
            answered = sum([(await call(secret, i, 24))[0] == 200 for i in range(20)])
            total = await spent(engine, name)
            lines.append(f"{label:<14} {model}: 20 short calls one at a time: {answered:>2} answered; spent "
                         f"{total:.6f} of {limit} USD ({100 * total / limit:.2f}%)")

            name = f"burst-{index}"
            secret = await tenant(engine, name, settings, limit)
            burst = await asyncio.gather(*[call(secret, i, 100_000) for i in range(50)])
            served = sum(status == 200 for status, _ in burst)
            sequential, retries = 0, 0
            while retries < 20:
                status, answer = await call(secret, sequential, 100_000)
                if status == 200:
                    sequential += 1
                elif answer["error"]["code"] == "rate_limit_exceeded":  # held by calls still settling
                    retries += 1
                    await asyncio.sleep(0.3)
                else:
                    break
            total = await spent(engine, name)
            lines.append(f"{label:<14} {model}: burst of 50 served {served:>2} at once, then {sequential:>3} one at a "
                         f"time; spent {total:.6f} of {limit} USD ({100 * total / limit:.1f}%)"
                         + ("  OVER THE LIMIT" if total > limit else ""))
    finally:
        await engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="repeatable; default: gpt-5 and gpt-5-mini")
    models = parser.parse_args().model or ["gpt-5", "gpt-5-mini"]
    with simulator_and_proxies("bench_small_budgets") as (url, proxies):
        index = 0
        for model in models:
            for label in BUDGETS:
                index += 1
                for line in asyncio.run(run(proxies, url, label, model, index)):
                    print(line, flush=True)

if __name__ == "__main__":
    main()
