"""What reading a call's attribution costs on the request path, in microseconds per call:
`attribution_of` (end user, tags, run) and `scoped_arguments` (what admission weighs) on
the bodies and headers real clients send, beside parsing the same body (orjson), in
alternating rounds so that drift on a noisy machine falls on all alike.

    python bench/attribution_cost.py [--rounds 5] [--number 20000]
"""

import argparse
import statistics
import sys
import timeit
from pathlib import Path

import orjson
from multidict import CIMultiDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.attribution import AttributionRules, attribution_of  # noqa: E402
from billing.budgets import scoped_arguments  # noqa: E402

PLAIN = {"model": "gpt-5-mini", "input": "Say hello.", "max_output_tokens": 64}
CASES = {
    "nothing to read": (PLAIN, {}),
    "safety_identifier": ({**PLAIN, "safety_identifier": "user-8f14e45f"}, {}),
    "user + 4 metadata pairs": ({**PLAIN, "user": "alice@example.com",
                                 "metadata": {"project": "search", "env": "prod", "team": "ranking",
                                              "run": "eval-17"}}, {}),
    "16 metadata pairs + headers": ({**PLAIN, "metadata": {f"key{n}": f"value-{n}" for n in range(16)}},
                                    {"X-Billing-User": "bob", "X-Billing-Tags": "project=search,env=prod",
                                     "X-Billing-Budget": "budget_abc123"}),
}
HASHED = AttributionRules(user_hash_key=b"k" * 32)


def per_call_us(statement, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=3)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    budgeted = ("user", "tag:project")
    print(f"{'case':<30}{'parse body µs':>15}{'attribution µs':>16}{'hashed user µs':>16}{'+ scoped µs':>13}")
    for name, (body, header_values) in CASES.items():
        raw, headers = orjson.dumps(body), CIMultiDict(header_values)
        rows: dict[str, list[float]] = {"parse": [], "plain": [], "hashed": [], "scoped": []}

        def scoped():
            found = attribution_of(body, headers)
            scoped_arguments(budgeted, found.user, found.tags, found.run)

        timed = {"parse": lambda: orjson.loads(raw), "plain": lambda: attribution_of(body, headers),
                 "hashed": lambda: attribution_of(body, headers, HASHED), "scoped": scoped}
        for round_ in range(args.rounds):
            order = list(timed) if round_ % 2 == 0 else list(timed)[::-1]
            for which in order:
                rows[which].append(per_call_us(timed[which], args.number))
        median = {which: statistics.median(values) for which, values in rows.items()}
        print(f"{name:<30}{median['parse']:>15.2f}{median['plain']:>16.2f}{median['hashed']:>16.2f}"
              f"{median['scoped']:>13.2f}")


if __name__ == "__main__":
    main()
