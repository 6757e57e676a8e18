"""Which price applies to a model name at a moment, and, for a name with none, the priced
names nearest to it. Pure.

A name resolves, in order: an exact priced model; an exact alias; the most specific
matching pattern (`seed-1-6-*`; the longest pattern wins, so `seed-1-6-flash-*` beats
`seed-1-6-*`); and last the default price (model `*`) when the operator set one. Among a
model's versions, the one with the latest `effective_from` not after the moment wins;
versions with the same `effective_from` are ordered by id (the later one was set later
and wins). A tenant's own versions of a model, when one is in force, set what that tenant
is charged; the general version still gives the upstream cost.
"""

import bisect
import fnmatch
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from billing.pricing import PriceVersion


DEFAULT_MODEL = "*"


@dataclass(frozen=True)
class NameMatch:
    """How a requested name finds its price (`prices resolve`), or why it finds none."""

    name: str
    model: str | None  # the priced model; None: not priced
    matched_by: str  # model | alias | pattern | default | none
    alias: str | None = None  # the alias or pattern that matched
    version: PriceVersion | None = None  # in force at the moment asked about
    tenant_version: PriceVersion | None = None
    reason: str | None = None  # why there is no price


@dataclass(frozen=True)
class ResolvedPrice:
    requested_model: str
    model: str
    version: PriceVersion  # the upstream's price: what the call costs us
    tenant_version: PriceVersion | None = None  # the tenant's own price, if it has one


class PriceBook:
    def __init__(self, versions: Iterable[PriceVersion], aliases: Mapping[str, str]):
        by_owner: dict[tuple[int | None, str], list[PriceVersion]] = defaultdict(list)
        for version in versions:
            by_owner[(version.tenant_id, version.model)].append(version)
        self._by_owner = {
            owner: sorted(vs, key=lambda v: (v.effective_from, v.id or 0)) for owner, vs in by_owner.items()
        }
        self._starts = {owner: [v.effective_from for v in vs] for owner, vs in self._by_owner.items()}
        self._versions = {model: vs for (tenant, model), vs in self._by_owner.items() if tenant is None}
        self._exact_aliases = {a: m for a, m in aliases.items() if not _is_pattern(a)}
        self._patterns = sorted(
            ((a, m) for a, m in aliases.items() if _is_pattern(a)),
            key=lambda am: (-len(am[0].replace("*", "")), am[0]),
        )
        self._resolved: dict[str, str | None] = {}
        self._nearest: dict[tuple[str, int], list[str]] = {}

    @property
    def models(self) -> list[str]:
        return sorted(self._versions)

    @property
    def names(self) -> list[str]:
        """Every name a client can send as it is: priced models and exact aliases (not patterns,
        nor the default price `*`)."""
        return sorted((set(self._versions) | set(self._exact_aliases)) - {DEFAULT_MODEL})

    def versions(self, model: str, tenant_id: int | None = None) -> list[PriceVersion]:
        return list(self._by_owner.get((tenant_id, model), ()))

    def all_versions(self) -> list[PriceVersion]:
        return [v for vs in self._by_owner.values() for v in vs]

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
        if model is None and DEFAULT_MODEL in self._versions:
            model = DEFAULT_MODEL
        if len(self._resolved) < 10_000:  # requested names are few; bound it anyway
            self._resolved[name] = model
        return model

    def nearest_priced(self, name: object, limit: int = 3) -> list[str]:
        """The priced names (models and exact aliases) nearest to an unpriced `name`, nearest
        first (`nearest_names`); none when nothing shares its family (or `name` is no string)."""
        if not isinstance(name, str):
            return []
        if (name, limit) not in self._nearest:
            found = nearest_names(name, self.names, limit)
            if len(self._nearest) >= 10_000:  # a flood of made-up names must not grow it
                return found
            self._nearest[(name, limit)] = found
        return list(self._nearest[(name, limit)])

    def aliases_of(self, model: str) -> list[str]:
        """The exact aliases, then the patterns, that point at `model`."""
        return sorted(a for a, m in self._exact_aliases.items() if m == model) + \
            [p for p, m in self._patterns if m == model]

    def explain(self, name: str, at: datetime, tenant_id: int | None = None) -> NameMatch:
        """The steps of `resolve`, named: which rule matched `name`, and the version in force."""
        matched_by, alias, model = "none", None, None
        if name in self._versions:
            matched_by, model = "model", name
        elif name in self._exact_aliases:
            matched_by, alias, model = "alias", name, self._exact_aliases[name]
        else:
            alias = next((p for p, _ in self._patterns if fnmatch.fnmatchcase(name, p)), None)
            if alias is not None:
                matched_by, model = "pattern", dict(self._patterns)[alias]
        unpriced = None
        if model is not None and model not in self._versions:
            unpriced = f"the {matched_by} {alias!r} points at {model!r}, which has no price"
            matched_by, model = "none", None
        if model is None and DEFAULT_MODEL in self._versions:
            matched_by, model = "default", DEFAULT_MODEL
        if model is None:
            return NameMatch(name, None, "none", alias, reason=unpriced or (
                "no priced model, alias or pattern matches it, and no default price (model '*') is set"))
        version = self.version_at(model, at)
        if version is None:
            first = self._versions[model][0].effective_from.isoformat()
            return NameMatch(name, None, matched_by, alias, reason=f"{model!r} has no price in force at "
                             f"{at.isoformat()}: its first version starts at {first}")
        tenant_version = self.version_at(model, at, tenant_id) if tenant_id is not None else None
        return NameMatch(name, model, matched_by, alias, version, tenant_version)

    def version_at(self, model: str, at: datetime, tenant_id: int | None = None) -> PriceVersion | None:
        starts = self._starts.get((tenant_id, model))
        if not starts:
            return None
        index = bisect.bisect_right(starts, at)
        return self._by_owner[(tenant_id, model)][index - 1] if index else None

    def resolve(self, name: str, at: datetime, tenant_id: int | None = None) -> ResolvedPrice | None:
        model = self.resolve_name(name)
        if model is None:
            return None
        version = self.version_at(model, at)
        if version is None:
            return None
        tenant_version = self.version_at(model, at, tenant_id) if tenant_id is not None else None
        return ResolvedPrice(requested_model=name, model=model, version=version, tenant_version=tenant_version)


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


