"""The README quick start as a new user runs it: the CLI against the embedded PostgreSQL
(never DATABASE_URL here), `serve` as a real process, the sync openai SDK as in the seed
document, and the data surviving a restart."""

import json
import os
import shutil
import sys
from datetime import datetime, timezone
from decimal import Decimal

import openai
import pytest

from tests.processes import Process, cli, free_port, serve

UPSTREAM_KEY = "sk-upstream-quickstart"


@pytest.fixture
def cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(BILLING_PROXY_HOME=str(tmp_path / "home"), UPSTREAM_API_KEY=UPSTREAM_KEY)
    return env


def test_console_script_is_installed():
    assert shutil.which("billing-proxy") or os.path.exists(os.path.join(os.path.dirname(sys.executable),
                                                                        "billing-proxy"))


def test_quick_start_on_embedded_postgres_survives_restart(cli_env):
    upstream_port, proxy_port = free_port(), free_port()
    env = {**cli_env, "UPSTREAM_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1"}
    upstream = Process(env, "simulate-upstream", "--port", str(upstream_port), "--api-key", UPSTREAM_KEY)
    processes = [upstream]
    try:
        upstream.wait_for(f"http://127.0.0.1:{upstream_port}/_sim/requests")
        cli(env, "tenants", "create", "acme", "--monthly-budget", "25")
        issued = json.loads(cli(env, "keys", "issue", "--tenant", "acme", "--label", "quickstart",
                                "--format", "json"))
        assert issued["key"].startswith("bpk_") and issued["tenant"] == "acme"
        assert issued["key"] not in cli(env, "keys", "list")

        server = serve(env, proxy_port)
        processes.append(server)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key=issued["key"], max_retries=0)
        first = client.responses.create(
            model="seed-1-6-250915", input=[{"role": "user", "content": "你好"}],
            extra_body={"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}})
        streamed = list(client.responses.create(model="seed-1-6-250915", input="Hello!", stream=True))
        assert streamed[-1].type == "response.completed"
        client.close()
        assert server.stop() == 0  # SIGTERM: graceful, the ledger flushed
        processes.remove(server)

        server = serve(env, proxy_port)
        processes.append(server)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key=issued["key"],
                           max_retries=0) as again:
            third = again.responses.create(model="gpt-4o-mini", input="still my key after a restart?")
        assert server.stop() == 0
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
        # The first call asked for caching: BytePlus stores its context (input and visible
        # output) for 3 days, 72 started hours at 0.0083 per 1M tokens per hour.
        stored = first.usage.input_tokens + first.usage.output_tokens - first.usage.output_tokens_details.reasoning_tokens
        expected += stored * 72 * Decimal("0.0083") / Decimal(1_000_000)
        assert Decimal(report["total_cost"]) == expected
        assert report["rows"][0]["requests"] == 3 and report["currency"] == "USD"
        assert "acme" in cli(env, "tenants", "list")
    finally:
        for process in processes:
            process.stop()
