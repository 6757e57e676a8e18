"""The admin HTTP API under /admin/: tenants, keys, prices, reports, audit.

One table of operations drives the routes, the request validation and the OpenAPI
document (proxy/admin/openapi.py), so what the document promises is what the API does.
Authenticated by `Authorization: Bearer $BILLING_PROXY_ADMIN_TOKEN`, compared in constant
time; with no token configured every /admin/ path answers 404.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from billing.db.alerts import list_alerts
from billing.db.credits import add_credit, credit_history, credit_standing
from billing.db.audit import list_audit
from billing.db.quota import month_standing
from billing.db.keys import get_key, issue_key, list_keys, revoke_key, rotate_key, update_key
from billing.db.prices import load_pricebook, set_price
from billing.db.reports import monthly_report
from billing.db.exports import export_status
from billing.db.months import add_adjustment
from billing.db.tenants import AlreadyExists, Conflict, NotFound, create_tenant, get_tenant, list_tenants, \
    update_tenant
from billing.pricing import NoStandardPrice, Tier, revised
from billing.report import parse_dimensions, report_csv_text, report_dict
from proxy.admin import models as m
from proxy.errors import ApiError, error_response
from proxy.gateway.headers import bearer_token, same_secret
from proxy.admin.prices_view import price_rows
from proxy.gateway.request_body import json_object
from proxy.gateway.state import STATE

ACTOR = "admin-api"
Handler = Callable[..., Awaitable[BaseModel]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400, 401, 404)
    media_type: str = "application/json"  # text/csv: the handler returns the text itself


# --- handlers: (engine, ids, body, query) -> response model --------------------------------

async def tenants_list(engine, ids, body, query):
    return m.TenantList(data=[m.TenantOut(**t.__dict__) for t in await list_tenants(engine)])


async def tenants_create(engine, ids, body: m.TenantCreate, query):
    tenant = await create_tenant(engine, **body.model_dump(), actor=ACTOR)
    return m.TenantOut(**tenant.__dict__)


async def _with_month(engine, tenant) -> m.TenantOut:
    month = await month_standing(engine, tenant, datetime.now(timezone.utc))
    return m.TenantOut(**tenant.__dict__, month=m.MonthStandingOut(**month.__dict__))


async def tenants_show(engine, ids, body, query):
    return await _with_month(engine, await get_tenant(engine, ids["tenant_id"]))


async def tenants_update(engine, ids, body: m.TenantUpdate, query):
    tenant = await update_tenant(engine, ids["tenant_id"], **body.model_dump(exclude_unset=True), actor=ACTOR)
    return await _with_month(engine, tenant)


async def tenants_suspend(engine, ids, body, query):
    return await _with_month(engine, await update_tenant(engine, ids["tenant_id"], status="suspended", actor=ACTOR))


async def tenants_resume(engine, ids, body, query):
    return await _with_month(engine, await update_tenant(engine, ids["tenant_id"], status="active", actor=ACTOR))


async def _credit(engine, tenant_id: int) -> m.CreditOut:
    standing = await credit_standing(engine, tenant_id)
    return m.CreditOut(tenant=standing.tenant, prepaid=standing.prepaid, credited_usd=standing.credited_usd,
                       spent_usd=standing.spent_usd, reserved_usd=standing.reserved_usd,
                       balance_usd=standing.balance_usd,
                       topups=[m.TopUpOut(**t.__dict__) for t in await credit_history(engine, tenant_id)])


async def credits_show(engine, ids, body, query):
    return await _credit(engine, ids["tenant_id"])


async def credits_add(engine, ids, body: m.CreditAdd, query):
    try:
        await add_credit(engine, ids["tenant_id"], body.amount_usd, body.reason, actor=ACTOR)
    except ValueError as error:
        raise ApiError(400, str(error), param="amount_usd") from None
    return await _credit(engine, ids["tenant_id"])


async def adjust(engine, ids, body: m.AdjustmentIn, query):
    try:
        made = await add_adjustment(engine, ids["tenant_id"], body.amount_usd, body.reason, month=body.month,
                                    actor=ACTOR)
    except ValueError as error:
        raise ApiError(400, str(error), param="amount_usd") from None
    return m.AdjustmentMade(**{**made.__dict__, "event_id": str(made.event_id)})


async def exports_status(engine, ids, body, query):
    return m.ExportSinkList(data=[m.ExportSinkOut(**s.__dict__) for s in await export_status(engine)])


def _issued(issued) -> m.IssuedKeyOut:
    return m.IssuedKeyOut(id=issued.id, key=issued.secret, prefix=issued.display_prefix, tenant=issued.tenant,
                          label=issued.label, expires_at=issued.expires_at, created_at=issued.created_at,
                          old_key_valid_until=issued.old_secret_valid_until)


async def keys_list(engine, ids, body, query: m.KeysQuery):
    return m.KeyList(data=[m.KeyOut(**k.__dict__) for k in await list_keys(engine, query.tenant_id)])


async def keys_issue(engine, ids, body: m.KeyCreate, query):
    fields = body.model_dump()
    return _issued(await issue_key(engine, fields.pop("tenant_id"), **fields, actor=ACTOR))


async def keys_show(engine, ids, body, query):
    return m.KeyOut(**(await get_key(engine, ids["key_id"])).__dict__)


async def keys_update(engine, ids, body: m.KeyUpdate, query):
    return m.KeyOut(**(await update_key(engine, ids["key_id"], **body.model_dump(exclude_unset=True),
                                        actor=ACTOR)).__dict__)


async def keys_revoke(engine, ids, body, query):
    return m.KeyOut(**(await revoke_key(engine, ids["key_id"], actor=ACTOR)).__dict__)


async def keys_rotate(engine, ids, body: m.KeyRotate, query):
    grace = timedelta(seconds=body.grace_seconds if body else 0)
    return _issued(await rotate_key(engine, ids["key_id"], grace=grace, actor=ACTOR))


async def prices_list(engine, ids, body, query: m.PricesQuery):
    async with engine.connect() as conn:
        book = await load_pricebook(conn)
    names = {t.id: t.name for t in await list_tenants(engine)}
    rows = price_rows(book, query.at or datetime.now(timezone.utc), query.history, query.model, names)
    return m.PriceList(data=[m.PriceRow(**row) for row in rows])


async def prices_set(engine, ids, body: m.PriceSet, query):
    if body.tenant_id is not None:
        await get_tenant(engine, body.tenant_id)  # 404 for an unknown tenant
    try:
        top = Tier(input=body.input, output=body.output, cached=body.cached, cache_write=body.cache_write,
                   reasoning=body.reasoning)
        bounded = sorted((Tier(up_to_input_tokens=int(bound), **tier.model_dump()) for bound, tier in body.tiers.items()),
                         key=lambda t: t.up_to_input_tokens)
        effective_from = body.effective_from or datetime.now(timezone.utc)
        async with engine.connect() as conn:
            current = (await load_pricebook(conn)).version_at(body.model, effective_from, body.tenant_id)
        version = revised(current, (*bounded, top), model=body.model, effective_from=effective_from, source=ACTOR,
                          tenant_id=body.tenant_id, service_tier=body.service_tier, tools=body.tools,
                          cache_storage=body.cache_storage)
    except NoStandardPrice as exc:
        raise ApiError(409, str(exc), code="conflict", param="service_tier") from None
    except ValueError as exc:
        raise ApiError(400, str(exc), param="tiers") from None
    version_id = await set_price(engine, version, actor=ACTOR)
    return m.PriceVersionOut(version=version_id, model=version.model, effective_from=version.effective_from)


async def report(engine, ids, body, query: m.ReportQuery):
    result = await monthly_report(engine, query.month, tenant=query.tenant, by=parse_dimensions(query.by))
    return m.ReportOut(**report_dict(result))


async def report_csv(engine, ids, body, query: m.ReportQuery) -> str:
    result = await monthly_report(engine, query.month, tenant=query.tenant, by=parse_dimensions(query.by))
    return report_csv_text(result)


async def alerts(engine, ids, body, query: m.AlertsQuery):
    return m.AlertList(data=[m.AlertOut(**a.__dict__) for a in await list_alerts(engine, query.tenant, query.limit)])


async def audit(engine, ids, body, query: m.AuditQuery):
    records = await list_audit(engine, target=query.target, limit=query.limit)
    return m.AuditList(data=[m.AuditOut(**r.__dict__) for r in records])


OPERATIONS = (
    Operation("GET", "/admin/tenants", tenants_list, "List tenants", m.TenantList, errors=(401,)),
    Operation("POST", "/admin/tenants", tenants_create, "Create a tenant", m.TenantOut, 201, body=m.TenantCreate,
              errors=(400, 401, 409)),
    Operation("GET", "/admin/tenants/{tenant_id}", tenants_show, "Show a tenant", m.TenantOut),
    Operation("PATCH", "/admin/tenants/{tenant_id}", tenants_update, "Update a tenant (name, budgets, status)",
              m.TenantOut, body=m.TenantUpdate, errors=(400, 401, 404, 409)),
    Operation("POST", "/admin/tenants/{tenant_id}/suspend", tenants_suspend, "Suspend a tenant", m.TenantOut),
    Operation("POST", "/admin/tenants/{tenant_id}/resume", tenants_resume, "Resume a tenant", m.TenantOut),
    Operation("GET", "/admin/tenants/{tenant_id}/credits", credits_show, "A tenant's credit balance and top-ups",
              m.CreditOut),
    Operation("POST", "/admin/tenants/{tenant_id}/credits", credits_add, "Top up a tenant's credit (audited)",
              m.CreditOut, 201, body=m.CreditAdd),
    Operation("POST", "/admin/tenants/{tenant_id}/adjustments", adjust,
              "Credit (negative) or charge a tenant's month, as an entry of its own (audited)", m.AdjustmentMade,
              201, body=m.AdjustmentIn, errors=(400, 401, 404, 409)),
    Operation("GET", "/admin/exports", exports_status, "Delivery to billing systems: per sink, pending events, "
              "lag, held tenants, last error", m.ExportSinkList),
    Operation("GET", "/admin/keys", keys_list, "List keys (never their secrets)", m.KeyList, query=m.KeysQuery),
    Operation("POST", "/admin/keys", keys_issue, "Issue a key; the secret is in this response only",
              m.IssuedKeyOut, 201, body=m.KeyCreate),
    Operation("GET", "/admin/keys/{key_id}", keys_show, "Show a key", m.KeyOut),
    Operation("PATCH", "/admin/keys/{key_id}", keys_update, "Update a key (label, expiry, allow-list, budget)",
              m.KeyOut, body=m.KeyUpdate),
    Operation("POST", "/admin/keys/{key_id}/revoke", keys_revoke, "Revoke a key", m.KeyOut),
    Operation("POST", "/admin/keys/{key_id}/rotate", keys_rotate,
              "Rotate a key's secret; the old one works for grace_seconds", m.IssuedKeyOut, body=m.KeyRotate,
              errors=(400, 401, 404, 409)),
    Operation("GET", "/admin/prices", prices_list, "Prices in force (or at a moment, or every version)",
              m.PriceList, query=m.PricesQuery, errors=(400, 401)),
    Operation("POST", "/admin/prices", prices_set, "Add a price version", m.PriceVersionOut, 201, body=m.PriceSet,
              errors=(400, 401, 404, 409)),
    Operation("GET", "/admin/reports", report, "Monthly cost report", m.ReportOut, query=m.ReportQuery,
              errors=(400, 401)),
    Operation("GET", "/admin/reports.csv", report_csv, "Monthly cost report as CSV (one header row, exact decimals)",
              m.ReportOut, query=m.ReportQuery, errors=(400, 401), media_type="text/csv"),
    Operation("GET", "/admin/alerts", alerts, "Threshold alerts and their delivery, newest first", m.AlertList,
              query=m.AlertsQuery, errors=(400, 401)),
    Operation("GET", "/admin/audit", audit, "The audit log, newest first", m.AuditList, query=m.AuditQuery,
              errors=(400, 401)),
)


# --- plumbing -------------------------------------------------------------------------------

def _check_token(request: web.Request) -> None:
    state = request.app[STATE]
    expected = state.settings.admin_token
    if not expected:
        raise ApiError(404, "Unknown request URL.", code="unknown_url")
    state.admin_guard.check(request.remote)
    if not same_secret(bearer_token(request.headers), expected):
        state.admin_guard.failed(request.remote, request.path)
        raise ApiError(401, "The admin API needs `Authorization: Bearer <admin token>`.", code="invalid_admin_token")


def _validation_error(error: ValidationError, where: str) -> ApiError:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return ApiError(400, f"Invalid {where}{' field ' + repr(field) if field else ''}: {first['msg']}.", param=field)


def _ids(request: web.Request) -> dict[str, int]:
    ids = {}
    for name, text in request.match_info.items():
        value = int(text) if text.isascii() and text.isdigit() and len(text) < 20 else 0
        if not 1 <= value <= m.MAX_ID:
            raise ApiError(404, f"No such {name.removesuffix('_id')}.", code="not_found")
        ids[name] = value
    return ids


async def _body(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        return None
    raw = await request.read()
    if not raw.strip() and not any(f.is_required() for f in model.model_fields.values()):
        return model()
    data = json_object(raw)
    try:
        # JSON Schema counts 1.0 as an integer; strict pydantic would not.
        return model.model_validate_json(orjson.dumps(_integral_floats_as_ints(data)))
    except ValidationError as error:
        raise _validation_error(error, "body") from None


def _integral_floats_as_ints(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    return value


def _query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        return None
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise _validation_error(error, "query") from None


def _endpoint(operation: Operation):
    async def handle(request: web.Request) -> web.Response:
        _check_token(request)
        ids = _ids(request)
        body = await _body(request, operation.body)
        query = _query(request, operation.query)
        try:
            result = await operation.handler(request.app[STATE].engine, ids, body, query)
        except NotFound as exc:
            raise ApiError(404, str(exc), code="not_found") from None
        except (AlreadyExists, Conflict) as exc:
            raise ApiError(409, str(exc), code="conflict") from None
        if isinstance(result, str):
            return web.Response(status=operation.status, text=result, content_type=operation.media_type)
        return web.Response(status=operation.status, body=result.model_dump_json(), content_type="application/json")

    return handle


async def openapi_document(request: web.Request) -> web.Response:
    from proxy.admin.openapi import build_document

    _check_token(request)
    return web.json_response(build_document(OPERATIONS), dumps=lambda o: orjson.dumps(o).decode())


_TEMPLATES = [(re.compile("^" + re.sub(r"{\w+}", "[^/]+", op.path) + "$"), op.method) for op in OPERATIONS]


async def admin_not_found(request: web.Request) -> web.Response:
    """Unknown admin paths: 404; a known path with another method: 405 with Allow."""
    _check_token(request)
    allowed = sorted({method for pattern, method in _TEMPLATES if pattern.match(request.path)})
    if allowed:
        response = error_response(ApiError(405, f"Use {', '.join(allowed)} on this URL.", code="method_not_allowed"))
        response.headers["Allow"] = ", ".join(allowed)
        return response
    raise ApiError(404, "Unknown admin URL.", code="unknown_url")


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/openapi.json", openapi_document)
    for operation in OPERATIONS:
        app.router.add_route(operation.method, operation.path, _endpoint(operation))
    app.router.add_route("*", "/admin/{tail:.*}", admin_not_found)

