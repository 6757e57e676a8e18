"""The request-path benchmark, in one command:

    python bench/harness.py [--duration 10] [--connections 1,16]

In one run it starts a canned upstream (bench/canned_upstream.py), the floor (a bare
aiohttp pass-through, bench/passthrough.py), this proxy with full billing on real
PostgreSQL (DATABASE_URL, or the embedded one), with 1 and with 2 workers, and LiteLLM's
proxy if `litellm` is installed; drives each with `wrk` (apt-get install wrk), JSON and
streaming, at each connection count; prints req/s, p50 and p99 latency and the ratios
against the floor; and checks that every reply the upstream generated during a proxy run
is in the ledger exactly once.

Proxy rows: `proxy` bills a tenant without limits (keys, pricing, spool and ledger, no
quota statement); `proxy+quota` bills a tenant with a budget far from its limit (admitted
from budget leases: one quota statement per lease of about 100 calls); `proxy+rate` bills
a key with requests and tokens per minute and a concurrency cap, far above what the run
asks for (admitted from shares and slots in memory: one statement per bucket per second).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (Background, bench_database, components_billed, free_port, ledger_count, metric,  # noqa: E402
                          python, start_proxy, start_upstream, upstream_count, BENCH)

LITELLM_KEY = "sk-bench-master"
BODIES = {
    "json": '{"model":"gpt-4o-mini","input":"Say hello."}',
    "stream": '{"model":"gpt-4o-mini","input":"Say hello.","stream":true}',
    # the billed components as users run them: a flex-tier call with a web search (priced per tier
    # and per 1,000 tool calls), streamed
    "tools": '{"model":"gpt-5.4","input":"Say hello.","service_tier":"flex","tools":[{"type":"web_search"}],'
             '"stream":true}',
}
PORTKEY_HOME = ("node_modules", "/opt/portkey/node_modules")  # where `npm install @portkey-ai/gateway` put it


@dataclass
class Result:
    target: str
    mode: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # CPU time of the server under test per call
    note: str = ""


def wrk_script(body: str, key: str | None, headers: dict[str, str]) -> str:
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    extra = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "POST"\nwrk.body = \'{body}\'\nwrk.headers["Content-Type"] = "application/json"\n'
                 + auth + extra)
    script.close()
    return script.name


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, body: str, key: str | None, connections: int, duration: int,
            headers: dict[str, str]) -> tuple[float, float, float, int]:
    script = wrk_script(body, key, headers)
    try:
        output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script,
                                 url + "/v1/responses"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)) else 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(g) for g in m.groups())
    return rps, p50, p99, errors


class BacklogWatch:
    """Samples the proxy's ledger backlog while a run goes on; keeps the largest."""

    def __init__(self, proxy: str):
        self.proxy, self.peak, self._stop = proxy, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, metric(self.proxy, "billing_proxy_ledger_backlog"))
            except OSError:
                pass

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


class BillingCheck:
    """Every reply the upstream generated for a proxy is in the ledger once: the ledger's
    count must reach the upstream's, less what it generated for other targets."""

    def __init__(self, database_url: str, upstream: str):
        self.database_url, self.upstream = database_url, upstream
        self.not_proxied = upstream_count(upstream) - ledger_count(database_url)

    def settle(self, timeout: float = 60) -> tuple[int, int]:
        """(ledger entries, replies generated for proxies) once they agree on two reads in a
        row (calls still in flight when wrk stops reach the upstream late), or at the timeout."""
        deadline = time.monotonic() + timeout
        previous = None
        while True:
            generated = upstream_count(self.upstream) - self.not_proxied
            entries = ledger_count(self.database_url)
            if (entries == generated and previous == (entries, generated)) or time.monotonic() > deadline:
                return entries, generated
            previous = (entries, generated)
            time.sleep(0.2)


def measure(target: str, server: Background, url: str, key: str | None, modes, connections, duration, *,
            billing: BillingCheck | None = None, watch_backlog=False, headers=None) -> list[Result]:
    results = []
    headers = headers or {}
    for mode in modes:
        for conns in connections:
            run_wrk(url, BODIES[mode], key, conns, 2, headers)  # warm-up
            before = billing.settle()[0] if billing else 0
            watch = BacklogWatch(url) if watch_backlog else None
            cpu_before = server.cpu_seconds()
            rps, p50, p99, errors = run_wrk(url, BODIES[mode], key, conns, duration, headers)
            cpu_us = (server.cpu_seconds() - cpu_before) / max(rps * duration, 1) * 1e6
            note = ""
            if watch:
                note = f"peak backlog {watch.stop():.0f}; "
            if billing:
                entries, generated = billing.settle()
                note += (f"{entries - before} billed" if entries == generated else
                         f"BILLING MISMATCH: {generated} replies generated, {entries} ledger entries")
            results.append(Result(target, mode, conns, rps, p50, p99, errors, cpu_us, note))
            print(f"  {target:<14} {mode:<6} c={conns:<3} {rps:8.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
                  f"  {cpu_us:5.0f} us CPU/call  {note}", flush=True)
    return results


def start_litellm(upstream: str) -> tuple[Background, str] | None:
    if not shutil.which("litellm"):
        return None
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    config.write("model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
                 f"      api_base: {upstream}/v1\n      api_key: sk-bench\n"
                 f"general_settings:\n  master_key: {LITELLM_KEY}\n")
    config.close()
    port = free_port()
    # No database and no network: its price map from the package, not fetched.
    process = Background("litellm", ["litellm", "--config", config.name, "--port", str(port), "--num_workers", "1"],
                         env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
                              "DATABASE_URL": None})
    process.wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
    return process, f"http://127.0.0.1:{port}"


