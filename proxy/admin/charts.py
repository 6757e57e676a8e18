"""Inline SVG charts for the dashboard. Pure; coordinates are computed with Decimal, so not
even the drawing of money goes through binary floats."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Callable

WIDTH, HEIGHT, MARGIN = Decimal(640), Decimal(220), Decimal(40)
TENTH = Decimal("0.1")


def _n(value: Decimal) -> str:
    return str(value.quantize(TENTH, rounding=ROUND_HALF_UP))


def _scale(values: list[Decimal]) -> Decimal:
    top = max(values, default=Decimal(0))
    return top if top > 0 else Decimal(1)


def bar_chart(items: list[tuple[str, Decimal]], title: str, label: Callable[[Decimal], str] = str) -> str:
    """One bar per item, labelled with its name and value (as `label` writes it)."""
    if not items:
        return '<p class="empty">No spend in this month.</p>'
    top = _scale([v for _, v in items])
    row = Decimal(28)
    height = row * len(items) + 10
    label_width = Decimal(180)
    bar_room = WIDTH - label_width - Decimal(110)
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_n(WIDTH)}" height="{_n(height)}" '
             f'viewBox="0 0 {_n(WIDTH)} {_n(height)}" xmlns="http://www.w3.org/2000/svg">']
    for index, (name, value) in enumerate(items):
        y = row * index + 5
        width = max(bar_room * value / top, Decimal(1))
        parts.append(f'<text x="0" y="{_n(y + 17)}" class="label">{escape(name)}</text>'
                     f'<rect x="{_n(label_width)}" y="{_n(y + 4)}" width="{_n(width)}" height="18" class="bar">'
                     f'<title>{escape(name)}: {escape(label(value))}</title></rect>'
                     f'<text x="{_n(label_width + width + 6)}" y="{_n(y + 17)}" class="value">{escape(label(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


# Okabe-Ito: told apart with any colour vision; the last one is for "others".
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C8C8C")
MAX_SERIES = len(SERIES_COLOURS) - 1


def stacked_days(days: list[date], values: dict[tuple[date, str], Decimal], title: str,
                 label: Callable[[Decimal], str]) -> str:
    """A bar per day of the whole period (a day without traffic stands at zero), each
    stacked by series (the largest few; the rest as "others"), with a scale and a legend.
    `label` writes an amount as people read it."""
    totals: dict[str, Decimal] = {}
    for (_, name), value in values.items():
        totals[name] = totals.get(name, Decimal(0)) + value
    if not totals:
        return '<p class="empty">No spend in this month.</p>'
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    shown = ranked if len(ranked) <= MAX_SERIES + 1 else ranked[:MAX_SERIES]
    series = shown + (["others"] if len(shown) < len(ranked) else [])
    colours = SERIES_COLOURS[:len(shown)] + (SERIES_COLOURS[-1],)
    series_totals = {**{name: totals[name] for name in shown},
                     "others": sum((totals[name] for name in ranked[len(shown):]), Decimal(0))}
    per_day = {day: {name: Decimal(0) for name in series} for day in days}
    for (day, name), value in values.items():
        if day in per_day:
            per_day[day][name if name in shown else "others"] += value
    top = _scale([sum(cells.values(), Decimal(0)) for cells in per_day.values()])
    left, bottom, plot_h = Decimal(70), Decimal(30), HEIGHT - Decimal(40)
    slot = (WIDTH - left - 10) / len(days)
    legend_rows = (len(series) + 2) // 3
    height = HEIGHT + 22 * legend_rows
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_n(WIDTH)}" height="{_n(height)}" '
             f'viewBox="0 0 {_n(WIDTH)} {_n(height)}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{escape(title)}</title>']
    for fraction in (Decimal(0), Decimal("0.5"), Decimal(1)):  # the scale: 0, half and the busiest day
        y = HEIGHT - bottom - plot_h * fraction + 10
        parts.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(WIDTH - 10)}" y2="{_n(y)}" class="grid"/>'
                     f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end" class="label">'
                     f'{escape(label(top * fraction))}</text>')
    for index, day in enumerate(days):
        x, base = left + slot * index + 1, HEIGHT - bottom + 10
        for name, colour in zip(series, colours):
            value = per_day[day][name]
            if value <= 0:
                continue
            bar = plot_h * value / top
            base -= bar
            parts.append(f'<rect x="{_n(x)}" y="{_n(base)}" width="{_n(max(slot - 2, Decimal(1)))}" '
                         f'height="{_n(max(bar, TENTH))}" fill="{colour}"><title>{day:%Y-%m-%d}, {escape(name)}: '
                         f'{escape(label(value))}</title></rect>')
        if day.day == 1 or day.day % 5 == 0 or index == len(days) - 1:
            parts.append(f'<text x="{_n(x + slot / 2)}" y="{_n(HEIGHT - 2)}" text-anchor="middle" '
                         f'class="label">{day.day}</text>')
    for index, (name, colour) in enumerate(zip(series, colours)):  # the legend, three to a row
        x, y = left + (WIDTH - left) / 3 * (index % 3), HEIGHT + 8 + 22 * (index // 3)
        parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{_n(x + 18)}" y="{_n(y + 11)}" class="label">{escape(name)} '
                     f'({escape(label(series_totals[name]))})</text>')
    parts.append("</svg>")
    return "".join(parts)
