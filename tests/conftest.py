"""Shared fixtures: a real PostgreSQL database, the simulated upstream, the proxy.

With DATABASE_URL set (CI points it at the local server), the suite creates a database of
its own on that server and drops it at the end; without it, it starts the embedded
PostgreSQL in a temporary directory. Never SQLite, never a mock.
"""

import asyncio
import os
from dataclasses import dataclass

import openai
import pytest
from sqlalchemy import text

from billing.db.engine import embedded_database_url, make_engine
from billing.db.keys import issue_key
from billing.db.migrate import upgrade_to_head
from billing.db.scratch import scratch_database
from billing.db.tenants import create_tenant
from proxy.app import create_app
from proxy.config.settings import Settings
from proxy.simulator import SIM_STATE, create_simulator
from tests.processes import environment, free_port, serve

UPSTREAM_KEY = "sk-upstream-" + "x" * 24
METRICS_TOKEN = "metrics-" + "m" * 24
SIMULATOR_KNOBS = ("x-sim-*",)  # the simulator's test knobs are request headers the proxy must forward
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    server = os.environ.get("DATABASE_URL") or embedded_database_url(tmp_path_factory.mktemp("embedded-pg"))
    with scratch_database(server, "billing_proxy_test") as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture
async def engine(database_url):
    engine = make_engine(database_url, pool_size=4)
    async with engine.begin() as conn:
        await conn.execute(text(
            "TRUNCATE ledger_entries, api_key_secrets, api_keys, tenants, price_tiers, price_versions, model_aliases, "
            "audit_log, quota_usage, reservations, alerts, ledger_daily, ledger_daily_users, ledger_daily_tags, "
            "response_owners, background_responses, "
            "ledger_dead_letters, credit_topups, rate_buckets, concurrency_claims, ledger_adjustments, month_closes, "
            "export_outbox, export_holds, export_sinks, reservation_holds "
            "RESTART IDENTITY CASCADE"
        ))
        await conn.execute(text("SELECT ledger_guard_closed_months()"))  # no month closed: no late booking
    yield engine
    await engine.dispose()


@pytest.fixture
async def simulator(aiohttp_server):
    app = create_simulator(api_key=UPSTREAM_KEY)
    server = await aiohttp_server(app)
    server.state = app[SIM_STATE]
    return server


@dataclass
class RunningProxy:
    url: str
    app: object
    settings: Settings

    @property
    def state(self):
        from proxy.gateway.state import STATE
        return self.app[STATE]


@pytest.fixture
def proxy_settings(simulator, tmp_path) -> Settings:
    return Settings(
        database_url=None, home=tmp_path, upstream_base_url=str(simulator.make_url("/v1")),
        upstream_api_key=UPSTREAM_KEY, max_body_bytes=1024 * 1024, upstream_read_timeout=5.0,
        sync_interval=0.5, background_poll_seconds=0.2, metrics_token=METRICS_TOKEN,
        forward_headers=SIMULATOR_KNOBS,
    )


@pytest.fixture
async def proxy(aiohttp_server, engine, database_url, proxy_settings) -> RunningProxy:
    app = create_app(proxy_settings, database_url)
    server = await aiohttp_server(app)
    return RunningProxy(str(server.make_url("")).rstrip("/"), app, proxy_settings)


@dataclass
class TenantKey:
    tenant: str
    tenant_id: int
    key_id: int
    secret: str


@pytest.fixture
async def tenant_key(engine) -> TenantKey:
    tenant = await create_tenant(engine, "team-a")
    issued = await issue_key(engine, "team-a", label="ci")
    return TenantKey(tenant.name, tenant.id, issued.id, issued.secret)


@pytest.fixture
async def client(proxy, tenant_key):
    """The official SDK, pointed at the proxy with the tenant's key."""
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as client:
        yield client



@pytest.fixture
async def stranger(proxy, engine):
    """The official SDK with a key of another tenant (team-b): it must see nothing of team-a's."""
    await create_tenant(engine, "team-b")
    issued = await issue_key(engine, "team-b", label="stranger")
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=issued.secret, max_retries=0) as client:
        yield client


@pytest.fixture
async def two_proxies(simulator, database_url, engine, tmp_path):
    """Two `serve` processes on one database and the simulator: their URLs, processes and
    environment (reservations expire after 3 s)."""
    env = environment(DATABASE_URL=database_url, UPSTREAM_BASE_URL=str(simulator.make_url("/v1")),
                      UPSTREAM_API_KEY=UPSTREAM_KEY, BILLING_PROXY_HOME=str(tmp_path),
                      BILLING_PROXY_RESERVATION_TTL="3")
    ports = [free_port(), free_port()]
    loop = asyncio.get_running_loop()
    processes = await asyncio.gather(*[loop.run_in_executor(None, serve, env, port) for port in ports])
    yield [f"http://127.0.0.1:{port}" for port in ports], processes, env
    for process in processes:
        await loop.run_in_executor(None, process.stop)
