"""How much a model typically reasons, learnt from the replies it billed, for estimating a
call whose usage never came (a stream cut, an error event, a process that died). Pure.

A reasoning model generates tokens nobody sees before its answer; a call that ended without
usage may have been billed for them. The estimate allows for them from what was observed:
- the visible output relayed (`visible` tokens) at the model's typical share of reasoning in
  its output (reasoning = visible x share / (1 - share)), and
- no less than the reasoning the model typically does in a call (a call cut before its
  answer still reasoned),
never more than the output the admission allowed for (its worst case). A model not seen yet
is assumed to reason `DEFAULT_REASONING_TOKENS` a call, at `DEFAULT_SHARE` of its output.
Each process learns on its own, from its own replies; the figures move as an exponential
average, so a few odd replies do not swing them.
"""

from dataclasses import dataclass
from threading import Lock

DEFAULT_REASONING_TOKENS = 4_096
SCALE = 10_000  # shares are kept in parts per ten thousand, integers: no float anywhere here
DEFAULT_SHARE = 5_000  # one half
MAX_SHARE = 9_500  # beyond this one visible token would imply twenty unseen: not evidence enough
WEIGHT = 10  # each new reply moves the averages a tenth of the way
MAX_MODELS = 1_000


@dataclass
class _Typical:
    reasoning_tokens: int
    share: int  # of the output, per SCALE


def _moved(average: int, sample: int) -> int:
    """`average` a tenth of the way to `sample`, rounded to the nearer integer."""
    return average + _divided(sample - average, WEIGHT)


def _divided(a: int, b: int) -> int:
    return (2 * a + b) // (2 * b)


class ReasoningHistory:
    def __init__(self) -> None:
        self._models: dict[str, _Typical] = {}
        self._lock = Lock()

    def observe(self, model: str, output_tokens: int, reasoning_tokens: int) -> None:
        """A reply that reported its usage, of a call that reasoned."""
        if output_tokens <= 0 or not 0 <= reasoning_tokens <= output_tokens:
            return
        share = _divided(reasoning_tokens * SCALE, output_tokens)
        with self._lock:
            typical = self._models.get(model)
            if typical is None:
                if len(self._models) >= MAX_MODELS:
                    return
                self._models[model] = _Typical(reasoning_tokens, share)
                return
            typical.reasoning_tokens = _moved(typical.reasoning_tokens, reasoning_tokens)
            typical.share = _moved(typical.share, share)

    def allowance(self, model: str, visible_tokens: int, output_cap: int) -> int:
        """Reasoning tokens to estimate for a call of `model` that relayed `visible_tokens`
        and was allowed `output_cap` in all."""
        typical = self._models.get(model)
        per_call = typical.reasoning_tokens if typical else DEFAULT_REASONING_TOKENS
        share = min(typical.share if typical else DEFAULT_SHARE, MAX_SHARE)
        by_share = _divided(visible_tokens * share, SCALE - share)
        return max(0, min(output_cap - visible_tokens, max(per_call, by_share)))
