"""Calls for a model with no price: refused (400 `model_not_priced`), and counted so that an
operator sees the model the day clients start sending it: in this process's metrics
(`billing_proxy_unpriced_calls_total`), and here in memory per day, tenant, key and model,
added to `unpriced_calls_daily` every few seconds like the refusals
(`proxy/gateway/refusals.py`).

The model name is the client's: it is counted under a bounded label (billing.model_labels),
and each day keeps at most `MAX_DISTINCT` names apart in this process: a tenant sending a
new name on every call adds that many rows a day, then counts under `other`."""

from datetime import date, datetime

from billing.db.unpriced import Seen, Tally, add_unpriced
from billing.keys import KeyGrant, model_allowed
from billing.model_labels import LabelCap
from billing.pricebook import PriceBook
from proxy.errors import ApiError

FLUSH_SECONDS = 5.0


class UnpricedTally:
    def __init__(self):
        self._seen: Tally = {}
        self._day: date | None = None
        self._labels = LabelCap()  # of self._day: a name first sent tomorrow is kept apart tomorrow

    def count(self, tenant_id: int, key_id: int, model: object, at: datetime) -> None:
        day = at.date()
        if day != self._day:
            self._day, self._labels = day, LabelCap()
        key = (day, tenant_id, key_id, self._labels.label(model))
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = Seen(1, at, at)
        else:
            seen.calls += 1
            seen.first_at, seen.last_at = min(seen.first_at, at), max(seen.last_at, at)

    async def flush(self, engine) -> None:
        seen, self._seen = self._seen, {}
        try:
            await add_unpriced(engine, seen)
        except Exception:
            self._keep(seen)  # for the next flush
            raise

    def _keep(self, unsent: Tally) -> None:
        for key, old in unsent.items():
            new = self._seen.get(key)
            self._seen[key] = old if new is None else Seen(old.calls + new.calls, min(old.first_at, new.first_at),
                                                           max(old.last_at, new.last_at))


def unpriced_error(book: PriceBook, grant: KeyGrant, model: str) -> ApiError:
    """The 400 for a model with no price. It may name the nearest priced model, but only one
    this key may call (one `/v1/models` lists for it): nothing of another tenant's."""
    nearest = next((name for name in book.nearest_priced(model)
                    if model_allowed(grant, name, book.resolve_name(name))), None)
    hint = f" The nearest priced model is {nearest!r}." if nearest else ""
    return ApiError(400, f"The model {model!r} has no price configured, so it cannot be billed; ask an operator "
                         f"to add one.{hint}", code="model_not_priced", param="model")
