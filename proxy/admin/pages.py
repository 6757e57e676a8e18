"""The admin pages: the month's dashboard, a tenant's page, a statement to print, and the
sign-in form. Pure rendering: numbers in, markup out."""

from datetime import date
from html import escape
from urllib.parse import quote

from billing.display import readable
from billing.report import Report
from billing.report_dimensions import shown, tag_name
from billing.statement import Statement
from proxy.admin.charts import bar_chart, stacked_days
from proxy.admin.markup import Html, amount, month_days, page, table, top_rows
from proxy.admin.sections import components_section, daily_chart, movers_section, savings_chart


def dashboard_page(month: str, total: Report, tenants: Report, days: Report, keys: Report, models: Report,
                   credits: str = "", stack: str = "tenant", previous: Report | None = None,
                   limits: str = "", previous_models: Report | None = None, unpriced: str = "") -> str:
    cards = "".join(f'<div class="card">{escape(name)}<b>{value}</b></div>' for name, value in (
        ("Charged (USD)", amount(total.total_charge, "charge")),
        ("Adjustments (USD)", amount(total.total_adjustments, "adjustments")),
        ("Upstream cost (USD)", amount(total.total_cost, "cost")),
        ("Cache savings (USD)", amount(total.total_cache_savings, "cache_savings")),
        ("Requests", f'<data data-figure="requests" value="{total.total_requests}">{total.total_requests:,}</data>')))
    adjustments = [{"tenant": a.tenant, "at": a.at.strftime("%Y-%m-%d %H:%M"), "amount": amount(a.amount),
                    "reason": a.reason} for a in total.adjustments]
    ranked = sorted(tenants.rows, key=lambda r: r.charge, reverse=True)
    tenant_rows = [{"tenant": r.group["tenant"], "requests": r.requests, "charge": amount(r.charge),
                    "cost": amount(r.cost), "savings": amount(r.cache_savings),
                    "page": Html(f'<a href="/admin/dashboard/tenant?tenant={quote(r.group["tenant"])}&amp;month='
                                  f'{escape(month)}">{escape(r.group["tenant"])}</a>')} for r in ranked]
    statement_links = "".join(_statement_links(row["tenant"], month) for row in tenant_rows)
    money_columns = [("requests", "Requests", True), ("charge", "Charged USD", True), ("cost", "Cost USD", True),
                     ("savings", "Cache savings USD", True)]
    body = f"""
<h1>Spend, {escape(month)}</h1>
<form class="month" method="get" action="/admin/dashboard"><label>Month <input type="month" name="month"
 value="{escape(month)}"></label> <button type="submit">Show</button></form>
<div class="cards">{cards}</div>
{f"<h2>Limits</h2>{limits}" if limits else ""}
{unpriced}
<h2>Charged per tenant</h2>{bar_chart([(r.group["tenant"], r.charge) for r in ranked], "Charged per tenant", readable)}
{table(tenant_rows, [("tenant", "Tenant", False), *money_columns, ("page", "Page", False)])}
<h2>Charged per day</h2>{daily_chart(month, days, stack)}
<h2>Upstream cost by component</h2>{components_section(total)}
<h3>Cache savings per day</h3>{savings_chart(month, days)}
{f"<h2>Top movers against {escape(previous.month)}</h2>" + movers_section(tenants, previous) if previous else ""}
{"<h3>Models</h3>" + movers_section(models, previous_models, by="model") if previous_models else ""}
<h2>Top keys</h2>{table(top_rows(keys, "key"), [("name", "Key", False), ("tenant", "Tenant", False), *money_columns])}
<h2>Top models</h2>{table(top_rows(models, "model"), [("name", "Model", False), *money_columns])}
<h2>Adjustments</h2>{table(adjustments, [("tenant", "Tenant", False), ("at", "When (UTC)", False),
                                         ("amount", "USD", True), ("reason", "Reason", False)])
                     if adjustments else "<p>None this month.</p>"}
<h2>Statements</h2><ul>{statement_links or "<li>No tenant spent anything this month.</li>"}</ul>
{credits}"""
    return page(f"billing-proxy: spend {month}", body)


def _statement_links(tenant: str, month: str, group_by: str = "model") -> str:
    query = f"tenant={quote(tenant)}&amp;month={escape(month)}" + (
        f"&amp;group_by={quote(group_by)}" if group_by != "model" else "")
    per = " per end user" if group_by == "user" else ""
    return (f'<li>{escape(tenant)}{per}: <a href="/admin/dashboard/statement?{query}&amp;format=html">printable</a> · '
            f'<a href="/admin/dashboard/statement?{query}&amp;format=csv">CSV</a></li>')


