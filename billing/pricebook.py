"""Which price applies to a model name at a moment. Pure.

A name resolves, in order: an exact priced model; an exact alias; the most specific
matching pattern (`seed-1-6-*`; the longest pattern wins, so `seed-1-6-flash-*` beats
`seed-1-6-*`). Among a model's versions, the one with the latest `effective_from` not
after the moment wins; versions with the same `effective_from` are ordered by id (the
later one was set later and wins).
"""

import bisect
import fnmatch
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from billing.pricing import PriceVersion


@dataclass(frozen=True)
class ResolvedPrice:
    requested_model: str
    model: str
    version: PriceVersion


class PriceBook:
    def __init__(self, versions: Iterable[PriceVersion], aliases: Mapping[str, str]):
        by_model: dict[str, list[PriceVersion]] = defaultdict(list)
        for version in versions:
            by_model[version.model].append(version)
        self._versions = {
            model: sorted(vs, key=lambda v: (v.effective_from, v.id or 0))
            for model, vs in by_model.items()
        }
        self._starts = {m: [v.effective_from for v in vs] for m, vs in self._versions.items()}
        self._exact_aliases = {a: m for a, m in aliases.items() if not _is_pattern(a)}
        self._patterns = sorted(
            ((a, m) for a, m in aliases.items() if _is_pattern(a)),
            key=lambda am: (-len(am[0].replace("*", "")), am[0]),
        )
        self._resolved: dict[str, str | None] = {}

    @property
    def models(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, model: str) -> list[PriceVersion]:
        return list(self._versions.get(model, ()))

    @property
    def aliases(self) -> dict[str, str]:
        return {**self._exact_aliases, **dict(self._patterns)}

    def resolve_name(self, name: str) -> str | None:
        """The priced model a requested name stands for, or None."""
        if name in self._resolved:
            return self._resolved[name]
        model: str | None
        if name in self._versions:
            model = name
        elif name in self._exact_aliases:
            model = self._exact_aliases[name]
        else:
            model = next((m for p, m in self._patterns if fnmatch.fnmatchcase(name, p)), None)
        if model is not None and model not in self._versions:
            model = None
        if len(self._resolved) < 10_000:  # requested names are few; bound it anyway
            self._resolved[name] = model
        return model

    def version_at(self, model: str, at: datetime) -> PriceVersion | None:
        starts = self._starts.get(model)
        if not starts:
            return None
        index = bisect.bisect_right(starts, at)
        return self._versions[model][index - 1] if index else None

    def resolve(self, name: str, at: datetime) -> ResolvedPrice | None:
        model = self.resolve_name(name)
        if model is None:
            return None
        version = self.version_at(model, at)
        if version is None:
            return None
        return ResolvedPrice(requested_model=name, model=model, version=version)


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")
