"""What every admin page shares: its style sheet and frame, amounts people can read (exact on
hover), tables, and the days of a month. Pure: numbers in, markup out."""

import calendar
from datetime import date, datetime, timezone
from decimal import Decimal
from html import escape

from billing.display import readable
from billing.report import Report, money

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


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body>{body}</body></html>')


def issued_today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


class Html(str):
    """Markup built here, inserted as is."""


def amount(value: Decimal, figure: str | None = None) -> Html:
    """An amount as people read it (to the cent, or 4 significant digits below a cent), the
    exact value in the element's value and a hover away."""
    exact = escape(money(value))
    tag = f' data-figure="{escape(figure)}"' if figure else ""
    return Html(f'<data{tag} value="{exact}" title="{exact} USD exactly">{escape(readable(value))}</data>')


def cell(value) -> str:
    return value if isinstance(value, Html) else escape(str(value))


def table(rows: list[dict], columns: list[tuple[str, str, bool]]) -> str:
    head = "".join(f'<th scope="col" class="{"n" if numeric else ""}">{escape(title)}</th>'
                   for _, title, numeric in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if numeric else ""}">{cell(row.get(key, ""))}</td>'
                         for key, _, numeric in columns) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def top_rows(report: Report, key: str, limit: int = 10) -> list[dict]:
    rows = sorted(report.rows, key=lambda r: r.charge, reverse=True)[:limit]
    return [{"name": r.group[key] + (f" (#{r.group['key_id']})" if key == "key" else ""),
             "tenant": r.group.get("tenant", ""), "requests": r.requests, "charge": amount(r.charge),
             "cost": amount(r.cost), "savings": amount(r.cache_savings)} for r in rows]


def month_days(month: str) -> list[date]:
    year, number = (int(part) for part in month.split("-"))
    return [date(year, number, day) for day in range(1, calendar.monthrange(year, number)[1] + 1)]
