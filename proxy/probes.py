"""What orchestrators and scrapers ask a replica: `GET /healthz` (alive), `GET /readyz`
(the database answers; the spool's state either way), `GET /metrics` (Prometheus text,
behind the metrics or admin token)."""

import asyncio

from aiohttp import web
from sqlalchemy import text

from proxy.admin.guard import ADMIN_GUARD
from proxy.errors import ApiError
from proxy.gateway.headers import bearer_token, same_secret
from proxy.gateway.state import STATE
from proxy.observability import metrics


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers; either way the spool's state is shown."""
    state = request.app[STATE]
    spool = {"ledger_backlog": state.writer.backlog, "spool_segments_to_replay":
             len(state.writer.spool.segments_needing_replay)}
    try:
        async with asyncio.timeout(2):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "unavailable", "database": "unreachable",
                                  "admission": state.settings.outage_admission, **spool}, status=503)
    return web.json_response({"status": "ready", "database": "ok", **spool})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text, for a scraper holding the metrics token (or the admin token): the
    series name every tenant and its spend."""
    state = request.app[STATE]
    tokens = [t for t in (state.settings.metrics_token, state.settings.admin_token) if t]
    if not tokens:
        raise ApiError(404, "Metrics are off: set BILLING_PROXY_METRICS_TOKEN and scrape with "
                            "`Authorization: Bearer <metrics token>`.", code="unknown_url")
    given = bearer_token(request.headers)
    if not any(same_secret(given, token) for token in tokens):
        request.app[ADMIN_GUARD].failed(request.remote, request.path)
        raise ApiError(401, "/metrics needs `Authorization: Bearer <metrics token>`.", code="invalid_metrics_token")

    def refresh() -> None:
        metrics.LEDGER_BACKLOG.set(state.writer.backlog)
        metrics.SPOOL_DEPTH.set(state.writer.backlog if not state.writer.database_up else 0)
        metrics.DATABASE_UP.set(1 if state.writer.database_up else 0)

    return web.Response(body=metrics.render(refresh),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
