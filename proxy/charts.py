"""Inline SVG charts for the dashboard. Pure; coordinates are computed with Decimal, so not
even the drawing of money goes through binary floats."""

from decimal import ROUND_HALF_UP, Decimal
from html import escape

WIDTH, HEIGHT, MARGIN = Decimal(640), Decimal(220), Decimal(40)
TENTH = Decimal("0.1")


def _n(value: Decimal) -> str:
    return str(value.quantize(TENTH, rounding=ROUND_HALF_UP))


def _scale(values: list[Decimal]) -> Decimal:
    top = max(values, default=Decimal(0))
    return top if top > 0 else Decimal(1)


def bar_chart(items: list[tuple[str, Decimal]], title: str) -> str:
    """One bar per item, labelled with its name and value."""
    if not items:
        return '<p class="empty">No spend in this month.</p>'
    top = _scale([v for _, v in items])
    row = Decimal(28)
    height = row * len(items) + 10
    label_width = Decimal(180)
    bar_room = WIDTH - label_width - Decimal(110)
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_n(WIDTH)}" height="{_n(height)}" '
             f'viewBox="0 0 {_n(WIDTH)} {_n(height)}" xmlns="http://www.w3.org/2000/svg">']
    for index, (label, value) in enumerate(items):
        y = row * index + 5
        width = max(bar_room * value / top, Decimal(1))
        parts.append(f'<text x="0" y="{_n(y + 17)}" class="label">{escape(label)}</text>'
                     f'<rect x="{_n(label_width)}" y="{_n(y + 4)}" width="{_n(width)}" height="18" class="bar">'
                     f'<title>{escape(label)}: {escape(str(value))}</title></rect>'
                     f'<text x="{_n(label_width + width + 6)}" y="{_n(y + 17)}" class="value">{escape(str(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: list[tuple[str, Decimal]], title: str) -> str:
    """Values over days, with the first and last day and the peak labelled."""
    if not points:
        return '<p class="empty">No spend in this month.</p>'
    top = _scale([v for _, v in points])
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = inner_w / max(len(points) - 1, 1)
    coords = [(MARGIN + step * i, MARGIN + inner_h - inner_h * v / top) for i, (_, v) in enumerate(points)]
    polyline = " ".join(f"{_n(x)},{_n(y)}" for x, y in coords)
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{_n(WIDTH)}" height="{_n(HEIGHT)}" '
             f'viewBox="0 0 {_n(WIDTH)} {_n(HEIGHT)}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{_n(MARGIN)}" y1="{_n(MARGIN + inner_h)}" x2="{_n(WIDTH - MARGIN)}" '
             f'y2="{_n(MARGIN + inner_h)}" class="axis"/>',
             f'<polyline points="{polyline}" class="line" fill="none"/>']
    for (label, value), (x, y) in zip(points, coords):
        parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" class="dot"><title>{escape(label)}: '
                     f'{escape(str(value))}</title></circle>')
    parts.append(f'<text x="{_n(MARGIN)}" y="{_n(HEIGHT - 12)}" class="label">{escape(points[0][0])}</text>')
    if len(points) > 1:
        parts.append(f'<text x="{_n(WIDTH - MARGIN)}" y="{_n(HEIGHT - 12)}" text-anchor="end" class="label">'
                     f'{escape(points[-1][0])}</text>')
    parts.append(f'<text x="{_n(MARGIN)}" y="{_n(MARGIN - 12)}" class="label">peak {escape(str(top))}</text>')
    parts.append("</svg>")
    return "".join(parts)
