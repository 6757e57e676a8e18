"""Soak: the proxy under steady streaming load for a long time, its memory sampled, and at
the end every reply the upstream generated checked to be in the ledger exactly once.

    python bench/soak.py [--minutes 10] [--streams 1000] [--delay-ms 500]

`--streams` slow streams are kept open at all times (each one 12 SSE events, `--delay-ms`
apart, then the next begins), through one proxy process with full billing on real
PostgreSQL (DATABASE_URL, or the embedded one). Every `--sample-seconds` it prints the
proxy's RSS, its ledger backlog and the calls completed. Exit status 1 if an entry is
missing or doubled, or if RSS grew by more than `--max-growth-mib` after the warm-up.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database, ledger_count, metric, start_proxy, start_upstream, upstream_count  # noqa: E402
from billing.db.engine import make_engine  # noqa: E402

BODY = b'{"model":"gpt-4o-mini","input":"Tell me a slow story.","stream":true}'


async def load(url: str, key: str, streams: int, delay_ms: int, stop: asyncio.Event, done: list[int]) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "x-sim-delay-ms": str(delay_ms)}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        async def one_stream_after_another(index: int) -> None:
            await asyncio.sleep(index * delay_ms / 1000 / streams * 12)  # spread the starts evenly
            while not stop.is_set():
                try:
                    async with http.post(url + "/v1/responses", data=BODY, headers=headers) as reply:
                        body = await reply.read()
                    done[0 if reply.status == 200 and b"response.completed" in body else 1] += 1
                except aiohttp.ClientError:
                    done[1] += 1
        await asyncio.gather(*[one_stream_after_another(i) for i in range(streams)])


async def distinct_replies(database_url: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return (await conn.exec_driver_sql(
                "SELECT count(DISTINCT upstream_response_id) FROM ledger_entries")).scalar_one()
    finally:
        await engine.dispose()


async def soak(args, url: str, key: str, proxy, database_url: str, upstream: str) -> int:
    stop, done = asyncio.Event(), [0, 0]
    traffic = asyncio.create_task(load(url, key, args.streams, args.delay_ms, stop, done))
    started = time.monotonic()
    samples = []
    print(f"{'minute':>6} {'RSS MiB':>8} {'backlog':>8} {'completed':>10} {'failed':>7}", flush=True)
    while (elapsed := time.monotonic() - started) < args.minutes * 60:
        await asyncio.sleep(min(args.sample_seconds, args.minutes * 60 - elapsed))
        rss = proxy.rss_mib()
        backlog = await asyncio.to_thread(metric, url, "billing_proxy_ledger_backlog")
        samples.append((time.monotonic() - started, rss, backlog))
        print(f"{samples[-1][0] / 60:6.1f} {rss:8.1f} {backlog:8.0f} {done[0]:10d} {done[1]:7d}", flush=True)
    stop.set()
    await traffic

    deadline = time.monotonic() + 60
    while (entries := await asyncio.to_thread(ledger_count, database_url)) < \
            (generated := await asyncio.to_thread(upstream_count, upstream)):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    distinct = await distinct_replies(database_url)
    warm = [rss for at, rss, _ in samples if at >= args.warmup_seconds] or [samples[-1][1]]
    growth = warm[-1] - warm[0]
    print(f"\n{args.streams} concurrent streams for {args.minutes} min: {done[0]} completed, {done[1]} failed")
    print(f"RSS after warm-up: first {warm[0]:.1f} MiB, min {min(warm):.1f}, max {max(warm):.1f}, "
          f"last {warm[-1]:.1f} (growth {growth:+.1f} MiB)")
    print(f"peak ledger backlog {max(b for _, _, b in samples):.0f}")
    print(f"upstream generated {generated} replies; ledger has {entries} entries for {distinct} distinct replies")
    ok = entries == generated == distinct and done[1] == 0 and growth <= args.max_growth_mib
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--delay-ms", type=int, default=500)
    parser.add_argument("--sample-seconds", type=float, default=30)
    # The first minutes fill bounded caches (20,000 response owners): growth counts after them.
    parser.add_argument("--warmup-seconds", type=float, default=180)
    parser.add_argument("--max-growth-mib", type=float, default=20)
    args = parser.parse_args()
    with bench_database() as (database_url, keys):
        upstream, upstream_url = start_upstream()
        proxy, url = start_proxy(database_url, upstream_url, tempfile.mkdtemp(prefix="soak-home-"))
        try:
            try:
                import uvloop
                runner = uvloop.run
            except ImportError:
                runner = asyncio.run
            code = runner(soak(args, url, keys["open"], proxy, database_url, upstream_url))
        finally:
            if proxy.stop() != 0:
                print("the proxy did not stop cleanly (exit status non-zero)")
                code = 1
            upstream.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
