"""`serve --workers 2`: two processes on one port, both billing into one ledger; SIGTERM to
the supervisor stops both cleanly."""

import asyncio
import signal
from pathlib import Path

import aiohttp
import orjson

from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from tests.conftest import METRICS_AUTH, METRICS_TOKEN, UPSTREAM_KEY
from tests.e2e.test_fault_process import rows_when
from tests.processes import Process, environment, free_port


async def test_two_workers_share_a_port_and_stop_cleanly(simulator, database_url, engine, tmp_path):
    await create_tenant(engine, "team")
    key = await issue_key(engine, "team")
    env = environment(DATABASE_URL=database_url, UPSTREAM_BASE_URL=str(simulator.make_url("/v1")),
                      UPSTREAM_API_KEY=UPSTREAM_KEY, BILLING_PROXY_HOME=str(tmp_path),
                      BILLING_PROXY_METRICS_TOKEN=METRICS_TOKEN)
    port = free_port()
    supervisor = Process(env, "serve", "--port", str(port), "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(supervisor.wait_for, url + "/readyz")
        children = Path(f"/proc/{supervisor.popen.pid}/task/{supervisor.popen.pid}/children").read_text().split()
        assert len(children) == 2

        counted = []  # calls answered 200, as the worker that answered each /metrics scrape counts them
        calls = 0  # /readyz answers once one worker is up: go on until the other has served too
        while calls < 40 or (max(counted) == calls and calls < 200):
            async with aiohttp.ClientSession() as http:  # a new connection each time: spread over the workers
                async with http.post(url + "/v1/responses", headers={"Authorization": f"Bearer {key.secret}"},
                                     data=orjson.dumps({"model": "gpt-4o-mini", "input": f"call {calls}"})) as reply:
                    assert reply.status == 200
                calls += 1
                async with http.get(url + "/metrics", headers=METRICS_AUTH) as reply:
                    counted += [float(line.rsplit(" ", 1)[1]) for line in (await reply.text()).splitlines()
                                if line.startswith('billing_proxy_requests_total{endpoint="responses"')]
        assert max(counted) < calls  # no one worker served every call: both did
        rows = await rows_when(engine, calls)
        assert len(rows) == calls == len(simulator.state.billed)
        assert await asyncio.to_thread(supervisor.stop, signal.SIGTERM) == 0
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if supervisor.popen.poll() is None:  # a failed assertion must not leave it serving
            await asyncio.to_thread(supervisor.stop, signal.SIGTERM)


async def test_workers_stop_when_their_supervisor_is_killed(simulator, database_url, engine, tmp_path):
    env = environment(DATABASE_URL=database_url, UPSTREAM_BASE_URL=str(simulator.make_url("/v1")),
                      UPSTREAM_API_KEY=UPSTREAM_KEY, BILLING_PROXY_HOME=str(tmp_path),
                      BILLING_PROXY_METRICS_TOKEN=METRICS_TOKEN)
    port = free_port()
    supervisor = Process(env, "serve", "--port", str(port), "--workers", "2")
    await asyncio.to_thread(supervisor.wait_for, f"http://127.0.0.1:{port}/readyz")
    children = Path(f"/proc/{supervisor.popen.pid}/task/{supervisor.popen.pid}/children").read_text().split()
    await asyncio.to_thread(supervisor.stop, signal.SIGKILL)
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in children):
            break
        await asyncio.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "orphaned workers still running"
