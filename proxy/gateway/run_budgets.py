"""Run budgets, made and read by a team with its own key: `POST /v1/budgets` (an amount, an
expiry, a label) returns an id that calls name in `X-Billing-Budget`; `GET /v1/budgets`,
`GET /v1/budgets/{id}` and `DELETE /v1/budgets/{id}` (close it) show what it spent. A key
sees only the run budgets it made: any other id is the same 404 as an unknown one."""

import json
from datetime import datetime, timezone
from decimal import Decimal

from aiohttp import web

from billing.attribution import RUN_ID
from billing.budgets import BudgetError, run_request, run_view
from billing.db.budgets import close_run, create_run, get_run, list_runs
from billing.exact_json import exact_json
from proxy.errors import ApiError
from proxy.gateway.auth import authenticate
from proxy.gateway.state import STATE

MAX_BODY_BYTES = 16 * 1024


def _json(data: dict, status: int = 200) -> web.Response:
    return web.Response(text=exact_json(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> object:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"The body may be at most {MAX_BODY_BYTES} bytes.", code="request_too_large")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"The body may be at most {MAX_BODY_BYTES} bytes.", code="request_too_large")
    try:  # amounts are read as exact decimals, never floats
        return json.loads(raw, parse_float=Decimal, parse_constant=lambda _: None)
    except (ValueError, RecursionError):
        raise ApiError(400, "The body must be JSON.", code="invalid_json") from None


def _missing(run_id: str) -> ApiError:
    return ApiError(404, f"No run budget with id '{run_id[:80]}' found.", code="budget_not_found", param="budget_id")


async def create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    now = datetime.now(timezone.utc)
    try:
        wanted = run_request(await _body(request), now)
    except BudgetError as error:
        raise ApiError(400, str(error), param=error.param) from None
    run = await create_run(state.engine, grant.tenant_id, grant.key_id, wanted)
    return _json(run_view(run, now), status=200)


async def retrieve(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    run_id = request.match_info["budget_id"]
    run = await get_run(state.engine, grant.tenant_id, grant.key_id, run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        raise _missing(run_id)
    return _json(run_view(run, datetime.now(timezone.utc)))


async def close(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    run_id = request.match_info["budget_id"]
    run = await close_run(state.engine, grant.tenant_id, grant.key_id, run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        raise _missing(run_id)
    return _json(run_view(run, datetime.now(timezone.utc)))


async def listing(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    now = datetime.now(timezone.utc)
    runs = await list_runs(state.engine, grant.tenant_id, grant.key_id)
    return _json({"object": "list", "data": [run_view(r, now) for r in runs]})


def add_run_budget_routes(app: web.Application) -> None:
    app.router.add_post("/v1/budgets", create)
    app.router.add_get("/v1/budgets", listing)
    app.router.add_get("/v1/budgets/{budget_id}", retrieve)
    app.router.add_delete("/v1/budgets/{budget_id}", close)
