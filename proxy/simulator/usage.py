"""The simulated upstream's own account of what it billed, in the vendors' formats.

- OpenAI's organization Usage API (`/v1/organization/usage/completions`, `.../embeddings`)
  and Costs API (`/v1/organization/costs`): daily buckets, grouped by model or line item,
  paged with `limit`, `page`, `has_more` and `next_page`; an admin key is required when the
  simulator was given one.
- `GET /_sim/billed/bill.csv?month=YYYY-MM`: a BytePlus ModelArk bill-details export of the
  `seed-*` models (one line per day, model and billing item), as the console downloads it.

Both are built from the simulator's billing record, priced with its own list prices
(`proxy.simulator.list_prices`, written from the vendors' pages), never from the proxy's
catalog or ledger: a wrong price in the catalog shows as a difference in reconciliation.
A call the list prices cannot price (a model or case no page publishes) bills nothing here."""

import csv
import io
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

from aiohttp import web

from billing.usage import Usage, parse_usage
from billing.exact_json import exact_json, json_number
from proxy.simulator.list_prices import UnpublishedPrice, list_cost_items
from proxy.simulator.wire import SIM_STATE, error, is_byteplus

DAY = 86400
ADMIN_KEY = web.AppKey("simulator_admin_key", str)


def _priced(record: dict) -> tuple[Usage, dict[str, Decimal] | None]:
    """The record's usage, and what it bills by line at the list prices (None: not priced)."""
    usage = parse_usage(record["usage"]) or Usage()
    usage = Usage(usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens, usage.output_tokens,
                  usage.reasoning_tokens, tool_calls=tuple(sorted(record["tool_calls"].items())),
                  service_tier=record["service_tier"], cache_storage_tokens=record["cache_storage_tokens"],
                  cache_storage_hours=record["cache_storage_hours"])
    def priced(tools: dict[str, int]) -> dict[str, Decimal] | None:
        return list_cost_items(
            record["model"], datetime.fromtimestamp(record["at"], timezone.utc), input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens, cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens,
            service_tier=usage.service_tier, tools=tools, cache_storage_token_hours=usage.cache_storage_token_hours)
    try:
        return usage, priced(dict(usage.tool_calls))
    except UnpublishedPrice:
        pass
    try:  # a tool fee no page publishes (BytePlus web search): its tokens are billed still
        return usage, priced({})
    except UnpublishedPrice:
        return usage, None


def _refused(request: web.Request) -> web.Response | None:
    admin_key = request.app.get(ADMIN_KEY)
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or (admin_key and given != f"Bearer {admin_key}"):
        return error(401, "Incorrect API key provided. This endpoint needs an admin key.", "invalid_request_error",
                     "invalid_api_key")
    return None


def _window(request: web.Request) -> tuple[int, int, int, int] | web.Response:
    """An admin's query window: (first day, end, limit, page), or the error answering it."""
    if refused := _refused(request):
        return refused
    try:
        start = int(request.query["start_time"])
        end = int(request.query.get("end_time") or start + 7 * DAY)
        limit = int(request.query.get("limit", 7))
        page = int(request.query.get("page") or 0)
    except (KeyError, ValueError):
        return error(400, "start_time is required (Unix seconds); end_time, limit and page are integers.",
                     "invalid_request_error", param="start_time")
    if request.query.get("bucket_width", "1d") != "1d":
        return error(400, "This simulator serves bucket_width=1d only.", "invalid_request_error",
                     param="bucket_width")
    return start - start % DAY, end, limit, page


def _buckets(start: int, end: int, sums: dict, result) -> list[dict]:
    """One bucket per day of [start, end); `sums` is keyed by (day, group), `result(group, value)`
    makes each of its results, in a stable order."""
    by_day: dict[int, list] = defaultdict(list)
    for (day, group), value in sorted(sums.items(), key=lambda item: str(item[0])):
        by_day[day].append(result(group, value))
    return [{"object": "bucket", "start_time": day, "end_time": day + DAY, "results": by_day[day]}
            for day in range(start, end, DAY)]


def _page(buckets: list[dict], limit: int, page: int) -> dict:
    chosen = buckets[page:page + limit]
    more = page + limit < len(buckets)
    return {"object": "page", "data": chosen, "has_more": more, "next_page": str(page + limit) if more else None}


def _records(request: web.Request, start: int, end: int, endpoints: tuple[str, ...] | None):
    for record in request.app[SIM_STATE].usage_records:
        if start <= record["at"] < end and (endpoints is None or record["endpoint"] in endpoints):
            yield record


