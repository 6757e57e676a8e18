"""The upstream's own record of what it billed, and its drift from the ledger. Pure.

Sources, each read into the same shape, {(day, model): {measure: value}}:
- OpenAI's organization Usage API (completions and embeddings, daily buckets grouped by
  model) and Costs API (daily, grouped by line item: "<model>, input" and the like);
- a BytePlus ModelArk bill-details export (CSV as the console downloads it, or the JSON of
  the ListBillDetail API): one line per day, model (ConfigName / InstanceName) and
  billing item (Element: input, cache hit, output, cache storage, ...).
A measure the source does not report is absent, and is not compared (OpenAI's Usage API
counts reasoning inside output; a BytePlus bill counts tokens, not requests). The Usage
API's splits are compared where it reports them: cache writes, audio and image tokens in
and out, against the same splits of the ledger's entries (their `usage` details)."""

import csv
import functools
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping

MEASURES = ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "input_audio_tokens",
            "output_audio_tokens", "input_image_tokens", "output_image_tokens", "output_tokens", "reasoning_tokens",
            "cost")
# The Usage API's splits of a result, by the measure each is compared as; one a result does
# not carry is absent (and so not compared).
_USAGE_SPLITS = {"input_cached_tokens": "cached_tokens", "input_cache_write_tokens": "cache_write_tokens",
                 "input_audio_tokens": "input_audio_tokens", "output_audio_tokens": "output_audio_tokens",
                 "input_image_tokens": "input_image_tokens", "output_image_tokens": "output_image_tokens"}
OTHER = "(tools and other)"  # line items of no one model: built-in tool calls, storage, ...

Totals = dict[tuple[str, str], dict[str, Decimal]]


class BillFormatError(ValueError):
    pass


def _read_as_bill(read: Callable[..., Totals]) -> Callable[..., Totals]:
    """A bill in a shape its reader does not expect (a field missing, a list where an object
    goes, a date out of range) is a BillFormatError that says so, never a crash."""
    @functools.wraps(read)
    def reading(*args: Any, **kwargs: Any) -> Totals:
        try:
            return read(*args, **kwargs)
        except BillFormatError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError, OSError, InvalidOperation) as error:
            raise BillFormatError(f"{read.__name__}: the bill is not in the shape expected "
                                  f"({type(error).__name__}: {error})") from None
    return reading


def _add(totals: Totals, day: str, model: str, measure: str, value: Decimal) -> None:
    row = totals.setdefault((day, model), {})
    row[measure] = row.get(measure, Decimal(0)) + value


def _day(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, timezone.utc).strftime("%Y-%m-%d")


@_read_as_bill
def openai_usage(pages: Iterable[Mapping[str, Any]], normalize: Callable[[str], str] = str) -> Totals:
    """Pages of `/organization/usage/completions` and `/organization/usage/embeddings`."""
    totals: Totals = {}
    for page in pages:
        for bucket in page.get("data", []):
            day = _day(bucket["start_time"])
            for result in bucket.get("results", []):
                model = normalize(result.get("model") or "(unknown)")
                _add(totals, day, model, "requests", Decimal(result.get("num_model_requests") or 0))
                _add(totals, day, model, "input_tokens", Decimal(result.get("input_tokens") or 0))
                if "output_tokens" in result:  # embeddings have none
                    _add(totals, day, model, "output_tokens", Decimal(result.get("output_tokens") or 0))
                _add(totals, day, model, "cached_tokens", Decimal(result.get("input_cached_tokens") or 0))
                for field, measure in _USAGE_SPLITS.items():
                    if field in result and field != "input_cached_tokens":
                        _add(totals, day, model, measure, Decimal(result.get(field) or 0))
    return totals


@_read_as_bill
def openai_costs(pages: Iterable[Mapping[str, Any]], normalize: Callable[[str], str] = str) -> Totals:
    """Pages of `/organization/costs?group_by=line_item`. Amounts are JSON numbers: parse the
    pages with `parse_float=Decimal` so no float ever holds them."""
    totals: Totals = {}
    for page in pages:
        for bucket in page.get("data", []):
            day = _day(bucket["start_time"])
            for result in bucket.get("results", []):
                amount = result.get("amount") or {}
                if str(amount.get("currency", "usd")).lower() != "usd":
                    raise BillFormatError(f"cost in {amount.get('currency')!r}; only USD is reconciled")
                line = result.get("line_item") or ""
                model = normalize(line.rsplit(", ", 1)[0]) if ", " in line else OTHER
                _add(totals, day, model, "cost", Decimal(str(amount.get("value", 0))))
    return totals


def merged(*sources: Totals) -> Totals:
    totals: Totals = {}
    for source in sources:
        for (day, model), measures in source.items():
            for measure, value in measures.items():
                _add(totals, day, model, measure, value)
    return totals


# --- BytePlus bill details -----------------------------------------------------------

def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


_COLUMNS = {  # our name: the column names it may have (compared without case, spaces or underscores)
    "day": ("expensedate", "expensebegintime", "billingdate", "date"),
    "model": ("configname", "instancename", "model", "modelname"),
    "element": ("element", "billingitem", "elementcode", "factor"),
    "count": ("count", "usage", "quantity"),
    "unit": ("unit", "usageunit"),
    "amount": ("payableamount", "pretaxamount", "originalbillamount", "amount"),
    "product": ("product", "productzh"),
}


