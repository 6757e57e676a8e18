"""Token counts for the models whose tokenizer ships with billing-proxy. Pure.

OpenAI's `o200k_base` encoding (GPT-4o, GPT-4.1, GPT-4.5, GPT-5 and the o-series) is in
the package (`billing/tokenizers/o200k_base.tiktoken`, MIT, from tiktoken), checked
against the SHA-256 tiktoken expects, and loaded on first use: nothing is downloaded.
Other models (BytePlus Seed, unknown names) have no known tokenizer here, and their input
stays bounded by its bytes.
"""

import fnmatch
import threading
from collections import OrderedDict
from functools import cache, lru_cache
from pathlib import Path
from typing import Callable

import tiktoken
from tiktoken.load import load_tiktoken_bpe

ENCODING_FILE = Path(__file__).parent / "tokenizers" / "o200k_base.tiktoken"
ENCODING_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # tiktoken_ext/openai_public.py
# The encoding's pre-tokenizer, as tiktoken defines it (tests check it still matches).
PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
# Model names OpenAI serves with o200k_base (tiktoken's own table), fine-tunes of them included.
O200K_MODELS = ("gpt-4o*", "chatgpt-4o*", "gpt-4.1*", "gpt-4.5*", "gpt-5*", "o1", "o1-*", "o3", "o3-*",
                "o4-mini*", "codex-mini*", "gpt-oss*", "ft:gpt-4o*", "ft:gpt-4.1*", "ft:gpt-5*", "ft:o4-mini*")


@cache
def o200k_base() -> tiktoken.Encoding:
    """The encoding, read once (about 0.2 s) from the file in the package."""
    ranks = load_tiktoken_bpe(str(ENCODING_FILE), expected_hash=ENCODING_SHA256)
    return tiktoken.Encoding("o200k_base", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})


def count_o200k(text: str) -> int:
    """Tokens of `text` as ordinary text (a special token's name is text too, as the
    upstream treats it)."""
    if len(text) < REMEMBERED_FROM:
        return len(o200k_base().encode_ordinary(text))
    return REMEMBERED.count(text)


class RememberedCounts:
    """Counts of long strings, the least recently used forgotten first once they hold more
    than `max_chars` characters: agents send the same instructions and tool descriptions on
    every turn. Safe to share between threads (a large body is counted off the event loop)."""

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        with self._lock:
            known = self._counts.get(text)
            if known is not None:
                self._counts.move_to_end(text)
                return known
        tokens = len(o200k_base().encode_ordinary(text))
        if len(text) <= self.max_chars:
            with self._lock:
                if text not in self._counts:
                    self._counts[text] = tokens
                    self._chars += len(text)
                while self._chars > self.max_chars:
                    forgotten, _ = self._counts.popitem(last=False)
                    self._chars -= len(forgotten)
        return tokens

    def forget(self) -> None:
        with self._lock:
            self._counts.clear()
            self._chars = 0


REMEMBERED_FROM = 64  # characters: a shorter string is counted again each time (it is fast)
REMEMBERED = RememberedCounts(max_chars=8_000_000)


@lru_cache(maxsize=1024)  # names are priced ones, but aliases' patterns let a client vary them
def text_counter(model: str, patterns: tuple[str, ...] = O200K_MODELS) -> Callable[[str], int] | None:
    """How to count the tokens of a model's text; None where its tokenizer is not known."""
    return count_o200k if any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns) else None
