"""Reading an OpenAI organization's Usage and Costs APIs with its admin key, every page."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp

USAGE_PATHS = ("/organization/usage/completions", "/organization/usage/embeddings")
COSTS_PATH = "/organization/costs"
MAX_PAGES = 1000  # a cursor that never ends is the API's fault, not a reason to loop forever


class UsageApiError(RuntimeError):
    pass


async def fetch_pages(http: aiohttp.ClientSession, base_url: str, path: str, admin_key: str,
                      params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        query = params + ([("page", cursor)] if cursor else [])
        try:
            async with http.get(base_url.rstrip("/") + path, params=query,
                                headers={"Authorization": f"Bearer {admin_key}"},
                                timeout=aiohttp.ClientTimeout(total=60)) as reply:
                text = await reply.text()
                if reply.status != 200:
                    raise UsageApiError(f"{path} answered {reply.status}: {text[:300]}")
        except aiohttp.ClientError as exc:
            raise UsageApiError(f"{path}: {type(exc).__name__}: {exc}") from None
        page = json.loads(text, parse_float=Decimal)  # amounts stay exact decimals
        pages.append(page)
        cursor = page.get("next_page")
        if not page.get("has_more") or not cursor:
            return pages
    raise UsageApiError(f"{path}: more than {MAX_PAGES} pages")


async def openai_records(base_url: str, admin_key: str, start: datetime, end: datetime
                         ) -> tuple[list[dict], list[dict]]:
    """(usage pages of completions and embeddings, cost pages), daily buckets over [start, end)."""
    window = [("start_time", str(int(start.timestamp()))), ("end_time", str(int(end.timestamp()))),
              ("bucket_width", "1d")]
    async with aiohttp.ClientSession() as http:
        usage = []
        for path in USAGE_PATHS:
            usage += await fetch_pages(http, base_url, path, admin_key, window + [("group_by", "model"),
                                                                                   ("limit", "31")])
        costs = await fetch_pages(http, base_url, COSTS_PATH, admin_key, window + [("group_by", "line_item"),
                                                                                    ("limit", "31")])
    return usage, costs
