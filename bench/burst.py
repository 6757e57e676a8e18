"""How much of a budget a burst leaves usable: 200 concurrent calls over two proxy
processes against a budget that pays for about 55 of them, then calls one at a time until
the budget refuses for good. Prints, per scenario, how many of the 200 the burst admitted,
how many sequential calls followed, and the share of the budget spent in the end.

    python bench/burst.py

Uses DATABASE_URL, or the embedded PostgreSQL. Runs the simulator as the upstream. Only
uses what every version since issue 14 has, so it can measure an older checkout too:
`PYTHONPATH=/path/to/old python bench/burst.py` from that checkout.
"""

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from bench.common import simulator_and_proxies  # noqa: E402

SCENARIOS = {
    # name: (request body, output tokens the upstream writes, budget in USD)
    # gpt-4o (2.50 / 10.00 per 1M): ~0.004 billed per call, ~0.0104 reserved (cap 1,000)
    "capped": ({"model": "gpt-4o", "input": "Write a limerick about ledgers, please. " * 3, "max_output_tokens": 1000},
               400, Decimal("0.22")),
    # issue 15's: no cap, so the model's own (16,384 tokens, ~0.164) is reserved; ~0.027 billed
    "uncapped": ({"model": "gpt-4o", "input": "Write a long essay about ledgers."}, 2700, Decimal("1.50")),
}


async def scenario(urls: list[str], database_url: str, name: str) -> str:
    body, output, budget = SCENARIOS[name]
    engine = make_engine(database_url, pool_size=1)
    try:
        await create_tenant(engine, name, monthly_budget_usd=budget)
        secret = (await issue_key(engine, name)).secret
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                   "x-sim-output-tokens": str(output)}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def call(i: int) -> tuple[int, dict]:
                async with http.post(urls[i % 2] + "/v1/responses", data=json.dumps(body), headers=headers) as reply:
                    return reply.status, await reply.json()

            burst = await asyncio.gather(*[call(i) for i in range(200)])
            in_burst = sum(status == 200 for status, _ in burst)
            sequential, retries = 0, 0
            while retries < 50:
                status, answer = await call(sequential)
                if status == 200:
                    sequential += 1
                elif answer["error"]["code"] == "rate_limit_exceeded":  # held by calls in flight: retry
                    retries += 1
                    await asyncio.sleep(0.2)
                else:
                    break
        await asyncio.sleep(1)  # the last entries reach the ledger
        async with engine.connect() as conn:
            spent = (await conn.execute(text("SELECT coalesce(sum(charge_total), 0) FROM ledger_entries e "
                                             "JOIN tenants t ON t.id = e.tenant_id WHERE t.name = :n"),
                                        {"n": name})).scalar_one()
    finally:
        await engine.dispose()
    return (f"{name:<9} burst admitted {in_burst:>3} of 200; then {sequential:>3} one at a time; "
            f"spent {spent:.4f} of {budget} USD = {100 * spent / budget:.1f}%")


def main() -> None:
    with simulator_and_proxies("bench_burst") as (url, proxies):
        for name in SCENARIOS:
            print(asyncio.run(scenario(proxies, url, name)), flush=True)

if __name__ == "__main__":
    main()
