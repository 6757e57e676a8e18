"""How much the input bound overstates, by bytes and by o200k_base tokens, on the corpus of
real requests (tests/corpus: bodies as the official SDKs, the Agents SDK, LangChain, the
Vercel AI SDK and the Codex CLI sent them), and what counting tokens costs.

For each body: the bound in bytes, the bound in tokens, and two references, both in
o200k_base tokens of what the model reads (the fields `billing.request_bounds` counts):
- `text`: its strings, one after another (how a message's text is rendered);
- `json`: the same, rendered as JSON (how a response schema is).
The upstream bills about `text` plus a few template tokens per message; a bound divided by
`text` is what it overstates at most. Both bounds are shown as the estimate uses them
(never above the body's bytes). Then the time `request_bounds` takes per body, by bytes and
by tokens (first with nothing remembered, then again: agents resend the same long
instructions and tools each turn), measured in alternating rounds.

    python bench/input_bounds.py [--rounds 30]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.request_bounds import NOT_READ, content_tokens, read_texts, request_bounds  # noqa: E402
from billing.tokenizer import REMEMBERED, count_o200k, o200k_base  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def timed(body: dict, count, rounds: int, cold: bool = False) -> float:
    """Median seconds of one `request_bounds` over `rounds` runs; `cold`: with no long
    string's count remembered from an earlier call."""
    runs = []
    for _ in range(rounds):
        if cold:
            REMEMBERED.forget()
        started = time.perf_counter()
        request_bounds(body, "responses", 0, count)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed runs per body and mode (default 30)")
    args = parser.parse_args()
    o200k_base()  # loaded before anything is timed
    rows = []
    for path in sorted(CORPUS.glob("*/*.json")):
        body = json.loads(path.read_text())["body"]
        read = {key: value for key, value in body.items() if key not in NOT_READ}
        text = count_o200k("".join(read_texts(read)))
        rendered = count_o200k(json.dumps(read, ensure_ascii=False))
        # as the estimate uses them: never more than the body's bytes
        body_bytes = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        by_bytes, by_tokens = (min(body_bytes, content_tokens(body, count)) for count in (None, count_o200k))
        times = [0.0, 0.0, 0.0]
        for _ in range(2):  # alternate the modes, twice over
            times[0] += timed(body, None, args.rounds)
            times[1] += timed(body, count_o200k, args.rounds, cold=True)
            times[2] += timed(body, count_o200k, args.rounds)
        rows.append((str(path.relative_to(CORPUS).with_suffix("")), body_bytes, text, rendered, by_bytes,
                     by_tokens, times[0] / 2, times[1] / 2, times[2] / 2))
    print(f"{'request':48} {'text':>5} {'json':>5} {'bytes':>5} {'tokens':>6} {'bytes/text':>10} "
          f"{'tokens/text':>11} {'µs bytes':>8} {'µs tokens':>9} {'(again)':>7}")
    for name, _, text, rendered, by_bytes, by_tokens, t_bytes, t_tokens, t_again in rows:
        print(f"{name:48} {text:5} {rendered:5} {by_bytes:5} {by_tokens:6} {by_bytes / text:10.2f} "
              f"{by_tokens / text:11.2f} {t_bytes * 1e6:8.0f} {t_tokens * 1e6:9.0f} {t_again * 1e6:7.0f}")
    totals = [sum(row[i] for row in rows) for i in (2, 3, 4, 5)]
    print(f"\n{len(rows)} requests, {sum(r[1] for r in rows):,} bytes of bodies")
    print(f"all together: text {totals[0]:,} tokens, json {totals[1]:,}; bound by bytes {totals[2]:,} "
          f"({totals[2] / totals[0]:.2f}x text), by tokens {totals[3]:,} ({totals[3] / totals[0]:.2f}x text)")
    ratios_bytes = [r[4] / r[2] for r in rows]
    ratios_tokens = [r[5] / r[2] for r in rows]
    print(f"per request, bound / text: by bytes median {statistics.median(ratios_bytes):.2f}x "
          f"(max {max(ratios_bytes):.2f}x), by tokens median {statistics.median(ratios_tokens):.2f}x "
          f"(max {max(ratios_tokens):.2f}x)")
    large = [r for r in rows if r[2] >= 1000]
    for name, _, text, _, by_bytes, by_tokens, t_bytes, t_tokens, t_again in large:
        print(f"{name}: by bytes {by_bytes / text:.2f}x text, by tokens {by_tokens / text:.2f}x; "
              f"counting took {t_tokens * 1e3:.2f} ms ({t_again * 1e3:.2f} ms with its long strings counted "
              f"before) against {t_bytes * 1e3:.2f} ms by bytes")
    print(f"time, all requests: by tokens {sum(r[7] for r in rows) / sum(r[6] for r in rows):.1f}x by bytes, "
          f"{sum(r[8] for r in rows) / sum(r[6] for r in rows):.1f}x with long strings counted before")


if __name__ == "__main__":
    main()
