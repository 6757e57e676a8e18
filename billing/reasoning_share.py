"""How much a model typically reasons, learnt from the replies it billed, for estimating a
call whose usage never came (a stream cut, an error event, a process that died). Pure.

A reasoning model generates tokens nobody sees before its answer; a call that ended without
usage may have been billed for them. The estimate allows for them from what was observed:
- the visible output relayed (`visible` tokens) at the model's typical share of reasoning in
  its output (reasoning = visible x share / (1 - share)), and
- no less than the reasoning the model typically does in a call (a call cut before its
  answer still reasoned),
never more than the output the admission allowed for (its worst case).

What is learnt can raise the estimate, never lower it: the reasoning a call allows for is
at least `DEFAULT_REASONING_TOKENS` and the share at least `DEFAULT_SHARE`, whatever was
observed. A tenant cannot make a few calls that reason little and then cut a large one to
pay for less than the defaults. Each tenant's figures are its own, per (tenant, model): one
tenant's replies never move another's estimate. A (tenant, model) not seen yet gets the
defaults. At most `MAX_MODELS` models are kept per tenant and `MAX_KEYS` figures in all,
so a tenant naming many models cannot grow memory without bound (a figure not kept is the
defaults). Each process learns on its own, from its own replies; the figures move as an
exponential average, so a few odd replies do not swing them.
"""

from dataclasses import dataclass
from threading import Lock

DEFAULT_REASONING_TOKENS = 4_096
SCALE = 10_000  # shares are kept in parts per ten thousand, integers: no float anywhere here
DEFAULT_SHARE = 5_000  # one half
MAX_SHARE = 9_500  # beyond this one visible token would imply twenty unseen: not evidence enough
WEIGHT = 10  # each new reply moves the averages a tenth of the way
MAX_MODELS = 100  # per tenant
MAX_KEYS = 20_000  # (tenant, model) figures in all


@dataclass
class _Typical:
    reasoning_tokens: int  # never below DEFAULT_REASONING_TOKENS
    share: int  # of the output, per SCALE; never below DEFAULT_SHARE


def _moved(average: int, sample: int) -> int:
    """`average` a tenth of the way to `sample`, rounded to the nearer integer."""
    return average + _divided(sample - average, WEIGHT)


def _divided(a: int, b: int) -> int:
    return (2 * a + b) // (2 * b)


class ReasoningHistory:
    def __init__(self) -> None:
        self._figures: dict[tuple[int | None, str], _Typical] = {}
        self._models_of: dict[int | None, int] = {}  # how many models each tenant has figures for
        self._lock = Lock()

    def observe(self, model: str, output_tokens: int, reasoning_tokens: int, tenant_id: int | None = None) -> None:
        """A reply that reported its usage, of a call of `tenant_id` that reasoned."""
        if output_tokens <= 0 or not 0 <= reasoning_tokens <= output_tokens:
            return
        share = _divided(reasoning_tokens * SCALE, output_tokens)
        key = (tenant_id, model)
        with self._lock:
            typical = self._figures.get(key)
            if typical is None:
                models = self._models_of.get(tenant_id, 0)
                if models >= MAX_MODELS or len(self._figures) >= MAX_KEYS:
                    return
                self._models_of[tenant_id] = models + 1
                self._figures[key] = _Typical(max(DEFAULT_REASONING_TOKENS, reasoning_tokens),
                                              max(DEFAULT_SHARE, share))
                return
            typical.reasoning_tokens = max(DEFAULT_REASONING_TOKENS, _moved(typical.reasoning_tokens, reasoning_tokens))
            typical.share = max(DEFAULT_SHARE, _moved(typical.share, share))

    def allowance(self, model: str, visible_tokens: int, output_cap: int, tenant_id: int | None = None) -> int:
        """Reasoning tokens to estimate for a call of `tenant_id` to `model` that relayed
        `visible_tokens` and was allowed `output_cap` in all: the larger of the per-call
        figure and the share of what was seen, neither below its default, within the cap."""
        typical = self._figures.get((tenant_id, model))
        per_call = max(DEFAULT_REASONING_TOKENS, typical.reasoning_tokens if typical else 0)
        share = min(max(DEFAULT_SHARE, typical.share if typical else 0), MAX_SHARE)
        by_share = _divided(max(visible_tokens, 0) * share, SCALE - share)
        return max(0, min(output_cap - visible_tokens, max(per_call, by_share)))
