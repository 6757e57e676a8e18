"""The aiohttp application factory."""

import asyncio
import logging
from typing import AsyncIterator

from aiohttp import web

from billing.catalog import load_catalog, shipped_catalog_path, Catalog
from billing.db.engine import make_engine
from billing.db.prices import sync_catalog
from proxy.gateway import calls as handlers, passthrough
from proxy.gateway.background import poll_due
from proxy.gateway.models_list import list_models, retrieve_model
from billing.db.quota import expire
from proxy.admin.api import add_admin_routes
from proxy.durability.alerts import deliver_due_alerts
from billing.db.exports import prune_delivered, register_sinks
from proxy.durability.exports import deliver_exports
from proxy.gateway.self_service import add_self_service_routes
from proxy.admin.dashboard import add_dashboard_routes
from billing.quota_lease import LeaseBook
from proxy.gateway.admission import release_idle_leases, release_leases_now
from proxy.gateway.limits import SLOT_TTL_SECONDS, SWEEP_SECONDS, give_back_all, give_back_idle, keep_slots
from proxy.chores import every
from proxy.gateway.refusals import FLUSH_SECONDS as REFUSALS_FLUSH_SECONDS
from proxy.config.routing import DEFAULT, Router, Upstream
from proxy.gateway.sessions import ResponseOwners
from proxy.observability.access_log import ACCESS, flush_access_log
from proxy.errors import error_middleware
from proxy.durability.ledger_writer import LedgerWriter
from proxy.observability.logs import redact_aiohttp_logs
from proxy.gateway.mirror import Mirror
from proxy.config.settings import Settings
from proxy.durability.spool import Spool
from proxy.gateway.state import STATE, ProxyState
from proxy.gateway.upstream import make_client_session

log = logging.getLogger(__name__)

ALERT_POLL_SECONDS = 1.0
EXPORT_POLL_SECONDS = 1.0
LEASE_SWEEP_SECONDS = 5.0
ACCESS_LOG_FLUSH_SECONDS = 0.2  # access lines are written in batches: at most this late
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
                       admin_api_key=settings.upstream_admin_key)
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

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        catalog = merged_catalog(settings)
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
            chores = [
                asyncio.create_task(every(30, lambda: expire(engine), "reservation expiry")),
                asyncio.create_task(every(LEASE_SWEEP_SECONDS, lambda: release_idle_leases(state),
                                          "lease release")),
                asyncio.create_task(every(SWEEP_SECONDS, lambda: give_back_idle(state), "rate-limit give-back")),
                asyncio.create_task(every(SLOT_TTL_SECONDS / 3, lambda: keep_slots(state), "concurrency renewal")),
                asyncio.create_task(every(ALERT_POLL_SECONDS, lambda: deliver_due_alerts(
                    engine, http, settings.alert_webhook_url), "alert delivery")),
                asyncio.create_task(every(min(1.0, settings.background_poll_seconds), lambda: poll_due(state),
                                          "background response polling")),
                asyncio.create_task(every(EXPORT_POLL_SECONDS, lambda: deliver_exports(engine, http, sinks),
                                          "export delivery")),
                asyncio.create_task(every(3600, lambda: prune_delivered(engine), "export pruning")),
                asyncio.create_task(every(ACCESS_LOG_FLUSH_SECONDS, flush_access_log, "access log flush")),
                asyncio.create_task(every(REFUSALS_FLUSH_SECONDS, lambda: state.refusals.flush(engine),
                                          "refusal counts")),
            ]
            try:
                yield
            finally:
                for chore in chores:
                    chore.cancel()
                await finish_exchanges(state.inflight)
                await release_leases_now(state)
                await give_back_all(state)
                await writer.close()
                await asyncio.gather(state.refusals.flush(engine), return_exceptions=True)
                await flush_access_log()
                await mirror.stop()
        finally:
            await http.close()
            await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics_endpoint)
    # Billed calls.
    app.router.add_post("/v1/responses", handlers.create_response)
    app.router.add_get("/v1/responses", passthrough.refuse_websocket)
    app.router.add_post("/v1/chat/completions", handlers.create_chat_completion)
    app.router.add_post("/v1/embeddings", handlers.create_embedding)
    app.router.add_post("/v1/responses/compact", handlers.compact_response)
    # Relayed for the owner, never billed (a background response's end settles its bill).
    app.router.add_post("/v1/responses/input_tokens", passthrough.count_input_tokens)
    app.router.add_get("/v1/responses/{response_id}", passthrough.owned_response)
    app.router.add_delete("/v1/responses/{response_id}", passthrough.owned_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", passthrough.owned_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", passthrough.owned_response)
    app.router.add_post("/v1/conversations", passthrough.create_conversation)
    for path in ("/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/items",
                 "/v1/conversations/{conversation_id}/items/{item_id}"):
        for method in ("GET", "POST", "DELETE"):
            app.router.add_route(method, path, passthrough.owned_conversation)
    # Answered here.
    app.router.add_get("/v1/models", list_models)
    add_self_service_routes(app)
    app.router.add_get("/v1/models/{model}", retrieve_model)
    add_dashboard_routes(app)  # before the admin API's catch-all
    add_admin_routes(app)
    return app
