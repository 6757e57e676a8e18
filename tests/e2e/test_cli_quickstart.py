"""The README quick start as a new user runs it: the CLI against the embedded PostgreSQL
(never DATABASE_URL here), `serve` as a real process, the sync openai SDK as in the seed
document, and the data surviving a restart."""

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
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


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proxy.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_cli_prints_only_what_was_asked(cli_env):
    """No library chatter on the embedded PostgreSQL's start and stop; the one-time secret
    alone on stdout, so that `KEY=$(billing-proxy keys issue ...)` works."""
    created = _run(cli_env, "tenants", "create", "quiet", "--monthly-budget", "5")  # initdb, start, stop
    assert created.returncode == 0 and created.stderr == ""
    issued = _run(cli_env, "keys", "issue", "--tenant", "quiet")
    assert issued.returncode == 0
    secret = issued.stdout.strip()
    assert issued.stdout == secret + "\n" and secret.startswith("bpk_") and len(secret) == 47
    assert issued.stderr.count("\n") == 1 and "not shown again" in issued.stderr and secret not in issued.stderr
    rotated = _run(cli_env, "keys", "rotate", "1", "--grace", "1h")
    assert rotated.stdout.strip().startswith("bpk_") and rotated.stdout.count("\n") == 1
    assert "previous secret works until" in rotated.stderr

    verbose = _run(cli_env, "--verbose", "keys", "list")
    assert verbose.returncode == 0 and "embedded_postgres" in verbose.stderr  # the library's lines, when asked
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    report = json.loads(_run(cli_env, "report", "--format", "json").stdout)  # --month: the current one
    assert report["month"] == month


def test_a_busy_port_is_one_line_and_exit_1(cli_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["serve", "--port", str(port)], ["serve", "--port", str(port), "--workers", "2"],
                        ["simulate-upstream", "--port", str(port)]):
            done = _run(cli_env, *command)
            assert done.returncode == 1, done
            assert done.stderr == f"billing-proxy: 127.0.0.1:{port} is already in use; is another server running " \
                                  "there? Stop it or pass --port.\n"


def test_serve_without_an_upstream_key_says_so_and_logs_each_call(cli_env):
    env = {k: v for k, v in cli_env.items() if k != "UPSTREAM_API_KEY"}
    port = free_port()
    server = serve(env, port)
    try:
        for _ in range(3):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5)
            assert refused.value.code == 401
            refused.value.close()
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.final_output.splitlines() if line.startswith("{")]
    assert any(line["level"] == "WARNING" and "UPSTREAM_API_KEY is not set" in line["message"]
               and "api.openai.com" in line["message"] for line in lines)
    # Batched in the server, written by the time it stopped: one line per call, none for /readyz.
    access = [line for line in lines if line["logger"] == "billing_proxy.access"]
    assert [(a["method"], a["path"], a["status"], a["error"]) for a in access] == [
        ("GET", "/v1/models", 401, "invalid_api_key")] * 3
