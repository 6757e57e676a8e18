"""What rate limits and a concurrency cap cost per call in steady state: one proxy process,
calls alternating between a key without limits and a key with rpm, tpm and a concurrency
cap far above the load, each round measured by the process's own CPU time.

    python bench/rate_cost.py [--calls 6400] [--rounds 3]

Uses DATABASE_URL, or the embedded PostgreSQL, and the canned upstream of the harness.
"""

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_database, start_proxy, start_upstream  # noqa: E402

BODY = json.dumps({"model": "gpt-4o-mini", "input": "hello there", "max_output_tokens": 50})
CONCURRENCY = 16


async def fire(proxy: str, secret: str, calls: int) -> None:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async def client(count: int) -> None:
            for _ in range(count):
                async with http.post(proxy + "/v1/responses", data=BODY, headers=headers) as reply:
                    if reply.status != 200:
                        raise RuntimeError(f"{reply.status}: {await reply.text()}")
                    await reply.read()
        await asyncio.gather(*[client(calls // CONCURRENCY) for _ in range(CONCURRENCY)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_database() as (url, keys), tempfile.TemporaryDirectory() as home:
        upstream, upstream_url = start_upstream()
        proxy, proxy_url = start_proxy(url, upstream_url, home)
        try:
            asyncio.run(fire(proxy_url, keys["rated"], 320))  # warm-up: shares and slots taken
            asyncio.run(fire(proxy_url, keys["open"], 320))
            for _ in range(args.rounds):
                line = []
                for name in ("rated", "open"):
                    cpu = proxy.cpu_seconds()
                    asyncio.run(fire(proxy_url, keys[name], args.calls))
                    line.append(f"{name} {(proxy.cpu_seconds() - cpu) / args.calls * 1e6:.0f} us CPU/call")
                print("   ".join(line), flush=True)
        finally:
            proxy.stop()
            upstream.stop()


if __name__ == "__main__":
    main()
