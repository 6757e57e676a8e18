"""Upstream paths built from route templates, never from the path the client sent.

Every id a route names (a response, a conversation, an item) must be one path segment in
the alphabet upstream ids use. A client's path is decoded and normalised on its way in
and out (`..%2F` becomes `../`, and `../` climbs), so relaying it would let an item id of
`../../responses/{another tenant's}` reach any upstream path with the operator's key.
"""

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from proxy.errors import ApiError

MAX_ID_CHARS = 128  # upstream ids are about 50; this bounds what is looked up and logged
_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_ID_CHARS - 1}}}")


def is_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def invalid_id(name: str) -> ApiError:
    return ApiError(400, f"`{name}` must be an id: letters, digits, `_` and `-`, at most {MAX_ID_CHARS} characters.",
                    type="invalid_request_error", code="invalid_request_error", param=name)


def path_ids(request: web.Request) -> dict[str, str]:
    """The ids the matched route names, each checked (a 400 names the first bad one)."""
    ids = dict(request.match_info)
    for name, value in ids.items():
        if not is_id(value):
            raise invalid_id(name)
    return ids


def upstream_path(request: web.Request) -> str:
    """The upstream path for `request`: its route's template (less `/v1`), filled with its
    checked ids, each quoted as one segment."""
    ids = path_ids(request)
    template = request.match_info.route.resource.canonical  # e.g. /v1/responses/{response_id}/cancel
    return template.removeprefix("/v1").format_map({name: quote(value, safe="") for name, value in ids.items()})


def query_suffix(request: web.Request) -> str:
    """The client's query string as it sent it (still encoded, so a decoded `#` or `&`
    cannot change what it means upstream)."""
    raw = request.rel_url.raw_query_string
    return f"?{raw}" if raw else ""
