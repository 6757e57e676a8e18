"""A tenant's own alert destinations: its Slack incoming webhook and email recipients.
Pure: what the CLI and the admin API accept, and how a hook is shown (it is a secret)."""

import re
from urllib.parse import urlsplit

MAX_URL_CHARS = 2048
MAX_RECIPIENTS = 20
MAX_ADDRESS_CHARS = 254
HOOK_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"  # printable ASCII, no space
# One address as SMTP takes it in RCPT TO: no spaces, quotes, brackets, commas or line breaks.
ADDRESS_PATTERN = (r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def check_hook_url(url: str) -> str:
    """An absolute http(s) URL (Slack's are https; a local relay may be http)."""
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not re.fullmatch(HOOK_PATTERN, url):
        raise ValueError("a Slack incoming webhook is an absolute https:// URL, at most 2048 characters")
    return url


def check_address(address: str) -> str:
    if not isinstance(address, str) or len(address) > MAX_ADDRESS_CHARS or not re.fullmatch(ADDRESS_PATTERN, address):
        raise ValueError(f"not an email address: {str(address)[:80]!r}")
    return address


def check_addresses(addresses: list[str]) -> list[str]:
    """Recipients, each once (compared without case), in the order given."""
    unique: dict[str, str] = {}
    for address in addresses:
        unique.setdefault(check_address(address.strip()).casefold(), address.strip())
    if len(unique) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} email recipients")
    return list(unique.values())


def shown_hook(url: str | None) -> str | None:
    """A hook as listings show it: scheme and host, never the secret path."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
