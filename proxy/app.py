"""The application factory: the gateway, the admin surface and the probes as one aiohttp
app, with what they share started before it serves and stopped, in order, after."""

import asyncio
import logging
from typing import AsyncIterator

from aiohttp import web

from billing.catalog import Catalog, load_catalog, shipped_catalog_path
from billing.db.engine import make_engine
from billing.db.exports import register_sinks
from billing.db.prices import sync_catalog
from billing.quota_lease import LeaseBook
from billing.tokenizer import o200k_base
from proxy import probes
from proxy.admin.api import add_admin_routes
from proxy.admin.dashboard import add_dashboard_routes
from proxy.admin.guard import ADMIN_GUARD, AdminGuard
from proxy.chores import start_chores
from proxy.config.routing import DEFAULT, Router, Upstream
from proxy.config.settings import Settings
from proxy.durability.ledger_writer import LedgerWriter
from proxy.durability.spool import Spool
from proxy.errors import error_middleware
from proxy.gateway.admission import release_leases_now
from proxy.gateway.limits import give_back_all
from proxy.gateway.mirror import Mirror
from proxy.gateway.routes import add_gateway_routes
from proxy.gateway.sessions import ResponseOwners
from proxy.gateway.state import STATE, ProxyState
from proxy.gateway.upstream import make_client_session
from proxy.observability.access_log import ACCESS, flush_access_log
from proxy.observability.logs import redact_aiohttp_logs

log = logging.getLogger(__name__)

LAST_EXCHANGES_SECONDS = 2.0  # after the server's grace: exchanges still running get this, then are cut


def merged_catalog(settings: Settings) -> Catalog:
    """The shipped catalog with PRICES_FILE laid over it, model by model."""
    shipped = load_catalog(shipped_catalog_path())
    if settings.prices_file is None:
        return shipped
    override = load_catalog(settings.prices_file)
    replaced = {v.model for v in override.versions}
    return Catalog(
        versions=tuple(v for v in shipped.versions if v.model not in replaced) + override.versions,
        aliases={**{a: m for a, m in shipped.aliases.items() if m not in replaced}, **override.aliases},
    )


def router_for(settings: Settings) -> Router:
    default = Upstream(DEFAULT, settings.upstream_base_url, settings.upstream_api_key,
                       admin_api_key=settings.upstream_admin_key, price_uplift=settings.upstream_price_uplift)
    return Router(default, settings.upstreams)


async def finish_exchanges(inflight: set[asyncio.Task]) -> None:
    """Shutdown: the server already gave handlers their grace period; exchanges still running
    (their clients left) get a moment more, then are cut and billed from what passed."""
    if not inflight:
        return
    _, late = await asyncio.wait(set(inflight), timeout=LAST_EXCHANGES_SECONDS)
    for task in late:
        task.cancel()
    if late:
        log.warning("shutdown cut %d upstream exchanges; they are billed from estimates", len(late))
        await asyncio.wait(late)


def create_app(settings: Settings, database_url: str) -> web.Application:
    """The proxy as an aiohttp app. The database must already be migrated."""
    redact_aiohttp_logs()
    ACCESS.disabled = settings.access_log == "off"
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_middleware])
    app[ADMIN_GUARD] = AdminGuard(settings.admin_failures_per_minute)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        catalog = merged_catalog(settings)
        if settings.o200k_models:
            await asyncio.to_thread(o200k_base)  # read once at start, not on a first call
        engine = make_engine(database_url)
        http = make_client_session(settings)
        try:
            await sync_catalog(engine, catalog)
            sinks = settings.export_sinks()
            await register_sinks(engine, {s.name: s.kind for s in sinks})
            mirror = Mirror(engine, database_url, interval=settings.sync_interval)
            await mirror.start()
            spool = Spool(settings.home / "spool")
            spool.open()
            writer = LedgerWriter(engine, spool, batch_size=settings.ledger_batch_size)
            writer.start()
            state = app[STATE] = ProxyState(settings, engine, http, mirror, writer,
                                            ResponseOwners(engine), router_for(settings),
                                            LeaseBook(max_age=settings.reservation_ttl / 3))
            chores = start_chores(state, sinks)
            try:
                yield
            finally:
                for chore in chores:
                    chore.cancel()
                await finish_exchanges(state.inflight)
                await release_leases_now(state)
                await give_back_all(state)
                await writer.close()
                await asyncio.gather(state.refusals.flush(engine), state.unpriced.flush(engine),
                                     return_exceptions=True)
                await flush_access_log()
                await mirror.stop()
        finally:
            await http.close()
            await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    app.router.add_get("/metrics", probes.metrics_endpoint)
    add_gateway_routes(app)
    add_dashboard_routes(app)  # before the admin API's catch-all
    add_admin_routes(app)
    return app
