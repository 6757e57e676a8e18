"""A team's view of its own spend, with the key it calls with: the legacy OpenAI billing
endpoints chat clients read a balance from, and the month in the proxy's own shape
(`billing/self_service.py` says what each holds). A key sees its tenant and itself, never
another tenant: every figure is read for the tenant the key belongs to."""

from datetime import datetime, timezone

from aiohttp import web

from billing.db.credits import EPOCH
from billing.db.quota import counters
from billing.db.self_service import daily_charges, month_spent
from billing.keys import DISPLAY_PREFIX_LENGTH
from billing.quota import next_period_start, period_start
from billing.self_service import BadRange, Spent, month_summary, subscription, usage, usage_range
from proxy.errors import ApiError
from billing.exact_json import exact_json
from proxy.gateway.auth import authenticate
from proxy.gateway.headers import bearer_token
from proxy.gateway.state import STATE


def _json(data: dict) -> web.Response:
    return web.Response(text=exact_json(data), content_type="application/json")


async def billing_subscription(request: web.Request) -> web.Response:
    """`GET /v1/dashboard/billing/subscription`: the limit a balance is shown against."""
    return _json(subscription(await authenticate(request, request.app[STATE])))


async def billing_usage(request: web.Request) -> web.Response:
    """`GET /v1/dashboard/billing/usage?start_date=&end_date=`: spend per day and model, in
    cents, of the key when it has a budget of its own, else of its tenant."""
    state = request.app[STATE]
    grant = await authenticate(request, state)
    try:
        first, last = usage_range(request.query.get("start_date"), request.query.get("end_date"),
                                  datetime.now(timezone.utc).date())
    except BadRange as bad:
        raise ApiError(400, str(bad), type="invalid_request_error", code="invalid_request_error",
                       param="start_date") from None
    key_id = grant.key_id if grant.monthly_budget_usd is not None else None
    return _json(usage(await daily_charges(state.engine, grant.tenant_id, key_id, first, last)))


async def month_usage(request: web.Request) -> web.Response:
    """`GET /v1/usage`: this month (in the tenant's zone) for the key and its tenant."""
    state = request.app[STATE]
    grant = await authenticate(request, state)
    period = period_start(datetime.now(timezone.utc), grant.time_zone)
    following = next_period_start(period, grant.time_zone)
    tenant = await month_spent(state.engine, "tenant", grant.tenant_id, period, following)
    key = await month_spent(state.engine, "key", grant.key_id, period, following)
    credit = None
    if grant.prepaid:
        counted = await counters(state.engine, "tenant", grant.tenant_id, EPOCH, "credit")
        credit = Spent(counted.spent_usd, counted.reserved_usd, counted.spent_tokens, 0)
    prefix = (bearer_token(request.headers) or "")[:DISPLAY_PREFIX_LENGTH]
    return _json(month_summary(grant, prefix, period, following, tenant, key, credit))


def add_self_service_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):  # clients put the /v1 in their base URL, or not
        app.router.add_get(prefix + "/dashboard/billing/subscription", billing_subscription)
        app.router.add_get(prefix + "/dashboard/billing/usage", billing_usage)
    app.router.add_get("/v1/usage", month_usage)
