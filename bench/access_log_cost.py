"""What the access log costs per call: two proxy processes, one writing its access log to
a file (as deployed) and one with `BILLING_PROXY_ACCESS_LOG=off`, driven in alternating
rounds by the same client, each measured by its own CPU time.

    python bench/access_log_cost.py [--calls 6400] [--rounds 4]

Uses DATABASE_URL, or the embedded PostgreSQL, and the canned upstream of the harness.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_database, start_proxy, start_upstream  # noqa: E402
from bench.rate_cost import fire  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6400)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with bench_database() as (url, keys), tempfile.TemporaryDirectory() as home:
        upstream, upstream_url = start_upstream()
        proxies = {"on": start_proxy(url, upstream_url, home + "/on"),
                   "off": start_proxy(url, upstream_url, home + "/off", BILLING_PROXY_ACCESS_LOG="off")}
        costs: dict[str, list[float]] = {"on": [], "off": []}
        try:
            for proxy, proxy_url in proxies.values():
                asyncio.run(fire(proxy_url, keys["open"], 640))  # warm-up
            for round_ in range(args.rounds):
                line = []
                order = ("on", "off") if round_ % 2 == 0 else ("off", "on")  # neither always goes first
                for name in order:
                    proxy, proxy_url = proxies[name]
                    cpu = proxy.cpu_seconds()
                    asyncio.run(fire(proxy_url, keys["open"], args.calls))
                    costs[name].append((proxy.cpu_seconds() - cpu) / args.calls * 1e6)
                    line.append(f"access log {name}: {costs[name][-1]:.0f} us CPU/call")
                print("   ".join(line), flush=True)
            on, off = statistics.median(costs["on"]), statistics.median(costs["off"])
            print(f"median: on {on:.0f}, off {off:.0f} us CPU/call: the access log costs {on - off:+.0f} us "
                  f"({(on - off) / off:+.1%})")
            lines = sum(1 for _ in open(proxies["on"][0].log.name))
            print(f"lines in the 'on' process's log: {lines}")
        finally:
            for proxy, _ in proxies.values():
                proxy.stop()
            upstream.stop()


if __name__ == "__main__":
    main()
