"""What every endpoint of the simulated upstream shares: its state, token counting, the
OpenAI error shape, request acceptance, SSE framing, and its own record of what it bills.

The record (`GET /_sim/billed/usage`) is the simulator's bill, written by the simulator's
own rules as each reply is generated or each background response ends: one item per
billed reply with its usage block, service tier, tool calls and cache storage. Tests
compare the proxy's ledger with it.
"""

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

DEFAULT_OUTPUT_TOKENS = 24
WORDS = ("the", "proxy", "counts", "every", "token", "and", "bills", "it", "exactly", "once")
BYTEPLUS_CACHE_SECONDS = 3 * 24 * 3600  # a stored response's `expire_at` unless the request sets one


def count_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def texts(value: Any) -> list[str]:
    """Every text piece of an `input` (string, message list, content parts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in texts(item)]
    if isinstance(value, dict):
        found = []
        for key in ("content", "text", "output"):
            if key in value:
                found += texts(value[key])
        return found
    return []


def is_byteplus(model: str) -> bool:
    return model.startswith(("seed-", "bytedance-", "doubao-"))


@dataclass
class StoredResponse:
    context_tokens: int  # what a continuation carries over as input
    cached: bool
    body: dict[str, Any] = field(default_factory=dict)  # the response object, for GET
    input_items: list[Any] = field(default_factory=list)
    input_tokens: int = 0
    storage: tuple[int, int] = (0, 0)  # BytePlus cache storage billed: tokens, hours
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # a background stream's events, to resume
    finish: Any = None  # a background response's pending work (an asyncio task)...
    complete: Any = None  # ...and what ends it (stores and bills the final response)


@dataclass
class SimulatorState:
    api_key: str | None
    responses: dict[str, StoredResponse] = field(default_factory=dict)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    billed: list[str] = field(default_factory=list)  # ids of the replies generated, as the upstream bills
    usage_records: list[dict[str, Any]] = field(default_factory=list)  # what each billed reply bills
    paths: list[tuple[str, str]] = field(default_factory=list)  # (method, raw path) of every request received
    # container id -> when its session was billed, and the memory it was made with
    containers: dict[str, tuple[float, str]] = field(default_factory=dict)

    def bill(self, reply_id: str, endpoint: str, model: str, usage: dict[str, Any], *, status: str = "completed",
             service_tier: str | None = None, tool_calls: dict[str, int] | None = None,
             storage: tuple[int, int] = (0, 0)) -> None:
        self.billed.append(reply_id)
        self.usage_records.append({
            "id": reply_id, "endpoint": endpoint, "model": model, "status": status, "usage": usage,
            "service_tier": service_tier, "tool_calls": tool_calls or {}, "cache_storage_tokens": storage[0],
            "cache_storage_hours": storage[1], "at": int(time.time())})


SIM_STATE = web.AppKey("simulator", SimulatorState)


def error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def reply_words(count: int, seed: str) -> list[str]:
    offset = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(WORDS)
    return [WORDS[(offset + i) % len(WORDS)] for i in range(count)]


def authorized(request: web.Request) -> web.Response | None:
    state = request.app[SIM_STATE]
    if state.api_key and request.headers.get("Authorization") != f"Bearer {state.api_key}":
        return error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    return None


async def account_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What the real API says about the account on every reply: its organization and
    project, and the account's own rate-limit standing (which a gateway must not pass on)."""
    if request.path.startswith("/v1/"):
        response.headers.update({
            "openai-organization": "org-simulated-operator", "openai-project": "proj_simulated",
            "openai-version": "2020-10-01", "openai-processing-ms": "7",
            "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999990", "x-ratelimit-reset-tokens": "0s",
        })
        response.headers.setdefault("set-cookie", "__cf_bm=simulated; path=/; HttpOnly; Secure")


async def accept(request: web.Request, *, model_required: bool = True) -> dict[str, Any] | web.Response:
    """The JSON body of a request, logged; or the error the real API would give."""
    state = request.app[SIM_STATE]
    try:
        body = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        return error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
    state.requests.append({"path": request.path, "authorization": request.headers.get("Authorization"),
                           "headers": {str(k): v for k, v in request.headers.items()}, "body": body})
    if refused := authorized(request):
        return refused
    if forced := request.headers.get("x-sim-status"):
        return error(int(forced), "Simulated upstream failure.", "server_error" if int(forced) >= 500 else
                     "invalid_request_error")
    if not isinstance(body, dict) or (model_required and not isinstance(body.get("model"), str)):
        return error(400, "Missing required parameter: 'model'.", "invalid_request_error", param="model")
    return body


def served_tier(request: web.Request, body: dict[str, Any]) -> str:
    """The service tier that serves a call: what was asked (`fast` is served as `priority`,
    `auto` as `default`), unless `x-sim-service-tier` says the upstream chose another."""
    forced = request.headers.get("x-sim-service-tier")
    if forced:
        return forced
    asked = body.get("service_tier")
    return {"flex": "flex", "priority": "priority", "fast": "priority", "scale": "scale"}.get(asked, "default")


def sse_frame(event_type: str | None, payload: dict[str, Any]) -> bytes:
    """One SSE event; without `event_type` the type travels only inside the data (the
    data-only framing some upstreams use)."""
    data = b"data: " + orjson.dumps(payload) + b"\n\n"
    return data if event_type is None else b"event: " + event_type.encode() + b"\n" + data


def header_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.headers.get(name)
    return int(value) if value is not None else default


@web.middleware
async def log_paths(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every request's method and path as it arrived (routed or not), so a test can see
    exactly what reached the upstream."""
    if not request.raw_path.startswith("/_sim/"):
        request.app[SIM_STATE].paths.append((request.method, request.raw_path.split("?", 1)[0]))
    return await handler(request)


async def list_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_STATE].requests)


async def list_billed(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_STATE].billed)


async def list_usage_records(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_STATE].usage_records)
