"""Checking one setting's value as it is read: positive numbers, durations, paths, choices,
tokens long enough not to be guessed, header names, URLs. Each refuses a bad value with a
message that names the setting."""

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from billing.alert_destinations import check_addresses


class ConfigError(ValueError):
    pass


def positive_int(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        result = int(value)
    except (TypeError, ValueError):
        result = 0
    if result <= 0:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    return result


def positive_seconds(name: str, value: Any) -> float:
    """A duration in seconds (never money)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def price_uplift(name: str, value: Any) -> Decimal:
    """A fraction added on every list price ("0.10": 10%), from 0 to 1, read exactly: a
    string or an integer, never a binary float."""
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidOperation
        uplift = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f'{name} must be a fraction written as a string, such as "0.10", not {value!r}') from None
    if not (uplift.is_finite() and 0 <= uplift <= 1):
        raise ConfigError(f"{name} must be from 0 to 1 (0.10 adds 10%), not {value!r}")
    return uplift


def path_value(name: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a path")
    return Path(value).expanduser()


def choice(*allowed: str):
    def parse(name: str, value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return value
    return parse


MIN_TOKEN_CHARS = 24


def token_value(name: str, value: Any) -> str:
    """A bearer token the operator chose: long enough not to be guessed, and printable ASCII
    (an HTTP header carries nothing else)."""
    if not isinstance(value, str) or len(value) < MIN_TOKEN_CHARS or not (value.isascii() and value.isprintable()) \
            or " " in value:
        raise ConfigError(f"{name} must be at least {MIN_TOKEN_CHARS} printable ASCII characters without spaces; "
                          "make one with `openssl rand -hex 24`")
    return value


def _listed(name: str, value: Any, what: str) -> tuple[str, ...]:
    """Names, comma-separated or a TOML array, stripped (`none`: none)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{name} must be {what}, comma-separated")
    return tuple(n.strip() for n in names if n.strip())


def tag_names(name: str, value: Any) -> tuple[str, ...]:
    """Tag names, comma-separated or a TOML array (`none`: no tags kept)."""
    cleaned = _listed(name, value, "tag names")
    if any(not (0 < len(n) <= 64 and n.isprintable()) for n in cleaned):
        raise ConfigError(f"{name}: {value!r} is not a list of tag names (1 to 64 printable characters each)")
    return cleaned


def header_names(name: str, value: Any) -> tuple[str, ...]:
    """Header names, comma-separated or a TOML array; `prefix*` allows every name it starts."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{name} must be header names, comma-separated (a trailing * allows a prefix)")
    cleaned = tuple(n.strip().lower() for n in names if n.strip())
    if any(not n.rstrip("*") or "*" in n.rstrip("*") or n.rstrip("*") in ("authorization", "cookie", "host")
           for n in cleaned):
        raise ConfigError(f"{name}: {value!r} is not a list of header names the proxy may forward")
    return cleaned


def model_patterns(name: str, value: Any) -> tuple[str, ...]:
    """Model names or patterns (`gpt-5*`), comma-separated or a TOML array; `none` (or an
    empty array): none."""
    cleaned = _listed(name, value, "model names or patterns (gpt-5*)")
    if any(not (n.isascii() and n.isprintable()) or " " in n for n in cleaned):
        raise ConfigError(f"{name}: {value!r} is not a list of model names or patterns")
    return cleaned


def url_value(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://")
    return value


def text_value(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def email_addresses(name: str, value: Any) -> tuple[str, ...]:
    try:
        return tuple(check_addresses(list(_listed(name, value, "email addresses"))))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def email_address(name: str, value: Any) -> str:
    addresses = email_addresses(name, value)
    if len(addresses) != 1:
        raise ConfigError(f"{name} must be one email address")
    return addresses[0]


def usd_amount(name: str, value: Any) -> Decimal:
    """An amount of USD, 0 or more, read exactly (a string or an integer, never a float)."""
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidOperation
        amount = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f'{name} must be an amount of USD written as a string, such as "5.00"') from None
    if not (amount.is_finite() and amount >= 0):
        raise ConfigError(f"{name} must be 0 or more, not {value!r}")
    return amount


def port_value(name: str, value: Any) -> int:
    port = positive_int(name, value)
    if port > 65535:
        raise ConfigError(f"{name} must be a TCP port, 1 to 65535")
    return port
