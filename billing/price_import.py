"""What importing a price source would change in the price book. Pure.

An import only ever adds versions; it never edits or removes one, and never re-prices an
entry. For each model of the source:
- a model the book does not price is **new**: all of the source's versions, at its dates;
- a model it prices gets the source's versions dated after the book's newest version of it,
  at their dates. The source's price in force now, when it differs from the book's and is
  dated at or before the book's newest version, becomes a version from the import itself:
  a date already covered is never given a second version;
- a model whose newest version an operator set (`prices set`, the admin API) is **held**:
  a correction is kept until the operator asks for the source's price (`replace_corrections`).
A version equal to the one in force at its date is no change, so a second import adds nothing.
The source's names for a model (aliases, patterns) are added where the book has no other
meaning for them.
"""

import fnmatch
from dataclasses import dataclass, replace
from datetime import datetime

from billing.price_source import SourceBook, SourceModel
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion

OPERATOR_SOURCES = frozenset({"cli", "admin-api"})  # versions an operator set by hand


@dataclass(frozen=True)
class Change:
    model: str
    kind: str  # new_model | new_price | held
    version: PriceVersion | None  # what would be written (None: held)
    replaces: PriceVersion | None = None  # the book's version in force at its date
    note: str = ""


@dataclass(frozen=True)
class ImportPlan:
    source: str
    changes: tuple[Change, ...]
    aliases: tuple[tuple[str, str], ...]  # (alias, model) to add
    unchanged: int  # models the source and the book agree on
    skipped: tuple[tuple[str, str], ...]  # (model, what the book cannot hold)

    @property
    def versions(self) -> list[PriceVersion]:
        return [change.version for change in self.changes if change.version is not None]


def plan_import(book: PriceBook, source: SourceBook, now: datetime, *, models: str | None = None,
                skip: tuple[str, ...] = (), replace_corrections: bool = False) -> ImportPlan:
    """What importing `source` into `book` at `now` adds; `models`: only names matching this
    pattern (`gpt-5*`); `skip`: none matching these."""
    changes: list[Change] = []
    aliases: list[tuple[str, str]] = []
    unchanged = 0
    def wanted(name: str) -> bool:
        return (models is None or fnmatch.fnmatchcase(name, models)) and not any(
            fnmatch.fnmatchcase(name, pattern) for pattern in skip)
    chosen = [m for m in source.models if wanted(m.model)]
    known_names = set(book.models) | set(book.aliases)
    for model in chosen:
        found = _changes(book, model, now, replace_corrections)
        changes.extend(found)
        unchanged += not found
        aliases.extend((alias, model.model) for alias in model.aliases if alias not in known_names)
        known_names.update(model.aliases)
    skipped = [(m.model, ", ".join(m.skipped)) for m in chosen if m.skipped]
    skipped += [(name, why) for name, why in source.skipped_models if wanted(name)]
    return ImportPlan(source=source.source, changes=tuple(changes), aliases=tuple(sorted(aliases)),
                      unchanged=unchanged, skipped=tuple(sorted(skipped)))


def _changes(book: PriceBook, model: SourceModel, now: datetime, replace_corrections: bool) -> list[Change]:
    existing = book.versions(model.model)
    if not existing:
        return [Change(model.model, "new_model", version) for version in model.versions]
    newest = existing[-1]
    later = [v for v in model.versions if v.effective_from > newest.effective_from]
    covered = [v for v in model.versions if v.effective_from <= newest.effective_from]
    # The source's price at the book's newest date, if it is still in force now, applies from
    # the import (its own date is one the book already covers).
    still_in_force = covered and (not later or later[0].effective_from > now)
    schedule = ([replace(covered[-1], effective_from=max(now, newest.effective_from))] if still_in_force else []) \
        + later
    changes, in_force = [], None
    for version in sorted(schedule, key=lambda v: v.effective_from):
        current = in_force or book.version_at(model.model, version.effective_from) or newest
        version = with_kept_settings(version, current)
        if same_prices(current, version):
            continue
        if newest.source in OPERATOR_SOURCES and not replace_corrections:
            return [Change(model.model, "held", None, newest,
                           note=f"an operator set its price (version {newest.id}); --replace-corrections takes the source's")]
        changes.append(Change(model.model, "new_price", version, current))
        in_force = version
    return changes


def same_prices(a: PriceVersion, b: PriceVersion) -> bool:
    """Two versions bill every usage alike (what a version's source and date say aside)."""
    return (a.tiers, dict(a.service_tiers), dict(a.tools)) == (b.tiers, dict(b.service_tiers), dict(b.tools)) \
        and a.cache_storage == b.cache_storage


def with_kept_settings(version: PriceVersion, kept: PriceVersion | None) -> PriceVersion:
    """An imported version keeps what the source does not say and the book does: the model's
    output cap, the prices of tools and service tiers the source leaves out, cache storage."""
    if kept is None:
        return version
    return replace(version, max_output_tokens=version.max_output_tokens or kept.max_output_tokens,
                   tools={**kept.tools, **version.tools}, service_tiers={**kept.service_tiers, **version.service_tiers},
                   cache_storage=version.cache_storage if version.cache_storage is not None else kept.cache_storage)
