"""The admin API's operations, one table: each with its method and path, the handler that
does it, and the models of its body, query and response. The routes, the request
validation and the OpenAPI document are all made from this table (`proxy/admin/api.py`,
`proxy/admin/openapi.py`), so what the document promises is what the API does."""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from pydantic import BaseModel

from billing.attribution import AttributionRules, kept_user
from billing.budgets import Subject
from billing.db.alert_destinations import get_destinations, set_destinations
from billing.db.alerts import list_alerts
from billing.db.budgets import list_budgets, list_runs, remove_budget, set_budget
from billing.db.credits import add_credit, credit_history, credit_standing
from billing.db.audit import list_audit
from billing.db.quota import month_standing
from billing.db.keys import get_key, issue_key, list_keys, revoke_key, rotate_key, update_key
from billing.db.prices import load_pricebook, set_price
from billing.db.reports import monthly_report
from billing.db.exports import export_status
from billing.db.months import add_adjustment
from billing.db.tenants import create_tenant, get_tenant, list_tenants, update_tenant
from billing.db.unpriced import unpriced_models
from billing.model_labels import OTHER
from billing.pricing import NoStandardPrice, Tier, revised
from billing.report import parse_month, report_csv_text, report_dict
from billing.report_dimensions import parse_dimensions
from proxy.admin.models import accounts, finance
from proxy.admin.prices_view import price_rows
from proxy.errors import ApiError

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
    attribution: bool = False  # the handler is given how end users are kept (`rules=`)


# --- handlers: (engine, ids, body, query) -> response model --------------------------------

async def tenants_list(engine, ids, body, query):
    return accounts.TenantList(data=[accounts.TenantOut(**t.__dict__) for t in await list_tenants(engine)])


async def tenants_create(engine, ids, body: accounts.TenantCreate, query):
    tenant = await create_tenant(engine, **body.model_dump(), actor=ACTOR)
    return accounts.TenantOut(**tenant.__dict__)


async def _with_month(engine, tenant) -> accounts.TenantOut:
    month = await month_standing(engine, tenant, datetime.now(timezone.utc))
    return accounts.TenantOut(**tenant.__dict__, month=accounts.MonthStandingOut(**month.__dict__))


async def tenants_show(engine, ids, body, query):
    return await _with_month(engine, await get_tenant(engine, ids["tenant_id"]))


async def tenants_update(engine, ids, body: accounts.TenantUpdate, query):
    tenant = await update_tenant(engine, ids["tenant_id"], **body.model_dump(exclude_unset=True), actor=ACTOR)
    return await _with_month(engine, tenant)


async def tenants_suspend(engine, ids, body, query):
    return await _with_month(engine, await update_tenant(engine, ids["tenant_id"], status="suspended", actor=ACTOR))


async def tenants_resume(engine, ids, body, query):
    return await _with_month(engine, await update_tenant(engine, ids["tenant_id"], status="active", actor=ACTOR))


async def _credit(engine, tenant_id: int) -> accounts.CreditOut:
    standing = await credit_standing(engine, tenant_id)
    return accounts.CreditOut(tenant=standing.tenant, prepaid=standing.prepaid, credited_usd=standing.credited_usd,
                       spent_usd=standing.spent_usd, reserved_usd=standing.reserved_usd,
                       balance_usd=standing.balance_usd,
                       topups=[accounts.TopUpOut(**t.__dict__) for t in await credit_history(engine, tenant_id)])


async def credits_show(engine, ids, body, query):
    return await _credit(engine, ids["tenant_id"])


async def credits_add(engine, ids, body: accounts.CreditAdd, query):
    try:
        await add_credit(engine, ids["tenant_id"], body.amount_usd, body.reason, actor=ACTOR)
    except ValueError as error:
        raise ApiError(400, str(error), param="amount_usd") from None
    return await _credit(engine, ids["tenant_id"])


async def adjust(engine, ids, body: accounts.AdjustmentIn, query):
    try:
        made = await add_adjustment(engine, ids["tenant_id"], body.amount_usd, body.reason, month=body.month,
                                    actor=ACTOR)
    except ValueError as error:
        raise ApiError(400, str(error), param="amount_usd") from None
    return accounts.AdjustmentMade(**{**made.__dict__, "event_id": str(made.event_id)})


