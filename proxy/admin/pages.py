"""The dashboard's and the statement's HTML. Pure rendering: numbers in, markup out."""

import calendar
from datetime import date, datetime, timezone
from decimal import Decimal
from html import escape
from urllib.parse import quote

from billing.display import readable
from billing.limit_use import LimitUse, forecast
from billing.report import Report, money
from billing.statement import COLUMNS, Statement
from proxy.admin.charts import bar_chart, stacked_days

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#1d2430;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #e3e6ea;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}table.facts{width:auto;margin:8px 0}table.facts th{font-weight:600}.bar{fill:#3b6fd8}.line{stroke:#3b6fd8;stroke-width:2}.dot{fill:#3b6fd8}
.axis,.grid{stroke:#c9ced4}.label,.value{font-size:12px;fill:#1d2430}.empty{color:#6b7480}
form.month{margin:12px 0}thead{display:table-header-group}tr{break-inside:avoid}@page{size:A4;margin:16mm}@media print{form,nav,.switch{display:none}body{margin:0;max-width:none}}
"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body>{body}</body></html>')


def issued_today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


class _Html(str):
    """Markup built here, inserted as is."""


def amount(value: Decimal, figure: str | None = None) -> _Html:
    """An amount as people read it (to the cent, or 4 significant digits below a cent), the
    exact value in the element's value and a hover away."""
    exact = escape(money(value))
    tag = f' data-figure="{escape(figure)}"' if figure else ""
    return _Html(f'<data{tag} value="{exact}" title="{exact} USD exactly">{escape(readable(value))}</data>')


def _cell(value) -> str:
    return value if isinstance(value, _Html) else escape(str(value))


def _table(rows: list[dict], columns: list[tuple[str, str, bool]]) -> str:
    head = "".join(f'<th scope="col" class="{"n" if numeric else ""}">{escape(title)}</th>'
                   for _, title, numeric in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if numeric else ""}">{_cell(row.get(key, ""))}</td>'
                         for key, _, numeric in columns) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _top(report: Report, key: str, limit: int = 10) -> list[dict]:
    rows = sorted(report.rows, key=lambda r: r.charge, reverse=True)[:limit]
    return [{"name": r.group[key] + (f" (#{r.group['key_id']})" if key == "key" else ""),
             "tenant": r.group.get("tenant", ""), "requests": r.requests, "charge": amount(r.charge),
             "cost": amount(r.cost), "savings": amount(r.cache_savings)} for r in rows]


def credit_section(credits: list[tuple[object, list]]) -> str:
    """Prepaid tenants: (billing.db.credits.CreditStanding, its latest top-ups) each."""
    if not credits:
        return ""
    balances = [{"tenant": c.tenant, "credited": amount(c.credited_usd), "spent": amount(c.spent_usd),
                 "reserved": amount(c.reserved_usd), "balance": amount(c.balance_usd)} for c, _ in credits]
    topups = [{"tenant": c.tenant, "at": t.created_at.strftime("%Y-%m-%d %H:%M"), "amount": amount(t.amount_usd),
               "reason": t.reason, "actor": t.actor} for c, history in credits for t in history]
    return ("<h2>Prepaid credit</h2>"
            + _table(balances, [("tenant", "Tenant", False), ("credited", "Topped up USD", True),
                                ("spent", "Spent USD", True), ("reserved", "In flight USD", True),
                                ("balance", "Balance USD", True)])
            + "<h2>Latest top-ups</h2>"
            + _table(topups, [("tenant", "Tenant", False), ("at", "When (UTC)", False), ("amount", "USD", True),
                              ("reason", "Reason", False), ("actor", "By", False)]))


def _month_days(month: str) -> list[date]:
    year, number = (int(part) for part in month.split("-"))
    return [date(year, number, day) for day in range(1, calendar.monthrange(year, number)[1] + 1)]