def tenant_page(month: str, tenant: str, total: Report, days: Report, keys: Report, models: Report,
                limits: str, unpriced: str = "", attribution: str = "") -> str:
    """One tenant's month: its figures, limits, days (stacked by model), keys, models, its
    end users and tag values (`attribution`) and statement."""
    cards = "".join(f'<div class="card">{escape(name)}<b>{value}</b></div>' for name, value in (
        ("Charged (USD)", amount(total.total_charge, "charge")),
        ("Upstream cost (USD)", amount(total.total_cost, "cost")),
        ("Cache savings (USD)", amount(total.total_cache_savings, "cache_savings")),
        ("Requests", f'<data data-figure="requests" value="{total.total_requests}">{total.total_requests:,}</data>')))
    money_columns = [("requests", "Requests", True), ("charge", "Charged USD", True), ("cost", "Cost USD", True),
                     ("savings", "Cache savings USD", True)]
    body = f"""
<nav><a href="/admin/dashboard?month={escape(month)}">All tenants</a></nav>
<h1>{escape(tenant)}, {escape(month)}</h1>
<form class="month" method="get" action="/admin/dashboard/tenant"><input type="hidden" name="tenant"
 value="{escape(tenant)}"><label>Month <input type="month" name="month" value="{escape(month)}"></label>
 <button type="submit">Show</button></form>
<div class="cards">{cards}</div>
<h2>Limits</h2>{limits}
{unpriced}
<h2>Charged per day, by model</h2>{stacked_days(month_days(month), {
    (date.fromisoformat(r.group["day"]), r.group["model"]): r.charge for r in days.rows},
    f"Charged per day of {month} by {tenant}, by model (USD)", readable)}
<h2>Keys</h2>{table(top_rows(keys, "key", limit=100), [("name", "Key", False), *money_columns])}
<h2>Models</h2>{table(top_rows(models, "model", limit=100), [("name", "Model", False), *money_columns])}
{attribution}
<h2>Statement</h2><ul>{_statement_links(tenant, month)}{_statement_links(tenant, month, "user")}</ul>"""
    return page(f"billing-proxy: {tenant} {month}", body)


_PER = {"model": "priced per model", "user": "per end user"}


def statement_page(statement: Statement, issued: str) -> str:
    """A statement to send: its number, period and tenant, a line per model (or end user, or
    tag value) and per adjustment (to the cent, exact on hover), the rounding line and the
    total due."""
    first_column = statement.dimension
    name = tag_name(first_column)
    titles = {first_column: f"Tag {name}" if name else {"user": "End user"}.get(first_column, "Model"),
              "requests": "Requests", "input_tokens": "Input tokens", "cached_tokens": "Cached",
              "output_tokens": "Output tokens", "reasoning_tokens": "Reasoning", "charge_usd": "Charge USD"}
    rows = [{**line, first_column: shown(line[first_column]), "charge_usd": amount(line["charge_usd"])}
            for line in statement.lines]
    rows += [{first_column: f"Adjustment {a.at:%Y-%m-%d}: {a.reason}", "charge_usd": amount(a.amount)}
             for a in statement.adjustments]
    rows.append({first_column: "Rounding (the total, half to even, to the cent)",
                 "charge_usd": amount(statement.rounding, "rounding")})
    rows.append({first_column: "Total due", "requests": sum(line["requests"] for line in statement.lines),
                 "charge_usd": amount(statement.total_due, "total_due")})
    late = (f"<p>Includes {statement.late_requests} late calls from closed months, "
            f"{amount(statement.late_charge)} USD.</p>" if statement.late_requests else "")
    first, last = statement.period
    per = _PER.get(first_column) or f"per value of the tag {escape(name or '')}"
    body = (f'<h1>Statement {escape(statement.number)}</h1>'
            f'<table class="facts"><tbody><tr><th scope="row">Tenant</th><td>{escape(statement.tenant)}</td></tr>'
            f'<tr><th scope="row">Period</th><td>{first:%Y-%m-%d} to {last:%Y-%m-%d} (UTC)</td></tr>'
            f'<tr><th scope="row">Issued</th><td>{escape(issued)}</td></tr></tbody></table>'
            f"<p>Usage of the LLM gateway, {per}, and adjustments. All amounts in USD; each line "
            f"keeps its exact amount (hover it), and only the total is rounded.</p>"
            + table(rows, [(c, titles[c], c != first_column) for c in statement.columns]) + late
            + f'<p><b>Total due: {amount(statement.total_due)} USD</b></p>')
    return page(f"Statement {statement.number}", body)


def login_page(error: str = "") -> str:
    note = f'<p style="color:#b00020">{escape(error)}</p>' if error else ""
    return page("billing-proxy: sign in", f"""<h1>Sign in</h1>{note}
<form method="post" action="/admin/login"><label>Admin token <input type="password" name="token"
 autocomplete="current-password" required></label> <button type="submit">Sign in</button></form>""")
