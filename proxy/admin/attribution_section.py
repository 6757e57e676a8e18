"""A tenant page's breakdown inside the team: its top end users, and its spend per value of
each tag. Pure: numbers in, markup out."""

from decimal import Decimal
from html import escape

from billing.report import Report
from proxy.admin.markup import amount, table

TOP = 10
MAX_TAG_NAMES = 12
_COLUMNS = [("requests", "Requests", True), ("charge", "Charged USD", True), ("share", "Share of the tenant", True)]


def _share(part: Decimal, whole: Decimal) -> str:
    return f"{(part * 100 / whole).quantize(Decimal('0.1'))}%" if whole else "-"


def _ranked(groups: list[tuple[str, int, Decimal]], whole: Decimal, others: str, none: tuple[int, Decimal],
            none_label: str) -> list[dict]:
    """The top groups by charge, the rest as one line, and the entries without a value."""
    groups = sorted(groups, key=lambda g: (-g[2], g[0]))
    rows = [{"name": name, "requests": calls, "charge": amount(charge), "share": _share(charge, whole)}
            for name, calls, charge in groups[:TOP]]
    rest = groups[TOP:]
    if rest:
        charge = sum((g[2] for g in rest), Decimal(0))
        rows.append({"name": f"{len(rest)} {others}", "requests": sum(g[1] for g in rest), "charge": amount(charge),
                     "share": _share(charge, whole)})
    if none[0]:
        rows.append({"name": none_label, "requests": none[0], "charge": amount(none[1]),
                     "share": _share(none[1], whole)})
    return rows


def users_section(users: Report, total: Report) -> str:
    """`users`: the tenant's month by `user`; `total`: the same month, ungrouped."""
    whole = total.total_usage_charge
    named = [(r.group["user"], r.requests, r.charge) for r in users.rows if r.group["user"] is not None]
    none = [(r.requests, r.charge) for r in users.rows if r.group["user"] is None] or [(0, Decimal(0))]
    if not named:
        return "<p class=\"empty\">No call of this month named an end user.</p>"
    rows = _ranked(named, whole, "other end users", none[0], "(no end user named)")
    return (f"<p>This month's charge per end user, the top {TOP}, with each one's share of what the tenant was "
            "charged.</p>" + table(rows, [("name", "End user", False), *_COLUMNS]))


def tags_section(values: list[tuple[str, str, int, Decimal]], total: Report) -> str:
    """`values`: (tag name, value, calls, charge) of the tenant's month; one table per tag
    name, the names with the most charge first."""
    whole = total.total_usage_charge
    names: dict[str, list[tuple[str, int, Decimal]]] = {}
    for name, value, calls, charge in values:
        names.setdefault(name, []).append((value, calls, charge))
    if not names:
        return "<p class=\"empty\">No call of this month carried a tag.</p>"
    ranked = sorted(names.items(), key=lambda item: (-sum((v[2] for v in item[1]), Decimal(0)), item[0]))
    parts = []
    for name, groups in ranked[:MAX_TAG_NAMES]:
        tagged_calls = sum(g[1] for g in groups)
        tagged_charge = sum((g[2] for g in groups), Decimal(0))
        none = (total.total_requests - tagged_calls, whole - tagged_charge)
        rows = _ranked(groups, whole, "other values", none, f"(no {name} tag)")
        parts.append(f"<h3>Tag {escape(name)}</h3>" + table(rows, [("name", "Value", False), *_COLUMNS]))
    more = (f"<p>{len(ranked) - MAX_TAG_NAMES} more tag names not shown; see <code>report --by tag:NAME</code>.</p>"
            if len(ranked) > MAX_TAG_NAMES else "")
    return "<p>This month's charge per value of each tag the tenant's calls carried.</p>" + "".join(parts) + more
