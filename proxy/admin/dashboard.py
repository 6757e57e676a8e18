"""GET /admin/dashboard: the month's spend for finance, server-rendered, no JavaScript.

Opened with the admin token (as a bearer header, or once through the sign-in form, which
sets a signed session cookie; the cookie holds an expiry and its HMAC under the admin
token, never the token itself)."""

import hashlib
import hmac
import re
import time
from datetime import datetime, timezone

from aiohttp import web

from billing.db.credits import credit_history, credit_standing
from billing.db.limit_use import limit_uses
from billing.db.refusals import refusals_by_tenant
from billing.db.reports import monthly_report, tag_value_totals
from billing.db.tenants import get_tenant, list_tenants
from billing.db.unpriced import unpriced_models
from billing.operator_text import MAX_NAME_LENGTH, TextError, line_text
from billing.report import parse_month, previous_month
from billing.statement import parse_group, statement_csv, statement_from
from proxy.admin.attribution_section import tags_section, users_section
from proxy.admin.markup import issued_today
from proxy.admin.models.fields import MONTH_PATTERN
from proxy.admin.pages import dashboard_page, login_page, statement_page, tenant_page
from proxy.admin.sections import credit_section, limits_section
from proxy.admin.unpriced_section import unpriced_section
from proxy.errors import ApiError
from proxy.gateway.headers import bearer_token, same_secret
from proxy.admin.guard import ADMIN_GUARD
from proxy.gateway.state import STATE

COOKIE = "bp_admin_session"
SESSION_SECONDS = 12 * 3600


def _signature(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def _token(request: web.Request) -> str:
    token = request.app[STATE].settings.admin_token
    if not token:
        raise ApiError(404, "Unknown request URL.", code="unknown_url")
    return token


def _signed_in(request: web.Request) -> bool:
    """The right bearer token or a valid session cookie; a wrong bearer token is counted
    (and, past the guard's limit, refused with 429) only when no valid cookie comes with it."""
    token = _token(request)
    given = bearer_token(request.headers)
    if given is not None and same_secret(given, token):
        return True
    expires, _, signature = request.cookies.get(COOKIE, "").partition(".")
    # an expiry is a Unix time: ASCII digits, far fewer than int() refuses (4,300)
    if (expires.isascii() and expires.isdigit() and len(expires) <= 12 and int(expires) > time.time()
            and same_secret(signature, _signature(token, int(expires)))):
        return True
    if given is not None:
        request.app[ADMIN_GUARD].failed(request.remote, request.path)
    return False


def _month(request: web.Request) -> str:
    """`?month=YYYY-MM` (default: this month), within the years the admin API's reports
    take (its previous month, shown beside it, must be a month too)."""
    month = request.query.get("month") or datetime.now(timezone.utc).strftime("%Y-%m")
    if not re.fullmatch(MONTH_PATTERN, month):
        shown = month if len(month) <= 20 else month[:20] + "..."
        raise ApiError(400, f"month must be YYYY-MM between 1970-01 and 9899-12, not {shown!r}", param="month")
    return month


def _choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """`?name=` one of `choices` (absent or empty: the first)."""
    value = request.query.get(name) or choices[0]
    if value not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}", param=name)
    return value


async def _tenant_name(request: web.Request) -> str:
    """`?tenant=`: the name of an existing tenant (400 if it could be no tenant's, 404 if none has it)."""
    name = request.query.get("tenant", "")
    try:
        line_text(name, "tenant", MAX_NAME_LENGTH)
        if not name:
            raise TextError("tenant is required: the name of the tenant to show")
    except TextError as exc:
        raise ApiError(400, str(exc), param="tenant") from None
    try:
        await get_tenant(request.app[STATE].engine, name)
    except LookupError:
        raise ApiError(404, f"No tenant named {name!r}.", code="tenant_not_found", param="tenant") from None
    return name


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


async def _unpriced(request: web.Request, start: datetime, end: datetime, now: datetime,
                    tenant: str | None = None) -> str:
    """The models refused as unpriced in the month, with the nearest priced names of each."""
    state = request.app[STATE]
    models = await unpriced_models(state.engine, start.date(), end.date(), tenant)
    book = state.mirror.pricebook
    return unpriced_section(models, {m.model: book.nearest_priced(m.model) for m in models},
                            {m.model for m in models if book.resolve(m.model, now) is not None})