def start_portkey(upstream: str) -> tuple[Background, str, dict[str, str]] | None:
    """Portkey's open-source gateway (Node), if `npm install @portkey-ai/gateway` put it in
    ./node_modules or /opt/portkey/node_modules; it relays to the canned upstream as an
    OpenAI-compatible custom host."""
    server = next((Path(home) / "@portkey-ai/gateway/build/start-server.js" for home in PORTKEY_HOME
                   if (Path(home) / "@portkey-ai/gateway/build/start-server.js").exists()), None)
    if server is None or not shutil.which("node"):
        return None
    port = free_port()
    process = Background("portkey", ["node", str(server), f"--port={port}", "--headless"],
                         env={"NODE_ENV": "production"})
    process.wait_ready(f"http://127.0.0.1:{port}/", timeout=60)
    return process, f"http://127.0.0.1:{port}", {"x-portkey-provider": "openai",
                                                "x-portkey-custom-host": upstream + "/v1"}


def answers(url: str, body: str, headers: dict[str, str]) -> bool:
    """Whether a peer relays this kind of call (one probe; a 5xx means it cannot)."""
    probe = urllib.request.Request(url + "/v1/responses", data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": "Bearer sk-bench", **headers})
    try:
        with urllib.request.urlopen(probe, timeout=10) as reply:
            reply.read()
            return reply.status == 200
    except OSError:
        return False


def print_table(results: list[Result]) -> None:
    floor = {(r.mode, r.connections): r for r in results if r.target == "floor"}
    print("\ntarget          mode    conns    req/s   p50 ms   p99 ms   x floor req/s   p50 added ms   p99 added ms"
          "  CPU us/call  errors  notes")
    for r in results:
        base = floor.get((r.mode, r.connections))
        ratio = f"{r.rps / base.rps:13.2f}" if base else f"{'':13}"
        added = f"{r.p50_ms - base.p50_ms:+12.2f}" if base else f"{'':12}"
        added_p99 = f"{r.p99_ms - base.p99_ms:+12.2f}" if base else f"{'':12}"
        print(f"{r.target:<15} {r.mode:<6} {r.connections:>6} {r.rps:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f}   {ratio}  "
              f"{added}   {added_p99}  {r.cpu_us:11.0f}  {r.errors:>6}  {r.note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", default="1,16", help="connection counts (default 1,16)")
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--skip", default="", help="targets to leave out: floor,proxy,proxy-nolog,proxy+quota,"
                                                   "proxy+rate,proxy-2w,litellm,portkey,tools")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    connections = [int(c) for c in args.connections.split(",")]
    modes = args.modes.split(",")
    skip = set(args.skip.split(","))
    tools = [] if "tools" in skip else ["tools"]
    print(f"{os.cpu_count()} CPUs; {args.duration} s per measurement; wrk with 1 thread", flush=True)
    results: list[Result] = []
    with bench_database() as (database_url, keys):
        upstream, upstream_url = start_upstream()
        home = tempfile.mkdtemp(prefix="bench-home-")
        try:
            if "floor" not in skip:
                floor_port = free_port()
                floor = Background("floor", python(str(BENCH / "passthrough.py"), "--port", str(floor_port),
                                                   "--upstream", upstream_url + "/v1"))
                floor.wait_ready(f"http://127.0.0.1:{floor_port}/")
                results += measure("floor", floor, f"http://127.0.0.1:{floor_port}", None, modes + tools, connections,
                                   args.duration)
                floor.stop()
            billing = BillingCheck(database_url, upstream_url)
            no_access_log = {"BILLING_PROXY_ACCESS_LOG": "off"}
            for target, workers, key, env in [("proxy", 1, "open", {}), ("proxy-nolog", 1, "open", no_access_log),
                                              ("proxy+quota", 1, "limited", {}), ("proxy+rate", 1, "rated", {}),
                                              ("proxy-2w", 2, "open", {})]:
                if target in skip:
                    continue
                proxy, proxy_url = start_proxy(database_url, upstream_url, home, workers, **env)
                results += measure(target, proxy, proxy_url, keys[key], modes + (tools if target == "proxy" else []),
                                   connections, args.duration, billing=billing, watch_backlog=workers == 1)
                if proxy.stop() != 0:
                    print(f"{target} did not stop cleanly: see {proxy.log.name}")
            litellm = None if "litellm" in skip else start_litellm(upstream_url)
            if litellm:
                results += measure("litellm", litellm[0], litellm[1], LITELLM_KEY, modes, connections, args.duration)
                litellm[0].stop()
            elif "litellm" not in skip:
                print("  litellm: not installed (pip install 'litellm[proxy]' to include it)")
            portkey = None if "portkey" in skip else start_portkey(upstream_url)
            if portkey:
                relayed = [mode for mode in modes if answers(portkey[1], BODIES[mode], portkey[2])]
                if relayed != modes:
                    print(f"  portkey: fails on {', '.join(m for m in modes if m not in relayed)} here (see "
                          f"{portkey[0].log.name}); measured on {', '.join(relayed) or 'nothing'}")
                results += measure("portkey", portkey[0], portkey[1], "sk-bench", relayed, connections, args.duration,
                                   headers=portkey[2])
                portkey[0].stop()
            elif "portkey" not in skip:
                print("  portkey: not installed (npm install @portkey-ai/gateway, here or in /opt/portkey, to include "
                      "it)")
            if tools:
                print(f"  tools cells: {components_billed(database_url)}")
        finally:
            upstream.stop()
    print_table(results)
    return 1 if any("MISMATCH" in r.note for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