async def exports_status(engine, ids, body, query):
    return accounts.ExportSinkList(data=[accounts.ExportSinkOut(**s.__dict__) for s in await export_status(engine)])


def _issued(issued) -> accounts.IssuedKeyOut:
    return accounts.IssuedKeyOut(id=issued.id, key=issued.secret, prefix=issued.display_prefix, tenant=issued.tenant,
                          label=issued.label, expires_at=issued.expires_at, created_at=issued.created_at,
                          old_key_valid_until=issued.old_secret_valid_until)


async def keys_list(engine, ids, body, query: accounts.KeysQuery):
    return accounts.KeyList(data=[accounts.KeyOut(**k.__dict__) for k in await list_keys(engine, query.tenant_id)])


async def keys_issue(engine, ids, body: accounts.KeyCreate, query):
    fields = body.model_dump()
    return _issued(await issue_key(engine, fields.pop("tenant_id"), **fields, actor=ACTOR))


async def keys_show(engine, ids, body, query):
    return accounts.KeyOut(**(await get_key(engine, ids["key_id"])).__dict__)


async def keys_update(engine, ids, body: accounts.KeyUpdate, query):
    return accounts.KeyOut(**(await update_key(engine, ids["key_id"], **body.model_dump(exclude_unset=True),
                                        actor=ACTOR)).__dict__)


async def keys_revoke(engine, ids, body, query):
    return accounts.KeyOut(**(await revoke_key(engine, ids["key_id"], actor=ACTOR)).__dict__)


async def keys_rotate(engine, ids, body: accounts.KeyRotate, query):
    grace = timedelta(seconds=body.grace_seconds if body else 0)
    return _issued(await rotate_key(engine, ids["key_id"], grace=grace, actor=ACTOR))


async def prices_list(engine, ids, body, query: finance.PricesQuery):
    async with engine.connect() as conn:
        book = await load_pricebook(conn)
    names = {t.id: t.name for t in await list_tenants(engine)}
    rows = price_rows(book, query.at or datetime.now(timezone.utc), query.history, query.model, names)
    return finance.PriceList(data=[finance.PriceRow(**row) for row in rows])


async def prices_set(engine, ids, body: finance.PriceSet, query):
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
    return finance.PriceVersionOut(version=version_id, model=version.model, effective_from=version.effective_from)


async def unpriced(engine, ids, body, query: finance.UnpricedQuery):
    now = datetime.now(timezone.utc)
    month = query.month or now.strftime("%Y-%m")
    start, end = parse_month(month)
    models = await unpriced_models(engine, start.date(), end.date(), query.tenant)
    async with engine.connect() as conn:
        book = await load_pricebook(conn)
    return finance.UnpricedModelList(month=month, data=[finance.UnpricedModelOut(
        model=m.model, calls=m.calls, tenants=list(m.tenants), first_seen=m.first_seen, last_seen=m.last_seen,
        priced_now=m.model != OTHER and book.resolve(m.model, now) is not None,
        nearest_priced=[] if m.model == OTHER else book.nearest_priced(m.model)) for m in models])


async def report(engine, ids, body, query: finance.ReportQuery):
    result = await monthly_report(engine, query.month, tenant=query.tenant, by=parse_dimensions(query.by))
    return finance.ReportOut(**report_dict(result))


async def report_csv(engine, ids, body, query: finance.ReportQuery) -> str:
    result = await monthly_report(engine, query.month, tenant=query.tenant, by=parse_dimensions(query.by))
    return report_csv_text(result)


async def alerts(engine, ids, body, query: finance.AlertsQuery):
    return finance.AlertList(data=[finance.AlertOut(**a.__dict__) for a in await list_alerts(engine, query.tenant, query.limit)])


async def destinations_show(engine, ids, body, query):
    return accounts.AlertDestinationsOut(**(await get_destinations(engine, ids["tenant_id"])).__dict__)


async def destinations_set(engine, ids, body: accounts.AlertDestinationsIn, query):
    changes = body.model_dump(exclude_unset=True)
    return accounts.AlertDestinationsOut(**(await set_destinations(engine, ids["tenant_id"], **changes,
                                                                   actor=ACTOR)).__dict__)