async def dashboard(request: web.Request) -> web.Response:
    if not _signed_in(request):
        raise web.HTTPFound("/admin/login")
    month, engine = _month(request), request.app[STATE].engine
    stack = _choice(request, "stack", ("tenant", "model"))
    reports = [await monthly_report(engine, month, by=by) for by in ((), ("tenant",), ("day", stack),
                                                                     ("key", "tenant"), ("model",))]
    prepaid = [t for t in await list_tenants(engine) if t.prepaid]
    credits = [(await credit_standing(engine, t.id), await credit_history(engine, t.id, limit=5)) for t in prepaid]
    previous = await monthly_report(engine, previous_month(month), by=("tenant",))
    previous_models = await monthly_report(engine, previous_month(month), by=("model",))
    start, end = parse_month(month)
    now = datetime.now(timezone.utc)
    uses = await limit_uses(engine, start.date(), current=start <= now < end)
    refused = await refusals_by_tenant(engine, start.date(), end.date())
    limits = limits_section(uses, now, reports[1], refused)
    unpriced = await _unpriced(request, start, end, now)
    return _html(dashboard_page(month, *reports, credits=credit_section(credits), stack=stack, previous=previous,
                                limits=limits, previous_models=previous_models, unpriced=unpriced))


async def tenant(request: web.Request) -> web.Response:
    if not _signed_in(request):
        raise web.HTTPFound("/admin/login")
    month, engine, name = _month(request), request.app[STATE].engine, await _tenant_name(request)
    reports = [await monthly_report(engine, month, tenant=name, by=by)
               for by in ((), ("day", "model"), ("key", "tenant"), ("model",))]
    start, end = parse_month(month)
    now = datetime.now(timezone.utc)
    uses = [use for use in await limit_uses(engine, start.date(), current=start <= now < end) if use.tenant == name]
    by_tenant = await monthly_report(engine, month, tenant=name, by=("tenant",))
    refused = await refusals_by_tenant(engine, start.date(), end.date(), name)
    limits = limits_section(uses, now, by_tenant, refused)
    users = await monthly_report(engine, month, tenant=name, by=("user",))
    inside = (f"<h2>Top end users</h2>{users_section(users, reports[0])}"
              f"<h2>Spend per tag value</h2>{tags_section(await tag_value_totals(engine, month, name), reports[0])}")
    return _html(tenant_page(month, name, *reports, limits=limits,
                             unpriced=await _unpriced(request, start, end, now, name), attribution=inside))


async def statement(request: web.Request) -> web.Response:
    if not _signed_in(request):
        raise web.HTTPFound("/admin/login")
    month, tenant = _month(request), await _tenant_name(request)
    kind = _choice(request, "format", ("html", "csv"))
    try:
        group = parse_group(request.query.get("group_by") or "model")
    except ValueError as exc:
        raise ApiError(400, str(exc), param="group_by") from None
    report = await monthly_report(request.app[STATE].engine, month, tenant=tenant, by=(group,))
    result = statement_from(report)
    if kind == "csv":
        return web.Response(text=statement_csv(result), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="statement-{result.month}.csv"'})
    return _html(statement_page(result, issued_today()))


async def login_form(request: web.Request) -> web.Response:
    _token(request)
    return _html(login_page())


async def login(request: web.Request) -> web.Response:
    token = _token(request)
    form = await request.post()
    if not same_secret(str(form.get("token", "")), token):
        request.app[ADMIN_GUARD].failed(request.remote, request.path)
        return _html(login_page("That is not the admin token."), status=401)
    expires = int(time.time()) + SESSION_SECONDS
    response = web.HTTPFound("/admin/dashboard")
    response.set_cookie(COOKIE, f"{expires}.{_signature(token, expires)}", max_age=SESSION_SECONDS, path="/admin",
                        httponly=True, samesite="Strict", secure=request.secure)
    raise response


def add_dashboard_routes(app: web.Application) -> None:
    app.router.add_get("/admin/dashboard", dashboard)
    app.router.add_get("/admin/dashboard/statement", statement)
    app.router.add_get("/admin/dashboard/tenant", tenant)
    app.router.add_get("/admin/login", login_form)
    app.router.add_post("/admin/login", login)
