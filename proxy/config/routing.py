"""Which upstream serves a model: exact names first, then the most specific pattern, then
the default upstream (UPSTREAM_BASE_URL / UPSTREAM_API_KEY). Pure."""

import fnmatch
from dataclasses import dataclass, field
from decimal import Decimal

DEFAULT = "default"


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)  # never printed, never logged
    models: tuple[str, ...] = ()  # exact names or patterns (`seed-*`)
    read_timeout: float | None = None  # None: the global BILLING_PROXY_READ_TIMEOUT
    # BytePlus does not support `caching.prefix` with `max_output_tokens`: refuse before forwarding.
    refuse_prefix_with_max_output_tokens: bool = True
    admin_api_key: str | None = field(default=None, repr=False)  # its Usage and Costs API (reconcile-upstream)
    price_uplift: Decimal = Decimal(0)  # what it adds on list prices: 0.10 for a data-residency endpoint


class Router:
    def __init__(self, default: Upstream, others: tuple[Upstream, ...] = ()):
        self.default = default
        self._by_name = {u.name: u for u in (default, *others)}
        self._exact = {m: u for u in others for m in u.models if not _is_pattern(m)}
        self._patterns = sorted(((m, u) for u in others for m in u.models if _is_pattern(m)),
                                key=lambda mu: (-len(mu[0].replace("*", "")), mu[0]))

    def for_model(self, model: str) -> Upstream:
        if model in self._exact:
            return self._exact[model]
        return next((u for pattern, u in self._patterns if fnmatch.fnmatchcase(model, pattern)), self.default)

    def named(self, name: str) -> Upstream:
        """The upstream that made a response; the default if it is no longer configured."""
        return self._by_name.get(name, self.default)


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")