def _element_measure(element: str) -> str | None:
    text = element.lower()
    if "storage" in text:
        return "cache_storage"
    if "hit" in text or "cached" in text or "cache read" in text:
        return "cached_tokens"
    if "output" in text or "completion" in text:
        return "output_tokens"
    if "input" in text or "prompt" in text:
        return "uncached_input_tokens"
    return None


def _unit_scale(unit: str) -> Decimal:
    text = unit.lower().replace(" ", "")
    if text.startswith(("mtoken", "milliontoken", "1mtoken")) or "百万" in text:
        return Decimal(1_000_000)
    if text.startswith(("ktoken", "thousandtoken", "1ktoken")) or "千" in text:
        return Decimal(1000)
    return Decimal(1)


def _decimal(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value).replace(",", "").strip() or "0")
    except InvalidOperation:
        raise BillFormatError(f"{where}: {value!r} is not a number") from None


@_read_as_bill
def byteplus_bill(text: str, normalize: Callable[[str], str] = str) -> Totals:
    """A ModelArk bill-details export: CSV with a header row, or ListBillDetail JSON
    (`{"Result": {"List": [...]}}` or the list itself)."""
    stripped = text.lstrip("\ufeff").strip()
    if stripped.startswith(("{", "[")):
        data = json.loads(stripped)
        records = data.get("Result", data).get("List", []) if isinstance(data, dict) else data
    else:
        records = list(csv.DictReader(io.StringIO(stripped)))
    if not records:
        return {}
    present = {_key(name): name for name in records[0]}
    columns = {ours: next((present[c] for c in candidates if c in present), None)
               for ours, candidates in _COLUMNS.items()}
    missing = [ours for ours in ("day", "model", "element", "count", "amount") if columns[ours] is None]
    if missing:
        raise BillFormatError(f"the bill has no {', '.join(missing)} column (looked for "
                              f"{'; '.join('/'.join(_COLUMNS[m]) for m in missing)})")
    totals: Totals = {}
    for number, record in enumerate(records, 2):
        where = f"line {number}"
        day = str(record[columns["day"]]).strip()[:10].replace("/", "-")
        model = normalize(str(record[columns["model"]]).strip())
        measure = _element_measure(str(record[columns["element"]]))
        amount = _decimal(record[columns["amount"]], where)
        if measure is None:
            _add(totals, day, OTHER, "cost", amount)
            continue
        _add(totals, day, model, "cost", amount)
        if measure == "cache_storage":
            continue
        scale = _unit_scale(str(record[columns["unit"]])) if columns["unit"] else Decimal(1)
        tokens = _decimal(record[columns["count"]], where) * scale
        if measure == "uncached_input_tokens":
            _add(totals, day, model, "input_tokens", tokens)
        else:
            _add(totals, day, model, measure, tokens)
            if measure == "cached_tokens":  # a cache hit is input, billed at its own price
                _add(totals, day, model, "input_tokens", tokens)
    return totals


# --- drift ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    percent: Decimal = Decimal(0)  # of the upstream's figure, for every measure
    cost_usd: Decimal = Decimal("0.01")  # and at least this much cost per day and model (rounding)

    def allows(self, measure: str, ledger: Decimal, upstream: Decimal) -> bool:
        allowed = abs(upstream) * self.percent / 100
        if measure == "cost":
            allowed = max(allowed, self.cost_usd)
        return abs(ledger - upstream) <= allowed


@dataclass(frozen=True)
class DriftRow:
    day: str
    model: str
    ledger: dict[str, Decimal]
    upstream: dict[str, Decimal]
    drifted: tuple[str, ...]  # the measures past the tolerance
    status: str  # ok | drift | not_in_ledger | not_upstream


def drift(ledger: Totals, upstream: Totals, tolerance: Tolerance) -> list[DriftRow]:
    """Every day × model of either side; a measure only one side reports is not compared."""
    rows = []
    for day, model in sorted(set(ledger) | set(upstream)):
        ours, theirs = ledger.get((day, model), {}), upstream.get((day, model), {})
        compared = [m for m in MEASURES if m in theirs]
        drifted = tuple(m for m in compared
                        if not tolerance.allows(m, ours.get(m, Decimal(0)), theirs[m]))
        if not any(ours.values()) and any(theirs.values()):
            status = "not_in_ledger"  # the upstream key was used directly, or billing was lost
        elif any(ours.values()) and not any(theirs.values()):
            status = "not_upstream"
        else:
            status = "drift" if drifted else "ok"
        if status in ("not_in_ledger", "not_upstream") and not drifted:
            drifted = tuple(m for m in MEASURES if ours.get(m) or theirs.get(m))
            if not drifted or all(tolerance.allows(m, ours.get(m, Decimal(0)), theirs.get(m, Decimal(0)))
                                  for m in drifted):
                status, drifted = "ok", ()
        rows.append(DriftRow(day, model, dict(ours), dict(theirs), drifted, status))
    return rows
