"""Budgets inside a team: every end user's cap, a named user's, a tag value's, and run
budgets a team makes with its own key. Pure: parsing, validation and the shapes shown.

Every budget is in USD, per day or per month of the tenant's time zone, or, for a run, for
the run's whole life (until it expires or is closed). They only ever narrow: a call must fit
each that names it as well as the tenant's and the key's limits."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from billing.attribution import MAX_USER_CHARS, is_tag_name

WINDOWS = ("day", "month")
MAX_AMOUNT_USD = Decimal(10) ** 9
MAX_DECIMALS = 10
MAX_LABEL_CHARS = 256
MIN_RUN_SECONDS, MAX_RUN_SECONDS = 60, 90 * 24 * 3600
RUN_FIELDS = ("amount_usd", "expires_in", "expires_at", "label")


class BudgetError(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Subject:
    """What a budget is for: kind 'user' (name None: every end user) or 'tag' (`name=value`)."""
    kind: str
    name: str | None

    @property
    def text(self) -> str:
        if self.kind == "user":
            return "every end user" if self.name is None else f"end user {self.name}"
        return f"tag {self.name}"


def parse_amount(value: Any, param: str = "amount_usd") -> Decimal:
    """A budget's amount: a decimal string or a JSON number already read as a Decimal (never
    a float), above 0, at most 10 decimal places."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise BudgetError(param, f"`{param}` must be an amount in USD, such as \"25\" or 25.50.")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise BudgetError(param, f"`{param}` must be an amount in USD, such as \"25\" or 25.50.") from None
    if not amount.is_finite() or not Decimal(0) < amount <= MAX_AMOUNT_USD:
        raise BudgetError(param, f"`{param}` must be above 0 and at most {MAX_AMOUNT_USD:,} USD.")
    if amount.as_tuple().exponent < -MAX_DECIMALS:
        raise BudgetError(param, f"`{param}` may have at most {MAX_DECIMALS} decimal places.")
    return amount


def parse_window(value: Any) -> str:
    if value not in WINDOWS:
        raise BudgetError("per", "A budget is per `day` or per `month`.")
    return value


def user_subject(name: Any) -> Subject:
    """A named end user (as calls name it: `safety_identifier`, `user` or `X-Billing-User`)."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_USER_CHARS or not name.isprintable():
        raise BudgetError("user", f"An end user is 1 to {MAX_USER_CHARS} printable characters.")
    return Subject("user", name)


def tag_subject(text: Any) -> Subject:
    """`name=value`, the name as tags are named (letters, digits and `_ . : -`)."""
    if not isinstance(text, str):
        raise BudgetError("tag", "A tag budget names `name=value`, e.g. `project=search`.")
    name, equals, value = text.partition("=")
    if not equals or not is_tag_name(name) or not value or len(value) > 512 or not value.isprintable():
        raise BudgetError("tag", "A tag budget names `name=value`, e.g. `project=search` (names of letters, "
                                 "digits and `_ . : -`; values of 1 to 512 printable characters).")
    return Subject("tag", f"{name}={value}")


def mint_run_id() -> str:
    return "budget_" + secrets.token_hex(12)


@dataclass(frozen=True)
class RunRequest:
    amount_usd: Decimal
    expires_at: datetime
    label: str | None


def run_request(body: Any, now: datetime) -> RunRequest:
    """The body of `POST /v1/budgets`: `amount_usd`, an expiry (`expires_in` seconds, or
    `expires_at` in Unix seconds) and an optional `label`. Any JSON value: a wrong one is a
    BudgetError naming it."""
    if not isinstance(body, Mapping):
        raise BudgetError("body", "The body must be a JSON object with `amount_usd` and `expires_in`.")
    unknown = [name for name in body if name not in RUN_FIELDS]
    if unknown:
        raise BudgetError(str(unknown[0])[:64], f"Unknown field `{str(unknown[0])[:64]}`; a run budget takes "
                                                f"{', '.join(RUN_FIELDS)}.")
    if "amount_usd" not in body:
        raise BudgetError("amount_usd", "`amount_usd` is required: what the run may spend, in USD.")
    amount = parse_amount(body["amount_usd"])
    expires_at = _expiry(body, now)
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL_CHARS or not label.isprintable()):
        raise BudgetError("label", f"`label` must be a string of at most {MAX_LABEL_CHARS} printable characters.")
    return RunRequest(amount, expires_at, label or None)


def _expiry(body: Mapping, now: datetime) -> datetime:
    has_in, has_at = body.get("expires_in") is not None, body.get("expires_at") is not None
    if has_in == has_at:
        raise BudgetError("expires_in", "Give the run an end: `expires_in` (seconds) or `expires_at` (Unix "
                                        "seconds), one of them.")
    name = "expires_in" if has_in else "expires_at"
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) \
            or (isinstance(value, Decimal) and (not value.is_finite() or value.adjusted() > 15)) or value != int(value):
        raise BudgetError(name, f"`{name}` must be a whole number of seconds.")
    seconds = int(value) if has_in else int(value) - int(now.timestamp())
    if not MIN_RUN_SECONDS <= seconds <= MAX_RUN_SECONDS:
        raise BudgetError(name, f"A run budget lasts from {MIN_RUN_SECONDS} seconds to {MAX_RUN_SECONDS // 86400} "
                                "days.")
    return now + timedelta(seconds=seconds)


@dataclass(frozen=True)
class RunBudget:
    id: str
    amount_usd: Decimal
    label: str | None
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    spent_usd: Decimal = Decimal(0)
    held_usd: Decimal = Decimal(0)  # reserved by calls in flight
    requests: int = 0

    def status(self, now: datetime) -> str:
        if self.closed_at is not None:
            return "closed"
        if self.expires_at <= now:
            return "expired"
        return "spent" if self.spent_usd >= self.amount_usd else "active"


def run_view(run: RunBudget, now: datetime) -> dict:
    """A run budget as `GET /v1/budgets/{id}` shows it (amounts exact: JSON numbers)."""
    return {"id": run.id, "object": "billing.budget", "label": run.label, "amount_usd": run.amount_usd,
            "spent_usd": run.spent_usd, "held_usd": run.held_usd,
            "remaining_usd": max(run.amount_usd - run.spent_usd - run.held_usd, Decimal(0)),
            "requests": run.requests, "status": run.status(now), "created_at": int(run.created_at.timestamp()),
            "expires_at": int(run.expires_at.timestamp()),
            "closed_at": int(run.closed_at.timestamp()) if run.closed_at else None}


def scoped_arguments(budgeted: tuple[str, ...], user: str | None, tags: tuple[tuple[str, str], ...],
                     run: str | None) -> tuple[str | None, list[str] | None, str | None]:
    """What of a call's attribution admission must weigh, given what its tenant budgets
    (`KeyGrant.budgeted_attribution`): its end user, its budgeted tags as `name=value`, and
    its run. All None: no budget inside the tenant weighs it."""
    if not budgeted and run is None:
        return None, None, None
    weighed_user = user if user is not None and "user" in budgeted else None
    weighed_tags = [f"{name}={value}" for name, value in tags if f"tag:{name}" in budgeted] or None
    return weighed_user, weighed_tags, run
