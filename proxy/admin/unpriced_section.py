"""The dashboard's "Models refused as unpriced": the models clients asked for that have no
price, how often, by which tenants, when, and what would price them. Pure."""

import shlex
from datetime import datetime
from html import escape

from billing.db.unpriced import UnpricedModel
from billing.model_labels import MAX_DISTINCT, OTHER
from proxy.admin.markup import Html, table

SHOWN_TENANTS = 5


def _tenants(names: tuple[str, ...]) -> str:
    more = len(names) - SHOWN_TENANTS
    return ", ".join(names[:SHOWN_TENANTS]) + (f" and {more} more" if more > 0 else "")


def _code(command: str) -> Html:
    return Html(f"<code>{escape(command)}</code>")


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def unpriced_section(models: list[UnpricedModel], nearest: dict[str, list[str]], priced_now: set[str]) -> str:
    """`nearest`: the nearest priced names of each model (PriceBook.nearest_priced);
    `priced_now`: the models that have a price by now."""
    title = "<h2>Models refused as unpriced</h2>"
    if not models:
        return title + "<p>No call was refused for a model without a price this month.</p>"
    rows = []
    for m in models:
        if m.model == OTHER:
            near, fix = "", f"names not kept apart: too long or unreadable, or past the first {MAX_DISTINCT} of a day"
        elif m.model in priced_now:
            near, fix = "", "priced now"
        else:
            near = ", ".join(nearest.get(m.model, []))
            fix = _code(f"billing-proxy prices resolve {shlex.quote(m.model)}")
        rows.append({"model": m.model, "calls": f"{m.calls:,}", "tenants": _tenants(m.tenants),
                     "first": _when(m.first_seen), "last": _when(m.last_seen), "nearest": near, "fix": fix})
    return (title + table(rows, [("model", "Model", False), ("calls", "Calls", True), ("tenants", "Tenants", False),
                                 ("first", "First seen (UTC)", False), ("last", "Last seen (UTC)", False),
                                 ("nearest", "Nearest priced", False), ("fix", "To price it", False)])
            + "<p>Clients asked for these models, which have no price: each call was refused (400 "
              "<code>model_not_priced</code>) before anything went upstream, and nothing was billed. "
              "<code>billing-proxy prices resolve MODEL</code> names the nearest priced models and the "
              "<code>billing-proxy prices set MODEL --input USD --output USD ...</code> command that would price "
              "it like one of them; a price set now applies to the calls from then on.</p>")
