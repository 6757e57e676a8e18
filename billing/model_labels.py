"""A model name a client sent, as a label an operator may count by. Pure.

The name is the client's: a hostile one could be long, unprintable, made to break a
metrics line, or new on every call. So a name is kept as itself only when it reads like a
model name, and only the first `MAX_DISTINCT` such names are kept apart; every other one
is counted as `OTHER`.
"""

import re

OTHER = "other"
MAX_LABEL_CHARS = 128
MAX_DISTINCT = 100

# visible ASCII without quotes, backslashes or backticks: nothing a metrics line, a page or
# a shell command would read as anything but text
_READABLE = re.compile(r"[!#-&(-\[\]-_a-~]{1,%d}" % MAX_LABEL_CHARS)


def model_label(value: object) -> str:
    """`value` itself when it reads as a model name, else `OTHER`."""
    if isinstance(value, str) and _READABLE.fullmatch(value):
        return value
    return OTHER


class LabelCap:
    """Keeps the first `limit` distinct names apart and folds the rest into `OTHER`."""

    def __init__(self, limit: int = MAX_DISTINCT):
        self.limit = limit
        self._kept: set[str] = set()

    def label(self, value: object) -> str:
        name = model_label(value)
        if name in self._kept or name == OTHER:
            return name
        if len(self._kept) >= self.limit:
            return OTHER
        self._kept.add(name)
        return name