def _usage_handler(endpoints: tuple[str, ...], result_object: str, with_output: bool):
    async def handler(request: web.Request) -> web.Response:
        window = _window(request)
        if isinstance(window, web.Response):
            return window
        start, end, limit, page = window
        by_model = "model" in request.query.getall("group_by", [])
        sums: dict[tuple[int, str | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for record in _records(request, start, end, endpoints):
            usage, _ = _priced(record)
            bucket = sums[(record["at"] - record["at"] % DAY, record["model"] if by_model else None)]
            bucket["num_model_requests"] += 1
            bucket["input_tokens"] += usage.input_tokens
            bucket["input_cached_tokens"] += usage.cached_tokens
            bucket["input_cache_write_tokens"] += usage.cache_write_tokens
            bucket["output_tokens"] += usage.output_tokens
        def result(model: str | None, sums_of: dict[str, int]) -> dict:
            made = {"object": result_object, "input_tokens": sums_of["input_tokens"],
                    "num_model_requests": sums_of["num_model_requests"], "project_id": None, "user_id": None,
                    "api_key_id": None, "model": model, "batch": None}
            if with_output:
                made.update(output_tokens=sums_of["output_tokens"], input_cached_tokens=sums_of["input_cached_tokens"],
                            input_cache_write_tokens=sums_of["input_cache_write_tokens"],
                            input_audio_tokens=0, output_audio_tokens=0)
            return made

        buckets = _buckets(start, end, sums, result)
        return web.json_response(_page(buckets, limit, page))
    return handler


def _line_items(record: dict) -> list[tuple[str, Decimal]]:
    usage, cost = _priced(record)
    if cost is None:
        return []
    model = record["model"]
    items = [(f"{model}, input", cost["input"]), (f"{model}, cached input", cost["cached input"]),
             (f"{model}, output", cost["output"]), (f"{model}, cache storage", cost.get("cache storage", Decimal(0)))]
    if usage.tool_calls:
        items.append(("built-in tool calls", cost["tools"]))
    return [(name, amount) for name, amount in items if amount]


async def costs(request: web.Request) -> web.Response:
    """The Costs API. Its amounts are JSON numbers; written here from exact decimals."""
    window = _window(request)
    if isinstance(window, web.Response):
        return window
    start, end, limit, page = window
    by_line = "line_item" in request.query.getall("group_by", [])
    sums: dict[tuple[int, str | None], Decimal] = defaultdict(Decimal)
    for record in _records(request, start, end, None):
        for line, amount in _line_items(record):
            sums[(record["at"] - record["at"] % DAY, line if by_line else None)] += amount
    buckets = _buckets(start, end, sums, lambda line, amount: {
        "object": "organization.costs.result", "amount": {"value": amount, "currency": "usd"}, "line_item": line,
        "project_id": None})
    return web.Response(text=exact_json(_page(buckets, limit, page)), content_type="application/json")


BILL_COLUMNS = ("BillPeriod", "ExpenseDate", "Product", "InstanceName", "ConfigName", "Element", "Count", "Unit",
                "Price", "PriceUnit", "PayableAmount", "Currency")


async def byteplus_bill(request: web.Request) -> web.Response:
    """Bill details of the `seed-*` models for `?month=YYYY-MM`: one line per day, model and
    billing item, tokens counted in tokens, amounts exact."""
    month = request.query.get("month", "")
    lines: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, Decimal(0)])
    for record in request.app[SIM_STATE].usage_records:
        day = datetime.fromtimestamp(record["at"], timezone.utc).strftime("%Y-%m-%d")
        if not is_byteplus(record["model"]) or not day.startswith(month):
            continue
        usage, cost = _priced(record)
        if cost is None:
            continue
        for element, count, amount in (
                ("Input tokens", usage.uncached_input_tokens + usage.cache_write_tokens, cost["input"]),
                ("Cache hit input tokens", usage.cached_tokens, cost["cached input"]),
                ("Output tokens", usage.output_tokens, cost["output"]),
                ("Cache storage", usage.cache_storage_token_hours, cost["cache storage"]),
                ("Tool calls", usage.tool_call_count, cost["tools"])):
            if count or amount:
                line = lines[(day, record["model"], element)]
                line[0] += count
                line[1] += amount
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BILL_COLUMNS)
    for (day, model, element), (count, amount) in sorted(lines.items()):
        unit = "Token*Hour" if element == "Cache storage" else ("Times" if element == "Tool calls" else "Token")
        writer.writerow([day[:7], day, "ModelArk", model, model, element, count, unit, "", "", json_number(amount)
                         if amount else "0", "USD"])
    return web.Response(text=out.getvalue(), content_type="text/csv")


def add_usage_routes(app: web.Application) -> None:
    app.router.add_get("/v1/organization/usage/completions", _usage_handler(
        ("responses", "chat.completions", "responses.compact"), "organization.usage.completions.result", True))
    app.router.add_get("/v1/organization/usage/embeddings", _usage_handler(
        ("embeddings",), "organization.usage.embeddings.result", False))
    app.router.add_get("/v1/organization/costs", costs)
    app.router.add_get("/_sim/billed/bill.csv", byteplus_bill)