def daily_chart(month: str, days: Report, stack: str) -> str:
    """The month's charge per day, every day of it, stacked by tenant or by model."""
    values = {(date.fromisoformat(r.group["day"]), r.group[stack]): r.charge for r in days.rows}
    other = "model" if stack == "tenant" else "tenant"
    switch = (f'<p class="switch">Stacked by {escape(stack)} · <a href="/admin/dashboard?month={escape(month)}'
              f'&amp;stack={other}">stack by {other}</a></p>')
    return switch + stacked_days(_month_days(month), values, f"Charged per day of {month}, by {stack} (USD)", readable)


COMPONENTS = (("cost_uncached_input", "Input, uncached"), ("cost_cached_input", "Input, cached"),
              ("cost_cache_write", "Cache writes"), ("cost_output", "Output"), ("cost_reasoning", "Reasoning"),
              ("cost_tool_calls", "Built-in tool calls"), ("cost_cache_storage", "Cache storage"))


def savings_chart(month: str, days: Report) -> str:
    """What the cache saved on each day of the month."""
    per_day: dict[tuple[date, str], Decimal] = {}
    for r in days.rows:
        key = (date.fromisoformat(r.group["day"]), "cache savings")
        per_day[key] = per_day.get(key, Decimal(0)) + r.cache_savings
    return stacked_days(_month_days(month), {k: v for k, v in per_day.items() if v},
                        f"Cache savings per day of {month} (USD)", readable)


def components_section(total: Report) -> str:
    """The upstream cost by component, and what the cache saved."""
    costs = {field: sum((r.costs.get(field, Decimal(0)) for r in total.rows), Decimal(0)) for field, _ in COMPONENTS}
    whole = sum(costs.values(), Decimal(0))
    if whole == 0:
        return "<p class=\"empty\">No spend in this month.</p>"
    rows = [{"component": name, "cost": amount(costs[field]),
             "share": f"{(costs[field] * 100 / whole).quantize(Decimal('0.1'))}%"}
            for field, name in COMPONENTS if costs[field]]
    savings = total.total_cache_savings
    undiscounted = savings + costs["cost_cached_input"]  # what the cached tokens would have cost uncached
    saved = (f"<p>The cache saved {amount(savings)} USD: "
             f"{(savings * 100 / undiscounted).quantize(Decimal('0.1'))}% of what the cached input would have "
             f"cost.</p>" if undiscounted else "<p>No input was cached this month.</p>")
    return (bar_chart([(r["component"], costs[field]) for field, r in zip(
                [f for f, _ in COMPONENTS if costs[f]], rows)], "Upstream cost by component", readable)
            + _table(rows, [("component", "Component", False), ("cost", "Upstream cost USD", True),
                            ("share", "Share", True)]) + saved)


def movers_section(current: Report, previous: Report, limit: int = 5, by: str = "tenant") -> str:
    """The tenants (or models) whose charge moved most against the previous month."""
    before = {r.group[by]: r.charge for r in previous.rows}
    now = {r.group[by]: r.charge for r in current.rows}
    moves = sorted(((name, now.get(name, Decimal(0)), before.get(name, Decimal(0))) for name in {*now, *before}),
                   key=lambda move: (-abs(move[1] - move[2]), move[0]))[:limit]
    if not moves:
        return "<p class=\"empty\">No spend in either month.</p>"
    rows = [{"tenant": name, "now": amount(this), "before": amount(last), "change": amount(this - last),
             "percent": f"{((this - last) * 100 / last).quantize(Decimal('1')):+}%" if last else "new"}
            for name, this, last in moves]
    return _table(rows, [("tenant", by.capitalize(), False), ("now", "This month USD", True),
                         ("before", f"{escape(previous.month)} USD", True), ("change", "Change USD", True),
                         ("percent", "Change", True)])


def refusals_table(refusals: dict[str, dict[str, int]]) -> str:
    """429s per tenant this month, by what refused them."""
    if not refusals:
        return "<p>No call was refused by a limit this month.</p>"
    rows = [{"tenant": name, "spent": by.get("insufficient_quota", 0),
             "rate": by.get("requests", 0) + by.get("tokens", 0), "held": by.get("budget_in_flight", 0),
             "all": sum(by.values())} for name, by in sorted(refusals.items(), key=lambda item: -sum(item[1].values()))]
    return _table(rows, [("tenant", "Tenant", False), ("spent", "Budget or quota spent", True),
                         ("rate", "Rate limits and concurrency", True), ("held", "Held by calls in flight", True),
                         ("all", "All refusals", True)])


