"""The request path's cost at another revision beside this checkout's, in one run:

    python bench/revisions.py --base REV [--rounds 6] [--duration 8] [--connections 16] [--budget USD]

It exports REV (`git archive`) to a temporary directory, starts the canned upstream, a
scratch database for each tree (migrated, and given a tenant without limits, by that
tree's own code; `--budget`: with a monthly budget, so that every call takes the quota
path) and a proxy from each tree, then measures them in alternating rounds (the order flips every
round, so drift on a noisy machine falls on both alike) with `wrk`, JSON and streaming.
It prints each round, then per mode the median of the rounds' paired ratios (this
checkout over REV, within one round, so that drift over the run cancels) of CPU time per
call and of req/s, with their range. A CPU ratio of 1.03 is 3% more CPU per call.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import python, start_proxy, start_upstream  # noqa: E402
from billing.db.scratch import scratch_database, server_url  # noqa: E402
from bench.harness import BODIES, run_wrk  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def export(revision: str, into: Path) -> Path:
    archive = into / "source.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), revision], check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


# Run by each tree's own Python code: migrate, then a tenant (a monthly budget if one is
# given) and its key.
_SET_UP = """
import asyncio, sys
from decimal import Decimal
from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.migrate import upgrade_to_head
from billing.db.tenants import create_tenant
upgrade_to_head(sys.argv[1])
async def main():
    engine = make_engine(sys.argv[1], pool_size=1)
    limits = {"monthly_budget_usd": Decimal(sys.argv[2])} if len(sys.argv) > 2 else {}
    await create_tenant(engine, "open", **limits)
    print((await issue_key(engine, "open")).secret)
    await engine.dispose()
asyncio.run(main())
"""


def set_up(database: str, source: str | None, budget: str | None) -> str:
    """The key of a tenant in `database` (with that monthly budget, or no limit), set up by
    the code in `source`."""
    env = {**os.environ, **({"PYTHONPATH": source} if source else {})}
    done = subprocess.run(python("-c", _SET_UP, database, *([budget] if budget else [])), cwd=source, env=env, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip().splitlines()[-1]


def cpu_per_call(proxy, url: str, body: str, key: str, connections: int, duration: int) -> tuple[float, float]:
    before = proxy.cpu_seconds()
    rps, *_ = run_wrk(url, body, key, connections, duration, {})
    return (proxy.cpu_seconds() - before) / max(rps * duration, 1) * 1e6, rps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision to compare with (a commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--budget", help="give the tenant this monthly budget in USD (default: no limit)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    server = server_url()
    with tempfile.TemporaryDirectory(prefix="bench-revisions-") as scratch, \
            scratch_database(server, "bench_base") as base_database, scratch_database(server, "bench_this") as database:
        base_tree = export(args.base, Path(scratch))
        upstream, upstream_url = start_upstream()
        proxies, keys = {}, {}
        try:
            for name, source, db in (("base", str(base_tree), base_database), ("this", None, database)):
                home = Path(scratch) / f"home-{name}"
                home.mkdir()
                keys[name] = set_up(db, source, args.budget)
                proxies[name] = start_proxy(db, upstream_url, str(home), source=source)
            for name, (proxy, url) in proxies.items():  # warm-up
                for mode in modes:
                    run_wrk(url, BODIES[mode], keys[name], args.connections, 2, {})
            samples = {(name, mode): [] for name in proxies for mode in modes}
            for round_ in range(args.rounds):
                order = ["base", "this"] if round_ % 2 == 0 else ["this", "base"]
                for mode in modes:
                    for name in order:
                        proxy, url = proxies[name]
                        cpu_us, rps = cpu_per_call(proxy, url, BODIES[mode], keys[name], args.connections,
                                                   args.duration)
                        samples[(name, mode)].append((cpu_us, rps))
                        print(f"  round {round_ + 1} {mode:<6} {name:<4} {cpu_us:6.0f} us CPU/call {rps:7.0f} req/s",
                              flush=True)
        finally:
            for proxy, _ in proxies.values():
                proxy.stop()
            upstream.stop()
    print(f"\n{args.rounds} alternating rounds, {args.duration} s each, c={args.connections}; "
          f"this checkout against {args.base}" + (f", a tenant with a ${args.budget} monthly budget" if args.budget else ""))
    for mode in modes:
        pairs = list(zip(samples[("this", mode)], samples[("base", mode)]))
        cpu = sorted(this[0] / base[0] for this, base in pairs)
        rps = sorted(this[1] / base[1] for this, base in pairs)
        print(f"  {mode:<6} CPU/call ratio {statistics.median(cpu):.3f} (rounds {cpu[0]:.3f} to {cpu[-1]:.3f})   "
              f"req/s ratio {statistics.median(rps):.3f} (rounds {rps[0]:.3f} to {rps[-1]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
