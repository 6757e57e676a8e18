"""What a model does when a request says nothing: whether it reasons by default, and whether
a request turned its reasoning off. Pure: a name or a JSON value in, a boolean out.

A call that reasons may have billed unseen reasoning tokens; an estimate after the fact
(`billing.reasoning_share`) allows for them. Models that reason without being asked:
- OpenAI's GPT-5 and later (gpt-5, gpt-5-mini, gpt-5.1 ... gpt-5.6, the codex and pro
  variants, gpt-6*), except `gpt-5-chat` (the non-reasoning model behind ChatGPT); the
  o-series (o1, o3, o3-mini, o4-mini, o3-pro, ...); codex-mini; gpt-oss (always reasons:
  its efforts are low, medium and high, none of them off).
  OpenAI's reference says gpt-5.1 (and, as SDKs document, 5.2 and 5.4) default to effort
  `none`, which does not reason: counting them here allows for reasoning that a request
  naming no effort did not do. That is the side this errs on (an estimate may bill a cut
  call for reasoning it skipped, never leave unbilled reasoning it did); the allowance stays
  under the call's output cap.
- BytePlus Seed 1.6 and later (seed-1-6, seed-1-6-flash, seed-1-6-thinking, seed-1-6-vision,
  seed-1-8, seed-2-0-*, with or without a `bytedance-`, `doubao-` or `dola-` prefix).
  Conclusion: Seed models think unless told not to. BytePlus's Chat API reference gives
  `thinking` the default value `{"type":"enabled"}` and `reasoning_effort` the default
  `medium` (`minimal` turns reasoning off) (https://docs.byteplus.com/en/docs/Byteplus_LAS/Chat_API);
  ModelArk's model list files seed-2-0-pro/lite/mini and seed-1-8 under "Deep reasoning"
  (https://docs.byteplus.com/en/docs/modelark/1330310); `thinking.type` takes `enabled`,
  `disabled` or `auto` (the model decides; seed-1-6 only), and `auto` is a choice a request
  makes, not the default. seed-1-6-thinking cannot turn thinking off. DeepSeek-R1, served
  by ModelArk too, always reasons.
Names are matched case-insensitively, with a dated snapshot (`gpt-5-2025-08-07`,
`seed-1-6-250915`) or a fine-tune (`ft:gpt-5-mini:org::id`) as its base model.
"""

import re
from collections.abc import Mapping
from typing import Any

# ASCII digits, a few of them: `int` of a hostile name's thousand digits would raise
_GPT = re.compile(r"gpt-([0-9]{1,3})(?:\.[0-9]{1,3})?(?:-.*)?", re.DOTALL)
_NOT_REASONING_GPT = re.compile(r"gpt-5-chat(?:-.*)?", re.DOTALL)  # gpt-5-chat-latest
_ALWAYS = re.compile(r"o[0-9]{1,3}(?:-.*)?|codex-mini(?:-.*)?|gpt-oss(?:-.*)?|deepseek-r1(?:-.*)?", re.DOTALL)
_SEED = re.compile(r"(?:bytedance-|doubao-|dola-)?seed-([0-9]{1,3})[-.]([0-9]{1,3})(?:-.*)?", re.DOTALL)
FIRST_REASONING_GPT = 5
FIRST_THINKING_SEED = (1, 6)


def _base(model: str) -> str:
    """`ft:gpt-5-mini:org::id` as `gpt-5-mini`; a `vendor/` prefix dropped; lower case."""
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    return name.rsplit("/", 1)[-1]


def reasons_by_default(model: str) -> bool:
    """The model reasons when a request names no reasoning at all."""
    if not isinstance(model, str):
        return False
    name = _base(model)
    if _ALWAYS.fullmatch(name):
        return True
    gpt = _GPT.fullmatch(name)
    if gpt:
        return int(gpt.group(1)) >= FIRST_REASONING_GPT and not _NOT_REASONING_GPT.fullmatch(name)
    seed = _SEED.fullmatch(name)
    if seed:
        return (int(seed.group(1)), int(seed.group(2))) >= FIRST_THINKING_SEED and "embedding" not in name
    return False


def reasoning_turned_off(payload: Any) -> bool:
    """The request turned reasoning off explicitly: `reasoning: {effort: "none"}`,
    `reasoning_effort: "none"`, or BytePlus `thinking: {type: "disabled"}`. Any JSON value
    is accepted anywhere: what is not the expected shape turns nothing off."""
    if not isinstance(payload, Mapping):
        return False
    reasoning, thinking = payload.get("reasoning"), payload.get("thinking")
    return (_is(payload.get("reasoning_effort"), "none")
            or (isinstance(reasoning, Mapping) and _is(reasoning.get("effort"), "none"))
            or (isinstance(thinking, Mapping) and _is(thinking.get("type"), "disabled")))


def _is(value: Any, expected: str) -> bool:
    return isinstance(value, str) and value == expected