def limits_section(uses: list[LimitUse], now: datetime, tenants: Report,
                   refusals: dict[str, dict[str, int]] | None = None) -> str:
    """Each limit: what is spent and held against it, a straight-line forecast of its
    period's end, the alert thresholds crossed; the refusals (429); and the calls billed
    from estimates."""
    def shown(use: LimitUse, value: Decimal | None):
        if value is None:
            return "too early"
        return amount(value) if use.kind == "budget" else f"{value.quantize(Decimal(1)):,}"

    periods = {"month": "month", "week": "this week", "day": "today"}
    rows = []
    for u in uses:
        expected = forecast(u.spent, u.fraction_passed(now))
        rows.append({"scope": "tenant" if u.scope == "tenant" else f"key of {u.tenant}", "name": u.name,
                     "kind": "budget USD" if u.kind == "budget" else "tokens", "period": periods[u.window],
                     "limit": shown(u, u.limit), "used": shown(u, u.spent), "held": shown(u, u.held),
                     "percent": f"{u.used_percent.quantize(Decimal('0.1'))}%", "forecast": shown(u, expected),
                     "over": "yes" if expected is not None and expected > u.limit else "",
                     "crossed": ", ".join(f"{t}%" for t in u.thresholds_crossed)})
    table = _table(rows, [("scope", "Scope", False), ("name", "Name", False), ("kind", "Kind", False),
                          ("period", "Period", False), ("limit", "Limit", True), ("used", "Spent", True),
                          ("held", "In flight", True), ("percent", "Used", True),
                          ("forecast", "Forecast at the period's end", True), ("over", "Over by then", False),
                          ("crossed", "Thresholds crossed", False)]) \
        if rows else "<p class=\"empty\">No tenant or key has a limit.</p>"
    estimated = [{"tenant": r.group["tenant"], "calls": r.estimated_requests, "charge": amount(r.estimated_charge)}
                 for r in tenants.rows if r.estimated_requests]
    return (table + "<p>A forecast extends the spend so far at the same pace to the end of its period (the "
                    "tenant's day, week or month, in its time zone). Daily and weekly limits are shown for the "
                    "month under way: today's and this week's.</p>"
            + "<h3>Refused calls (429)</h3>" + refusals_table(refusals or {})
            + "<h3>Billed from estimates</h3>"
            + (_table(estimated, [("tenant", "Tenant", False), ("calls", "Calls", True),
                                  ("charge", "Charged USD", True)]) if estimated
               else "<p>No call of this month was billed from an estimate.</p>"))


