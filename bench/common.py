"""What the benchmarks share: a scratch database with a tenant and key, background
processes (upstream, proxy, floor), their memory, and the proxy's metrics."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from sqlalchemy import func, select, text

from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.migrate import upgrade_to_head
from billing.db.scratch import scratch_database, server_url
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant

BENCH = Path(__file__).parent
METRICS_TOKEN = "bench-metrics-" + "b" * 24  # /metrics needs a token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Background:
    """A process in the background, its output in a temporary file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str | None] | None = None,
                 cwd: str | None = None):
        """`env` is laid over this process's environment; a None value removes the variable."""
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        self.popen = subprocess.Popen(command, env=merged, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log.name}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except urllib.error.HTTPError:  # it answers
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not come up: see {self.log.name}") from None
                time.sleep(0.1)

    def pids(self) -> list[int]:
        """The process and its children (the workers of `serve --workers N`)."""
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        extra = [int(p) for p in children.read_text().split()] if children.exists() else []
        return [self.popen.pid, *extra]

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process and its workers so far."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
        return total / 1024

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_upstream() -> tuple[Background, str]:
    port = free_port()
    upstream = Background("upstream", python(str(BENCH / "canned_upstream.py"), "--port", str(port)))
    upstream.wait_ready(f"http://127.0.0.1:{port}/_count")
    return upstream, f"http://127.0.0.1:{port}"


def start_proxy(database_url: str, upstream: str, home: str, workers: int = 1, source: str | None = None,
                **env: str) -> tuple[Background, str]:
    """`source`: a checkout of another revision to run the proxy from (default: this one)."""
    port = free_port()
    proxy = Background(f"proxy-{workers}w", python("-m", "proxy.cli", "serve", "--port", str(port),
                                                   "--workers", str(workers)), cwd=source,
                       env={"DATABASE_URL": database_url, "UPSTREAM_BASE_URL": upstream + "/v1",
                            "UPSTREAM_API_KEY": "sk-bench", "BILLING_PROXY_HOME": home,
                            "BILLING_PROXY_LOG_LEVEL": "INFO",  # as deployed: the access log on, to a file
                            "BILLING_PROXY_METRICS_TOKEN": METRICS_TOKEN,
                            "BILLING_PROXY_FORWARD_HEADERS": "x-sim-*", **({"PYTHONPATH": source} if source else {}),
                            **env})
    proxy.wait_ready(f"http://127.0.0.1:{port}/readyz")
    return proxy, f"http://127.0.0.1:{port}"


@contextmanager
def simulator_and_proxies(database_name: str, count: int = 2) -> Iterator[tuple[str, list[str]]]:
    """A migrated scratch database, the simulated upstream and `count` proxy processes in
    front of it: (database URL, the proxies' addresses); all stopped at the end."""
    with scratch_database(server_url(), database_name) as url, tempfile.TemporaryDirectory() as home:
        upgrade_to_head(url)
        port = free_port()
        upstream = Background("simulator", python("-m", "proxy.cli", "simulate-upstream", "--port", str(port)))
        proxies = []
        try:
            upstream.wait_ready(f"http://127.0.0.1:{port}/v1/models")
            proxies = [start_proxy(url, f"http://127.0.0.1:{port}", f"{home}/{i}") for i in range(count)]
            yield url, [address for _, address in proxies]
        finally:
            for process, _ in proxies:
                process.stop()
            upstream.stop()


@contextmanager
def bench_database() -> Iterator[tuple[str, dict[str, str]]]:
    """A scratch database with three tenants: `open` (no limits), `limited` (a budget far
    above what a run spends, so every call is admitted under budget leases) and `rated`
    (a key with rpm, tpm and a concurrency cap far above what a run asks for)."""
    with scratch_database(server_url(), "bench") as url:
        upgrade_to_head(url)

        async def setup():
            engine = make_engine(url, pool_size=1)
            try:
                await create_tenant(engine, "open")
                await create_tenant(engine, "limited", monthly_budget_usd=Decimal(1_000_000))
                await create_tenant(engine, "rated")
                # limits far above what a run asks for: their cost in steady state, never a refusal
                rated = await issue_key(engine, "rated", requests_per_minute=10**9, tokens_per_minute=10**9,
                                        max_concurrent=10_000)
                return {"open": (await issue_key(engine, "open")).secret,
                        "limited": (await issue_key(engine, "limited")).secret, "rated": rated.secret}
            finally:
                await engine.dispose()

        yield url, asyncio.run(setup())


def ledger_count(database_url: str) -> int:
    async def count():
        engine = make_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one()
        finally:
            await engine.dispose()
    return asyncio.run(count())


def components_billed(database_url: str) -> str:
    """What the ledger billed for the `tools` cells (flex tier, web search calls)."""
    async def query():
        engine = make_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(
                    "SELECT count(*), coalesce(sum((tool_calls->>'web_search')::bigint), 0), sum(cost_tool_calls), "
                    "sum(cost_total) FROM ledger_entries WHERE service_tier = 'flex'"))).one()
        finally:
            await engine.dispose()
    calls, searches, tool_cost, total = asyncio.run(query())
    return (f"{calls} flex-tier entries, {searches} web searches billed, {tool_cost} USD for tool calls "
            f"of {total} USD in all")


def upstream_count(upstream: str) -> int:
    import json
    with urllib.request.urlopen(upstream + "/_count") as reply:
        return json.load(reply)["generated"]


def metric(proxy: str, name: str) -> float:
    """One unlabelled value from the proxy's /metrics."""
    scrape = urllib.request.Request(proxy + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(scrape) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise KeyError(name)


def wait_for_backlog(proxy: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while metric(proxy, "billing_proxy_ledger_backlog") > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the ledger writer did not catch up")
        time.sleep(0.1)