async def audit(engine, ids, body, query: finance.AuditQuery):
    records = await list_audit(engine, target=query.target, limit=query.limit)
    return finance.AuditList(data=[finance.AuditOut(**r.__dict__) for r in records])


async def budgets_list(engine, ids, body, query):
    return accounts.BudgetList(data=[accounts.BudgetOut(**b.__dict__) for b in await list_budgets(engine, ids["tenant_id"])])


def _user(body, rules: AttributionRules) -> Subject:
    return Subject("user", None if body.user is None else kept_user(body.user, rules))


async def _set(engine, tenant_id: int, subject: Subject, body) -> accounts.BudgetOut:
    return accounts.BudgetOut(**(await set_budget(engine, tenant_id, subject, body.per, body.amount_usd,
                                                  actor=ACTOR)).__dict__)


async def _remove(engine, ids, subject: Subject, per: str) -> accounts.BudgetList:
    # Idempotent, as a DELETE is: removing a budget that is not there leaves the same list (a retry
    # after a lost reply must not fail); an unknown tenant is still a 404.
    await remove_budget(engine, ids["tenant_id"], subject, per, actor=ACTOR)
    return await budgets_list(engine, ids, None, None)


async def user_budget_set(engine, ids, body: accounts.UserBudgetIn, query, rules: AttributionRules):
    return await _set(engine, ids["tenant_id"], _user(body, rules), body)


async def user_budget_remove(engine, ids, body: accounts.UserBudgetKey, query, rules: AttributionRules):
    return await _remove(engine, ids, _user(body, rules), body.per)


async def tag_budget_set(engine, ids, body: accounts.TagBudgetIn, query):
    return await _set(engine, ids["tenant_id"], Subject("tag", body.tag), body)


async def tag_budget_remove(engine, ids, body: accounts.TagBudgetKey, query):
    return await _remove(engine, ids, Subject("tag", body.tag), body.per)


async def run_budgets_list(engine, ids, body, query):
    await get_tenant(engine, ids["tenant_id"])  # 404 for an unknown tenant
    now = datetime.now(timezone.utc)
    return accounts.RunBudgetList(data=[accounts.RunBudgetOut(**{**r.__dict__, "status": r.status(now)})
                                        for r in await list_runs(engine, ids["tenant_id"])])


