"""Who inside a team a call is for: its end user and its tags, read from the request. Pure.

- **End user**: the request's own `safety_identifier`, else its `user` (the fields the
  official SDKs send, on Responses and Chat Completions), else the proxy's header
  `X-Billing-User`. At most `MAX_USER_CHARS` printable characters. An operator may keep it
  as a keyed hash (HMAC-SHA256, hex) instead of as sent.
- **Tags**: the request's `metadata` (OpenAI's rules: at most 16 pairs, names of at most 64
  characters, string values of at most 512), and the header `X-Billing-Tags:
  project=search,env=prod` (at most 16 pairs; names of letters, digits and `_ . : -`;
  values without `,` or `=`). A header tag overrides a `metadata` pair of the same name. An
  operator may keep only some tag names.
- **Run budget**: the header `X-Billing-Budget: budget_…` names a run budget the key made
  (`billing.budgets`); the call must fit it as well as every other limit.
A value outside these bounds is refused (`AttributionError`, a 400 naming it) before the
call goes anywhere: an entry never fails to be stored for what it is attributed to. Any
JSON value is accepted anywhere: a field of the wrong type is refused, never a crash.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Mapping

USER_FIELDS = ("safety_identifier", "user")
USER_HEADER, TAGS_HEADER, BUDGET_HEADER = "X-Billing-User", "X-Billing-Tags", "X-Billing-Budget"
MAX_USER_CHARS = 256
MAX_METADATA_PAIRS, MAX_METADATA_NAME, MAX_METADATA_VALUE = 16, 64, 512
MAX_HEADER_TAGS, MAX_HEADER_VALUE = 16, 128
_TAG_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
RUN_ID = re.compile(r"budget_[A-Za-z0-9]{1,64}")


class AttributionError(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Attribution:
    user: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # sorted by name
    run: str | None = None  # the run budget it is charged to, as named


@dataclass(frozen=True)
class AttributionRules:
    """What an operator keeps: end users as a keyed hash (`user_hash_key`), and which tag
    names (`kept_tags`; None: all)."""
    user_hash_key: bytes | None = None
    kept_tags: frozenset[str] | None = None


NONE = Attribution()


def attribution_of(payload: Mapping[str, Any], headers: Mapping[str, str],
                   rules: AttributionRules = AttributionRules()) -> Attribution:
    """The call's end user and tags (`headers`: case-insensitive, as aiohttp's are)."""
    user = _user(payload, headers)
    if user is not None:
        user = kept_user(user, rules)
    tags = {**_metadata_tags(payload.get("metadata")), **_header_tags(headers.get(TAGS_HEADER))}
    if rules.kept_tags is not None:
        tags = {name: value for name, value in tags.items() if name in rules.kept_tags}
    run = _run(headers.get(BUDGET_HEADER))
    if user is None and not tags and run is None:
        return NONE
    return Attribution(user, tuple(sorted(tags.items())), run)


def kept_user(user: str, rules: AttributionRules) -> str:
    """An end user as entries keep it: as sent, or as the operator's keyed hash."""
    if rules.user_hash_key is None:
        return user
    return hmac.new(rules.user_hash_key, user.encode(), hashlib.sha256).hexdigest()


def is_tag_name(name: object) -> bool:
    return isinstance(name, str) and _TAG_NAME.fullmatch(name) is not None


def _run(header: str | None) -> str | None:
    if header is None:
        return None
    value = header.strip()
    if not RUN_ID.fullmatch(value):
        raise AttributionError(BUDGET_HEADER, f"The `{BUDGET_HEADER}` header must name a run budget, "
                                              "`budget_` and up to 64 letters or digits, as `POST /v1/budgets` "
                                              "returned it.")
    return value


def _printable(value: str) -> bool:
    return value.isprintable()


def _user(payload: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    for name in USER_FIELDS:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_USER_CHARS or not _printable(value):
            raise AttributionError(name, f"`{name}` must be a string of 1 to {MAX_USER_CHARS} printable characters.")
        return value
    value = headers.get(USER_HEADER)
    if value is None:
        return None
    value = value.strip()
    if not 0 < len(value) <= MAX_USER_CHARS or not _printable(value):
        raise AttributionError(USER_HEADER, f"The `{USER_HEADER}` header must be 1 to {MAX_USER_CHARS} printable "
                                            "characters.")
    return value


def _metadata_tags(metadata: Any) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise AttributionError("metadata", "`metadata` must be an object of string values.")
    if len(metadata) > MAX_METADATA_PAIRS:
        raise AttributionError("metadata", f"`metadata` may hold at most {MAX_METADATA_PAIRS} pairs.")
    for name, value in metadata.items():
        if not 0 < len(name) <= MAX_METADATA_NAME or not _printable(name):
            raise AttributionError("metadata", f"`metadata` names must be 1 to {MAX_METADATA_NAME} printable "
                                               "characters.")
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE or not _printable(value):
            raise AttributionError("metadata", f"`metadata.{name[:64]}` must be a string of at most "
                                               f"{MAX_METADATA_VALUE} printable characters.")
    return dict(metadata)


def _header_tags(header: str | None) -> dict[str, str]:
    if header is None or not header.strip():
        return {}
    tags: dict[str, str] = {}
    for pair in header.split(","):
        name, equals, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not _TAG_NAME.fullmatch(name) or not value or "=" in value \
                or len(value) > MAX_HEADER_VALUE or not _printable(value):
            raise AttributionError(TAGS_HEADER, f"The `{TAGS_HEADER}` header must be `name=value` pairs separated "
                                                f"by commas (names of letters, digits and `_ . : -`, values of 1 to "
                                                f"{MAX_HEADER_VALUE} printable characters).")
        tags[name] = value
    if len(tags) > MAX_HEADER_TAGS:
        raise AttributionError(TAGS_HEADER, f"The `{TAGS_HEADER}` header may hold at most {MAX_HEADER_TAGS} tags.")
    return tags