_TOKENS = re.compile(r"[0-9]+|[^\W\d_]+")  # runs of digits, runs of letters: gpt-4o -> gpt 4 o


def _tokens(name: str) -> list[int | str]:
    """A name's parts, split on anything but letters and digits (`-`, `.`, `/`, ...) and
    where letters and digits meet; numbers as numbers, so 6.10 comes after 6.9."""
    # int() of 4,300 digits fails; '²' is a digit to isdigit(), but not to the pattern
    return [int(t[:18]) if "0" <= t[0] <= "9" else t for t in _TOKENS.findall(name.lower())]


def _nearness(wanted: list[int | str], candidate: list[int | str]) -> tuple | None:
    """How far `candidate` is from `wanted` (smaller is nearer), None if not of its family
    (they must share their first part). In order: how many variant words (`sol`, `mini`,
    `codex`: every word but the first) differ; the longest shared prefix; then, at the first
    version number they differ in, an earlier version before a later one (a new model is
    most often priced from its predecessor), the closer first, and among earlier ones the
    latest (6.1.9 before 6.1)."""
    if not candidate or candidate[0] != wanted[0]:
        return None
    variant = {t for t in wanted[1:] if isinstance(t, str)} ^ {t for t in candidate[1:] if isinstance(t, str)}
    shared = next((i for i, (a, b) in enumerate(zip(wanted, candidate)) if a != b), min(len(wanted), len(candidate)))
    mine = [t for t in wanted if isinstance(t, int)]
    theirs = [t for t in candidate if isinstance(t, int)]
    version: tuple = (False, 0, ())
    for i in range(max(len(mine), len(theirs))):
        a, b = (mine[i] if i < len(mine) else 0), (theirs[i] if i < len(theirs) else 0)
        if a != b:
            rest = theirs[i + 1:i + 9] + [0] * (8 - len(theirs[i + 1:i + 9]))  # the parts after, padded
            version = (b > a, abs(a - b), tuple(rest) if b > a else tuple(-x for x in rest))
            break
    return len(variant), -shared, version, len(candidate)


def nearest_names(name: object, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The `limit` candidates nearest to `name` by family (see `_nearness`), nearest first:
    `gpt-6.2-sol` is nearest to `gpt-6.1-sol`, then `gpt-6-sol`, `gpt-6.3-sol`, and only
    then `gpt-6.2` (another variant)."""
    if not isinstance(name, str) or limit < 1:
        return []
    wanted = _tokens(name)
    if not wanted:
        return []
    ranked = []
    for candidate in candidates:
        if candidate == name or candidate == DEFAULT_MODEL:
            continue
        near = _nearness(wanted, _tokens(candidate))
        if near is not None:
            ranked.append((near, candidate))
    return [candidate for _, candidate in sorted(ranked)[:limit]]
