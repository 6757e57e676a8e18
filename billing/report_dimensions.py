"""What a report groups by: the ledger's own columns, the end user, and a tag's values. Pure.

`--by tag:project,model` becomes ("tag:project", "model"). A report row carries one key per
dimension (`user`, `tag:project`); an entry without an end user, or without that tag, is
grouped under None, so that a report's rows always add up to the whole ledger.

Where a report reads from (`source_for`): the daily roll-up serves the ledger's columns,
the user roll-up those with `user`, the tag roll-up those with one `tag:NAME`; any other
grouping (`user` with a tag, two tags) scans the entries: correct, only slower.
"""

from billing.attribution import is_tag_name

COLUMNS = ("tenant", "key", "model", "service_tier", "day")  # what the daily roll-up is keyed by
USER = "user"
TAG = "tag:"
MAX_DIMENSIONS = 8
NONE_SHOWN = "(none)"  # how a table shows the group of entries without a user or that tag
DAILY, USERS, TAGS, SCAN = "daily", "users", "tags", "scan"


def tag_name(dimension: str) -> str | None:
    """`tag:NAME` -> NAME; None for any other dimension."""
    return dimension[len(TAG):] if dimension.startswith(TAG) else None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def parse_dimensions(text: str | None) -> tuple[str, ...]:
    """`--by` text as dimensions, in order, each once. Tag names follow the rules of the
    `X-Billing-Tags` header (letters, digits and `_ . : -`, at most 64)."""
    if not text:
        return ()
    dims = tuple(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    for dim in dims:
        name = tag_name(dim)
        if name is not None and not is_tag_name(name):
            raise ValueError(f"cannot group by tag {_shown(name)}: a tag name is 1 to 64 letters, digits or _ . : -")
        if name is None and dim not in COLUMNS and dim != USER:
            raise ValueError(f"cannot group by {_shown(dim)}; choose from {', '.join(COLUMNS)}, user, tag:NAME")
    if len(dims) > MAX_DIMENSIONS:
        raise ValueError(f"group by at most {MAX_DIMENSIONS} dimensions, not {len(dims)}")
    return dims


def source_for(by: tuple[str, ...]) -> str:
    """Which table answers a report grouped by `by` (DAILY, USERS, TAGS or SCAN)."""
    extra = [d for d in by if d not in COLUMNS]
    if not extra:
        return DAILY
    if extra == [USER]:
        return USERS
    if len(extra) == 1 and tag_name(extra[0]) is not None:
        return TAGS
    return SCAN


def shown(value: object) -> object:
    """A group value as a table shows it: None (no user, no such tag) as a placeholder."""
    return NONE_SHOWN if value is None else value
