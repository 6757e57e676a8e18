"""The README quick start as a new user runs it: the CLI against the embedded PostgreSQL
(never DATABASE_URL here), `serve` as a real process, the sync openai SDK as in the seed
document, and the data surviving a restart."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal

import openai
import pytest

UPSTREAM_KEY = "sk-upstream-quickstart"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(BILLING_PROXY_HOME=str(tmp_path / "home"), UPSTREAM_API_KEY=UPSTREAM_KEY)
    return env


def cli(env, *args) -> str:
    done = subprocess.run([sys.executable, "-m", "proxy.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, output(process)
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def start(env, *args) -> subprocess.Popen:
    # Output goes to a file: a pipe that nobody reads would block the process once full.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "proxy.cli", *args], env=env, stdout=log, stderr=log)
    process.log = log
    return process


def output(process: subprocess.Popen) -> str:
    process.log.seek(0)
    return process.log.read().decode(errors="replace")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        process.log.close()


def test_console_script_is_installed():
    assert shutil.which("billing-proxy") or os.path.exists(os.path.join(os.path.dirname(sys.executable),
                                                                        "billing-proxy"))


def test_quick_start_on_embedded_postgres_survives_restart(cli_env):
    upstream_port, proxy_port = free_port(), free_port()
    env = {**cli_env, "UPSTREAM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1"}
    upstream = start(env, "simulate-upstream", "--port", str(upstream_port), "--api-key", UPSTREAM_KEY)
    processes = [upstream]
    try:
        wait_for(f"http://127.0.0.1:{upstream_port}/_sim/requests", upstream)
        cli(env, "tenants", "create", "acme", "--monthly-budget", "25")
        issued = json.loads(cli(env, "keys", "issue", "--tenant", "acme", "--label", "quickstart",
                                "--format", "json"))
        assert issued["key"].startswith("bpk_") and issued["tenant"] == "acme"
        assert issued["key"] not in cli(env, "keys", "list")

        server = start(env, "serve", "--port", str(proxy_port))
        processes.append(server)
        wait_for(f"http://127.0.0.1:{proxy_port}/readyz", server)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key=issued["key"], max_retries=0)
        first = client.responses.create(
            model="seed-1-6-250915", input=[{"role": "user", "content": "你好"}],
            extra_body={"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}})
        streamed = list(client.responses.create(model="seed-1-6-250915", input="Hello!", stream=True))
        assert streamed[-1].type == "response.completed"
        client.close()
        assert stop(server) == 0  # SIGTERM: graceful, the ledger flushed
        processes.remove(server)

        server = start(env, "serve", "--port", str(proxy_port))
        processes.append(server)
        wait_for(f"http://127.0.0.1:{proxy_port}/readyz", server)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key=issued["key"],
                           max_retries=0) as again:
            third = again.responses.create(model="gpt-4o-mini", input="still my key after a restart?")
        assert stop(server) == 0
        processes.remove(server)

        month = datetime.now(timezone.utc).strftime("%Y-%m")
        report = json.loads(cli(env, "report", "--month", month, "--format", "json"))
        usages = [(first.usage, "seed"), (streamed[-1].response.usage, "seed"), (third.usage, "gpt-4o-mini")]
        prices = {"seed": (Decimal("0.25"), Decimal("0.05"), Decimal("2.00")),
                  "gpt-4o-mini": (Decimal("0.15"), Decimal("0.075"), Decimal("0.60"))}
        expected = Decimal(0)
        for usage, model in usages:
            input_price, cached_price, output_price = prices[model]
            cached = usage.input_tokens_details.cached_tokens
            expected += ((usage.input_tokens - cached) * input_price + cached * cached_price
                         + usage.output_tokens * output_price) / Decimal(1_000_000)
        assert Decimal(report["total_cost"]) == expected
        assert report["rows"][0]["requests"] == 3 and report["currency"] == "USD"
        assert "acme" in cli(env, "tenants", "list")
    finally:
        for process in processes:
            stop(process)