def dashboard_page(month: str, total: Report, tenants: Report, days: Report, keys: Report, models: Report,
                   credits: str = "", stack: str = "tenant", previous: Report | None = None,
                   limits: str = "", previous_models: Report | None = None) -> str:
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
                    "page": _Html(f'<a href="/admin/dashboard/tenant?tenant={quote(r.group["tenant"])}&amp;month='
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
<h2>Charged per tenant</h2>{bar_chart([(r.group["tenant"], r.charge) for r in ranked], "Charged per tenant", readable)}
{_table(tenant_rows, [("tenant", "Tenant", False), *money_columns, ("page", "Page", False)])}
<h2>Charged per day</h2>{daily_chart(month, days, stack)}
<h2>Upstream cost by component</h2>{components_section(total)}
<h3>Cache savings per day</h3>{savings_chart(month, days)}
{f"<h2>Top movers against {escape(previous.month)}</h2>" + movers_section(tenants, previous) if previous else ""}
{"<h3>Models</h3>" + movers_section(models, previous_models, by="model") if previous_models else ""}
<h2>Top keys</h2>{_table(_top(keys, "key"), [("name", "Key", False), ("tenant", "Tenant", False), *money_columns])}
<h2>Top models</h2>{_table(_top(models, "model"), [("name", "Model", False), *money_columns])}
<h2>Adjustments</h2>{_table(adjustments, [("tenant", "Tenant", False), ("at", "When (UTC)", False),
                                         ("amount", "USD", True), ("reason", "Reason", False)])
                     if adjustments else "<p>None this month.</p>"}
<h2>Statements</h2><ul>{statement_links or "<li>No tenant spent anything this month.</li>"}</ul>
{credits}"""
    return _page(f"billing-proxy: spend {month}", body)


def _statement_links(tenant: str, month: str) -> str:
    query = f"tenant={quote(tenant)}&amp;month={escape(month)}"
    return (f'<li>{escape(tenant)}: <a href="/admin/dashboard/statement?{query}&amp;format=html">printable</a> · '
            f'<a href="/admin/dashboard/statement?{query}&amp;format=csv">CSV</a></li>')


def tenant_page(month: str, tenant: str, total: Report, days: Report, keys: Report, models: Report,
                limits: str) -> str:
    """One tenant's month: its figures, limits, days (stacked by model), keys, models and
    statement."""
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
<h2>Charged per day, by model</h2>{stacked_days(_month_days(month), {
    (date.fromisoformat(r.group["day"]), r.group["model"]): r.charge for r in days.rows},
    f"Charged per day of {month} by {tenant}, by model (USD)", readable)}
<h2>Keys</h2>{_table(_top(keys, "key", limit=100), [("name", "Key", False), *money_columns])}
<h2>Models</h2>{_table(_top(models, "model", limit=100), [("name", "Model", False), *money_columns])}
<h2>Statement</h2><ul>{_statement_links(tenant, month)}</ul>"""
    return _page(f"billing-proxy: {tenant} {month}", body)


def statement_page(statement: Statement, issued: str) -> str:
    """A statement to send: its number, period and tenant, a line per model and per
    adjustment (to the cent, exact on hover), the rounding line and the total due."""
    titles = {"model": "Model", "requests": "Requests", "input_tokens": "Input tokens", "cached_tokens": "Cached",
              "output_tokens": "Output tokens", "reasoning_tokens": "Reasoning", "charge_usd": "Charge USD"}
    rows = [{**line, "charge_usd": amount(line["charge_usd"])} for line in statement.lines]
    rows += [{"model": f"Adjustment {a.at:%Y-%m-%d}: {a.reason}", "charge_usd": amount(a.amount)}
             for a in statement.adjustments]
    rows.append({"model": "Rounding (the total, half to even, to the cent)",
                 "charge_usd": amount(statement.rounding, "rounding")})
    rows.append({"model": "Total due", "requests": sum(line["requests"] for line in statement.lines),
                 "charge_usd": amount(statement.total_due, "total_due")})
    late = (f"<p>Includes {statement.late_requests} late calls from closed months, "
            f"{amount(statement.late_charge)} USD.</p>" if statement.late_requests else "")
    first, last = statement.period
    body = (f'<h1>Statement {escape(statement.number)}</h1>'
            f'<table class="facts"><tbody><tr><th scope="row">Tenant</th><td>{escape(statement.tenant)}</td></tr>'
            f'<tr><th scope="row">Period</th><td>{first:%Y-%m-%d} to {last:%Y-%m-%d} (UTC)</td></tr>'
            f'<tr><th scope="row">Issued</th><td>{escape(issued)}</td></tr></tbody></table>'
            f"<p>Usage of the LLM gateway, priced per model, and adjustments. All amounts in USD; each line "
            f"keeps its exact amount (hover it), and only the total is rounded.</p>"
            + _table(rows, [(c, titles[c], c != "model") for c in COLUMNS]) + late
            + f'<p><b>Total due: {amount(statement.total_due)} USD</b></p>')
    return _page(f"Statement {statement.number}", body)


def login_page(error: str = "") -> str:
    note = f'<p style="color:#b00020">{escape(error)}</p>' if error else ""
    return _page("billing-proxy: sign in", f"""<h1>Sign in</h1>{note}
<form method="post" action="/admin/login"><label>Admin token <input type="password" name="token"
 autocomplete="current-password" required></label> <button type="submit">Sign in</button></form>""")
