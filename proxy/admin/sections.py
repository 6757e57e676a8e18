"""The dashboard's sections: prepaid credit, the daily chart, cost by component, cache
savings, top movers, and the limits with their forecasts, refusals and estimates. Pure."""

from datetime import date, datetime
from decimal import Decimal
from html import escape

from billing.display import readable
from billing.limit_use import LimitUse, forecast
from billing.report import Report
from proxy.admin.charts import bar_chart, stacked_days
from proxy.admin.markup import amount, month_days, table


def credit_section(credits: list[tuple[object, list]]) -> str:
    """Prepaid tenants: (billing.db.credits.CreditStanding, its latest top-ups) each."""
    if not credits:
        return ""
    balances = [{"tenant": c.tenant, "credited": amount(c.credited_usd), "spent": amount(c.spent_usd),
                 "reserved": amount(c.reserved_usd), "balance": amount(c.balance_usd)} for c, _ in credits]
    topups = [{"tenant": c.tenant, "at": t.created_at.strftime("%Y-%m-%d %H:%M"), "amount": amount(t.amount_usd),
               "reason": t.reason, "actor": t.actor} for c, history in credits for t in history]
    return ("<h2>Prepaid credit</h2>"
            + table(balances, [("tenant", "Tenant", False), ("credited", "Topped up USD", True),
                                ("spent", "Spent USD", True), ("reserved", "In flight USD", True),
                                ("balance", "Balance USD", True)])
            + "<h2>Latest top-ups</h2>"
            + table(topups, [("tenant", "Tenant", False), ("at", "When (UTC)", False), ("amount", "USD", True),
                              ("reason", "Reason", False), ("actor", "By", False)]))


def daily_chart(month: str, days: Report, stack: str) -> str:
    """The month's charge per day, every day of it, stacked by tenant or by model."""
    values = {(date.fromisoformat(r.group["day"]), r.group[stack]): r.charge for r in days.rows}
    other = "model" if stack == "tenant" else "tenant"
    switch = (f'<p class="switch">Stacked by {escape(stack)} · <a href="/admin/dashboard?month={escape(month)}'
              f'&amp;stack={other}">stack by {other}</a></p>')
    return switch + stacked_days(month_days(month), values, f"Charged per day of {month}, by {stack} (USD)", readable)


COMPONENTS = (("cost_uncached_input", "Input, uncached"), ("cost_cached_input", "Input, cached"),
              ("cost_cache_write", "Cache writes"), ("cost_output", "Output"), ("cost_reasoning", "Reasoning"),
              ("cost_tool_calls", "Built-in tool calls"), ("cost_cache_storage", "Cache storage"))


def savings_chart(month: str, days: Report) -> str:
    """What the cache saved on each day of the month."""
    per_day: dict[tuple[date, str], Decimal] = {}
    for r in days.rows:
        key = (date.fromisoformat(r.group["day"]), "cache savings")
        per_day[key] = per_day.get(key, Decimal(0)) + r.cache_savings
    return stacked_days(month_days(month), {k: v for k, v in per_day.items() if v},
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
            + table(rows, [("component", "Component", False), ("cost", "Upstream cost USD", True),
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
    return table(rows, [("tenant", by.capitalize(), False), ("now", "This month USD", True),
                         ("before", f"{escape(previous.month)} USD", True), ("change", "Change USD", True),
                         ("percent", "Change", True)])


def refusals_table(refusals: dict[str, dict[str, int]]) -> str:
    """429s per tenant this month, by what refused them (days counted before causes were told
    apart count a budget's refusals as spent or held)."""
    if not refusals:
        return "<p>No call was refused by a limit this month.</p>"
    rows = [{"tenant": name, "spent": by.get("spent", 0) + by.get("insufficient_quota", 0),
             "over": by.get("over_left", 0), "held": by.get("held_in_flight", 0) + by.get("budget_in_flight", 0),
             "rate": by.get("requests", 0) + by.get("tokens", 0), "concurrency": by.get("concurrency", 0),
             "max_call": by.get("max_call", 0), "all": sum(by.values())} for name, by in sorted(refusals.items(), key=lambda item: -sum(item[1].values()))]
    return table(rows, [("tenant", "Tenant", False), ("spent", "Limit spent", True),
                         ("over", "Worst case over what is left", True), ("held", "Held by calls in flight", True),
                         ("rate", "Rate limits", True), ("concurrency", "Concurrency", True),
                         ("max_call", "Over the per-call cap", True),
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

    kinds = {"budget": "budget USD", "tokens": "tokens", "requests": "calls"}
    periods = {"month": "month", "week": "this week", "day": "today"}
    rows = []
    for u in uses:
        expected = forecast(u.spent, u.fraction_passed(now))
        rows.append({"scope": "tenant" if u.scope == "tenant" else f"key of {u.tenant}", "name": u.name,
                     "kind": kinds[u.kind], "period": periods[u.window],
                     "limit": shown(u, u.limit), "used": shown(u, u.spent), "held": shown(u, u.held),
                     "percent": f"{u.used_percent.quantize(Decimal('0.1'))}%",
                     "held_percent": f"{u.held_percent.quantize(Decimal('0.1'))}%",
                     "overrun": shown(u, u.overrun) if u.overrun else "", "forecast": shown(u, expected),
                     "over": "yes" if expected is not None and expected > u.limit else "",
                     "crossed": ", ".join(f"{t}%" for t in u.thresholds_crossed)})
    limits_table = table(rows, [("scope", "Scope", False), ("name", "Name", False), ("kind", "Kind", False),
                          ("period", "Period", False), ("limit", "Limit", True), ("used", "Spent", True),
                          ("percent", "Used", True), ("held", "Held by calls in flight", True),
                          ("held_percent", "Held", True), ("overrun", "Overrun", True),
                          ("forecast", "Forecast at the period's end", True), ("over", "Over by then", False),
                          ("crossed", "Thresholds crossed", False)]) \
        if rows else "<p class=\"empty\">No tenant or key has a limit.</p>"
    estimated = [{"tenant": r.group["tenant"], "calls": r.estimated_requests, "charge": amount(r.estimated_charge)}
                 for r in tenants.rows if r.estimated_requests]
    return (limits_table + "<p>A forecast extends the spend so far at the same pace to the end of its period (the "
                    "tenant's day, week or month, in its time zone). Daily and weekly limits are shown for the "
                    "month under way: today's and this week's.</p>"
            + "<h3>Refused calls</h3>" + refusals_table(refusals or {})
            + "<h3>Billed from estimates</h3>"
            + (table(estimated, [("tenant", "Tenant", False), ("calls", "Calls", True),
                                  ("charge", "Charged USD", True)]) if estimated
               else "<p>No call of this month was billed from an estimate.</p>"))