OPERATIONS = (
    Operation("GET", "/admin/tenants/{tenant_id}/budgets", budgets_list,
              "A tenant's budgets for its end users and tag values, with this period's spend", accounts.BudgetList),
    Operation("PUT", "/admin/tenants/{tenant_id}/budgets/users", user_budget_set,
              "Set the budget of every end user (no `user`) or of one, per day or month (audited)",
              accounts.BudgetOut, body=accounts.UserBudgetIn, attribution=True),
    Operation("POST", "/admin/tenants/{tenant_id}/budgets/users/remove", user_budget_remove,
              "Remove an end-user budget, if set (audited); answers the budgets that remain", accounts.BudgetList, body=accounts.UserBudgetKey,
              attribution=True),
    Operation("PUT", "/admin/tenants/{tenant_id}/budgets/tags", tag_budget_set,
              "Set the budget of a tag value (`project=search`), per day or month (audited)", accounts.BudgetOut,
              body=accounts.TagBudgetIn),
    Operation("POST", "/admin/tenants/{tenant_id}/budgets/tags/remove", tag_budget_remove,
              "Remove a tag value's budget, if set (audited); answers the budgets that remain", accounts.BudgetList, body=accounts.TagBudgetKey),
    Operation("GET", "/admin/tenants/{tenant_id}/run-budgets", run_budgets_list,
              "The run budgets a tenant's keys made, newest first", accounts.RunBudgetList),
    Operation("GET", "/admin/tenants", tenants_list, "List tenants", accounts.TenantList, errors=(401,)),
    Operation("POST", "/admin/tenants", tenants_create, "Create a tenant", accounts.TenantOut, 201, body=accounts.TenantCreate,
              errors=(400, 401, 409)),
    Operation("GET", "/admin/tenants/{tenant_id}", tenants_show, "Show a tenant", accounts.TenantOut),
    Operation("PATCH", "/admin/tenants/{tenant_id}", tenants_update, "Update a tenant (name, budgets, status)",
              accounts.TenantOut, body=accounts.TenantUpdate, errors=(400, 401, 404, 409)),
    Operation("POST", "/admin/tenants/{tenant_id}/suspend", tenants_suspend, "Suspend a tenant", accounts.TenantOut),
    Operation("POST", "/admin/tenants/{tenant_id}/resume", tenants_resume, "Resume a tenant", accounts.TenantOut),
    Operation("GET", "/admin/tenants/{tenant_id}/credits", credits_show, "A tenant's credit balance and top-ups",
              accounts.CreditOut),
    Operation("POST", "/admin/tenants/{tenant_id}/credits", credits_add, "Top up a tenant's credit (audited)",
              accounts.CreditOut, 201, body=accounts.CreditAdd),
    Operation("POST", "/admin/tenants/{tenant_id}/adjustments", adjust,
              "Credit (negative) or charge a tenant's month, as an entry of its own (audited)", accounts.AdjustmentMade,
              201, body=accounts.AdjustmentIn, errors=(400, 401, 404, 409)),
    Operation("GET", "/admin/exports", exports_status, "Delivery to billing systems: per sink, pending events, "
              "lag, held tenants, last error", accounts.ExportSinkList),
    Operation("GET", "/admin/keys", keys_list, "List keys (never their secrets)", accounts.KeyList, query=accounts.KeysQuery),
    Operation("POST", "/admin/keys", keys_issue, "Issue a key; the secret is in this response only",
              accounts.IssuedKeyOut, 201, body=accounts.KeyCreate),
    Operation("GET", "/admin/keys/{key_id}", keys_show, "Show a key", accounts.KeyOut),
    Operation("PATCH", "/admin/keys/{key_id}", keys_update, "Update a key (label, expiry, allow-list, budget)",
              accounts.KeyOut, body=accounts.KeyUpdate),
    Operation("POST", "/admin/keys/{key_id}/revoke", keys_revoke, "Revoke a key", accounts.KeyOut),
    Operation("POST", "/admin/keys/{key_id}/rotate", keys_rotate,
              "Rotate a key's secret; the old one works for grace_seconds", accounts.IssuedKeyOut, body=accounts.KeyRotate,
              errors=(400, 401, 404, 409)),
    Operation("GET", "/admin/prices", prices_list, "Prices in force (or at a moment, or every version)",
              finance.PriceList, query=finance.PricesQuery, errors=(400, 401)),
    Operation("POST", "/admin/prices", prices_set, "Add a price version", finance.PriceVersionOut, 201, body=finance.PriceSet,
              errors=(400, 401, 404, 409)),
    Operation("GET", "/admin/unpriced-models", unpriced, "Models refused as unpriced in a month (400 "
              "model_not_priced): calls, tenants, first and last seen, the nearest priced names",
              finance.UnpricedModelList, query=finance.UnpricedQuery, errors=(400, 401)),
    Operation("GET", "/admin/reports", report, "Monthly cost report", finance.ReportOut, query=finance.ReportQuery,
              errors=(400, 401)),
    Operation("GET", "/admin/reports.csv", report_csv, "Monthly cost report as CSV (one header row, exact decimals)",
              finance.ReportOut, query=finance.ReportQuery, errors=(400, 401), media_type="text/csv"),
    Operation("GET", "/admin/alerts", alerts, "Threshold alerts and their delivery, newest first", finance.AlertList,
              query=finance.AlertsQuery, errors=(400, 401)),
    Operation("GET", "/admin/tenants/{tenant_id}/alert-destinations", destinations_show,
              "A tenant's own alert destinations (Slack hook shown by host, email recipients)",
              accounts.AlertDestinationsOut),
    Operation("PUT", "/admin/tenants/{tenant_id}/alert-destinations", destinations_set,
              "Set a tenant's own Slack hook and email recipients; null or [] clears (audited)",
              accounts.AlertDestinationsOut, body=accounts.AlertDestinationsIn),
    Operation("GET", "/admin/audit", audit, "The audit log, newest first", finance.AuditList, query=finance.AuditQuery,
              errors=(400, 401)),
)
