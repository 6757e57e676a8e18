"""The shipped o200k_base encoding and the input bound counted in its tokens."""

import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.request_bounds import MAX_COUNTED_CHARS, NOT_READ, content_tokens, read_texts
from billing.tokenizer import (ENCODING_FILE, ENCODING_SHA256, PATTERN, RememberedCounts, count_o200k, o200k_base,
                               text_counter)
from tests.strategies import WIRE_NAMES

TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def test_the_shipped_file_is_the_one_tiktoken_expects():
    assert hashlib.sha256(ENCODING_FILE.read_bytes()).hexdigest() == ENCODING_SHA256
    assert (ENCODING_FILE.parent / "LICENSE").read_text().startswith("MIT License")


def test_it_is_tiktokens_own_encoding(tmp_path, monkeypatch):
    """tiktoken's o200k_base, read from its cache (the shipped file, under the name tiktoken
    caches the download as): the same pre-tokenizer, the same tokens."""
    (tmp_path / hashlib.sha1(TIKTOKEN_URL.encode()).hexdigest()).write_bytes(ENCODING_FILE.read_bytes())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    from tiktoken_ext.openai_public import o200k_base as tiktokens_own
    theirs = tiktokens_own()
    assert theirs["pat_str"] == PATTERN
    assert theirs["mergeable_ranks"] == o200k_base()._mergeable_ranks
    samples = ["hello world", "Schreib mir ein Gedicht über den Herbst.", "天气怎么样？", "def f(x):\n\treturn x ** 2\n",
               '{"type": "object", "properties": {}}', "😀 " * 5, " \n \n\n  "]
    import tiktoken
    encoding = tiktoken.Encoding("theirs", pat_str=theirs["pat_str"], mergeable_ranks=theirs["mergeable_ranks"],
                                 special_tokens={})
    for text in samples:
        assert o200k_base().encode_ordinary(text) == encoding.encode_ordinary(text)


def test_counting_never_reaches_the_network():
    """The encoding loads with `requests` (tiktoken's downloader) unimportable."""
    script = ("import sys; sys.modules['requests'] = None\n"
              "from billing.tokenizer import count_o200k\n"
              "print(count_o200k('hello world'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_counts_worked_by_hand():
    assert count_o200k("") == 0
    assert count_o200k("hello") == 1
    assert count_o200k("x" * 4000) == 500  # runs of one letter merge in eights
    assert count_o200k("<|endoftext|>") > 1  # a special token's name is ordinary text
    assert count_o200k("\ud800 lone surrogate") >= 1  # a JSON `\ud800` escape: counted, never raised


def test_the_models_counted_in_tokens():
    for model in ("gpt-4o", "gpt-4o-mini-2024-07-18", "gpt-4.1-nano", "gpt-5", "gpt-5.1-codex", "gpt-5.6-sol",
                  "o1", "o3-mini", "o4-mini-deep-research", "chatgpt-4o-latest", "ft:gpt-4o-mini:acme::abc123"):
        assert text_counter(model) is count_o200k, model
    for model in ("seed-1-6-250915", "doubao-seed-1-6", "gpt-4", "gpt-3.5-turbo", "gpt-6.2-sol", "o10", "text-embedding-3-small",
                  "claude-x", ""):
        assert text_counter(model) is None, model
    assert text_counter("gpt-5", ()) is None  # an operator may turn it off
    assert text_counter("my-model", ("my-*",)) is count_o200k


texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from([
    "\n" * 50, "\\" * 40, '"' * 30, " " * 80, "\x07\x00\x1f", "a b\n\tc", "😀" * 10, "0123456789" * 5,
    "<|endoftext|>", "gAAAAABo" * 20, "    def f():\n        return 1\n"])
scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) \
    | texts
keys = st.sampled_from(WIRE_NAMES + ("instructions", "encrypted_content", "description")) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
                      max_leaves=40)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=6))
def test_the_token_bound_covers_every_rendering_and_never_exceeds_the_byte_bound(body):
    """Whether the upstream renders what the model reads as raw text (a message) or as JSON
    (a response schema), it is never more tokens than the bound; and the bound in tokens is
    never looser than the one in bytes."""
    read = {key: value for key, value in body.items() if key not in NOT_READ}
    bound = content_tokens(body, count_o200k)
    assert bound <= content_tokens(body)
    assert bound >= count_o200k(json.dumps(read, ensure_ascii=False)[1:-1])
    assert bound >= count_o200k("\n".join(read_texts(read)))


def test_long_strings_counts_are_remembered_within_a_bound_of_characters():
    remembered = RememberedCounts(max_chars=1000)
    texts_ = [f"{n} " + "word " * 60 for n in range(10)]  # about 300 characters each
    assert [remembered.count(t) for t in texts_] == [len(o200k_base().encode_ordinary(t)) for t in texts_]
    assert remembered._chars <= 1000 and len(remembered._counts) == 3  # the three most recent
    assert list(remembered._counts) == texts_[-3:]
    remembered.count(texts_[7])  # used again: now the most recent
    remembered.count(texts_[0])
    assert list(remembered._counts) == [texts_[8], texts_[9], texts_[7], texts_[0]][-3:]
    assert remembered.count("x" * 5000) == 625 and "x" * 5000 not in remembered._counts  # over the bound


def test_counts_agree_from_many_threads():
    remembered = RememberedCounts(max_chars=20_000)
    texts_ = [f"tool {n}: " + "describe the parameters " * (n + 3) for n in range(40)]
    expected = [len(o200k_base().encode_ordinary(t)) for t in texts_]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(remembered.count, texts_)) == expected
    assert remembered._chars == sum(len(t) for t in remembered._counts) <= 20_000


def test_a_very_long_string_is_bounded_by_its_bytes_not_counted():
    """BPE slows down on a long run without a break: past MAX_COUNTED_CHARS, bytes bound it."""
    def counter(text: str) -> int:
        assert len(text) <= MAX_COUNTED_CHARS
        return count_o200k(text)
    body = {"input": [{"role": "user", "content": "a" * (MAX_COUNTED_CHARS + 1)}, {"role": "user", "content": "hi"}]}
    by_tokens = 64 + 3 + 4 + (4 + (3 + 4 + 3) + (3 + 4 + 2 + MAX_COUNTED_CHARS + 1)) + (4 + (3 + 4 + 3) + (3 + 4 + 3))
    assert content_tokens(body, counter) == min(by_tokens, content_tokens(body))
