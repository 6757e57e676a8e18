"""Reconciliation: compare sums that must agree, and say where they do not. Pure."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping


@dataclass(frozen=True)
class Difference:
    what: str  # e.g. "rollup tenant=3 key=7 model=gpt-4o day=2026-11-02"
    field: str
    expected: Any  # from the raw ledger entries
    found: Any

    def __str__(self) -> str:
        return f"{self.what}: {self.field} is {self.found} where the ledger entries say {self.expected}"


def compare(expected: Mapping[Any, Mapping[str, Any]], found: Mapping[Any, Mapping[str, Any]],
            label) -> list[Difference]:
    """Every key and field of both sides; a key missing on one side counts as zeros."""
    differences = []
    for key in sorted(set(expected) | set(found), key=str):
        want, have = expected.get(key, {}), found.get(key, {})
        for field in sorted(set(want) | set(have)):
            a, b = want.get(field, 0) or 0, have.get(field, 0) or 0
            if Decimal(a) != Decimal(b):
                differences.append(Difference(label(key), field, a, b))
    return differences
