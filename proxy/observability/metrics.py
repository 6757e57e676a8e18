"""Prometheus metrics of one proxy process (`GET /metrics`).

Counters and histograms come from `prometheus_client`. Spend is money, so it is not kept
in a float counter: each process sums every tenant's charge exactly (Decimal) and prints
the sum as written into the text format. Keys and secrets never appear in a label.
"""

from bisect import bisect_left
from collections import defaultdict
from decimal import Decimal
from itertools import accumulate
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from billing.model_labels import MAX_DISTINCT, LabelCap

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, process_start_time_seconds, ...

_LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300)

UPSTREAM_ERRORS = Counter("billing_proxy_upstream_errors", "Upstream failures, by kind "
                          "(unreachable, timeout, idle_timeout, status_5xx, status_4xx, malformed, stream_cut).",
                          ["kind"], registry=REGISTRY)
LEDGER_FLUSH_SECONDS = Histogram("billing_proxy_ledger_flush_seconds", "Time of one batch insert into the ledger.",
                                 buckets=_LATENCY_BUCKETS, registry=REGISTRY)
LEDGER_BACKLOG = Gauge("billing_proxy_ledger_backlog",
                       "Billed entries not yet in the database (in memory or spooled).", registry=REGISTRY)
SPOOL_DEPTH = Gauge("billing_proxy_spool_entries",
                    "Entries held only in the local spool because the database is unreachable.",
                    registry=REGISTRY)
DATABASE_UP = Gauge("billing_proxy_database_up", "1 when the ledger writer reaches the database.",
                    registry=REGISTRY)
DEAD_LETTERS = Counter("billing_proxy_ledger_dead_letters", "Ledger rows the database refused for what they "
                       "hold, kept in ledger_dead_letters (alert on any increase).", ["kind"], registry=REGISTRY)
ADMISSIONS = Counter("billing_proxy_quota_admissions", "Calls of tenants with limits admitted, by how: "
                     "statement (one database statement), lease (in memory, under a lease), lease_taken "
                     "(statements that took a lease).", ["path"], registry=REGISTRY)
OFFLINE_ADMISSIONS = Counter("billing_proxy_offline_admissions",
                             "Calls admitted against the last known quota state while the database was down.",
                             registry=REGISTRY)
RATE_LIMITED = Counter("billing_proxy_rate_limited", "Calls refused by a rate limit or the concurrency cap, by "
                       "what refused them (requests, tokens, concurrency).", ["limit"], registry=REGISTRY)
QUOTA_REFUSED = Counter("billing_proxy_quota_refused", "Calls refused by a budget, quota, credit or per-call cap: "
                        "spent, over_left (its least worst case is more than is left), held_in_flight (worth a "
                        "retry) or max_call.", ["why"], registry=REGISTRY)
UNPRICED_CALLS = Counter("billing_proxy_unpriced_calls", "Calls refused because their model has no price "
                         f"(400 model_not_priced), by the model as requested: the first {MAX_DISTINCT} names "
                         "this process saw, every other one (or one too long or unreadable) as `other`.",
                         ["model"], registry=REGISTRY)
_UNPRICED_LABELS = LabelCap()  # for the process's life: a counter's series must not come and go
FITTED_CALLS = Counter("billing_proxy_fitted_calls", "Calls whose output cap was lowered to fit what a limit had "
                       "left, instead of being refused.", registry=REGISTRY)
EXPORT_DELIVERED = Counter("billing_proxy_export_delivered", "Ledger entries and adjustments delivered to a "
                           "billing system, by sink.", ["sink"], registry=REGISTRY)
EXPORT_FAILURES = Counter("billing_proxy_export_failures", "Failed deliveries to a billing system (each is "
                          "retried with backoff), by sink.", ["sink"], registry=REGISTRY)
EXPORT_PENDING = Gauge("billing_proxy_export_pending", "Events in the outbox not yet delivered, by sink.",
                       ["sink"], registry=REGISTRY)
EXPORT_LAG = Gauge("billing_proxy_export_lag_seconds", "Age of the oldest undelivered event, by sink (0: none).",
                   ["sink"], registry=REGISTRY)

_spend: dict[str, Decimal] = defaultdict(Decimal)  # tenant name -> charge billed by this process


class _CountedLocally:
    """Series every call moves, counted in plain dicts on the event loop and turned into
    Prometheus samples only when scraped: a call pays a dict update, not a lock and a label
    lookup. (Only the event loop's thread counts; a scrape runs on it too.)"""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...] = ()):
        self.name, self.documentation, self.labels, self.buckets = name, documentation, labels, buckets
        self._counts: dict[tuple[str, ...], int] = defaultdict(int)
        self._histograms: dict[tuple[str, ...], list] = {}  # labels -> [count per bucket..., +Inf count, sum]
        REGISTRY.register(self)

    def count(self, labels: tuple[str, ...]) -> None:
        self._counts[labels] += 1

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        cells = self._histograms.get(labels)
        if cells is None:
            cells = self._histograms[labels] = [0] * (len(self.buckets) + 1) + [0.0]
        cells[bisect_left(self.buckets, value)] += 1  # the first bucket whose bound is >= value
        cells[-1] += value

    def collect(self):
        if not self.buckets:
            family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
            for labels, count in list(self._counts.items()):
                family.add_metric(labels, count)
            yield family
            return
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        bounds = [floatToGoString(bound) for bound in self.buckets] + ["+Inf"]
        for labels, cells in list(self._histograms.items()):
            family.add_metric(labels, list(zip(bounds, accumulate(cells[:-1]))), cells[-1])
        yield family


_REQUESTS = _CountedLocally("billing_proxy_requests", "Calls answered, by endpoint, model and HTTP status.",
                            ("endpoint", "model", "status"))
_REQUEST_SECONDS = _CountedLocally("billing_proxy_request_duration_seconds", "Time from a call's arrival to the "
                                   "end of its reply (streams: the last event).", ("endpoint",), _LATENCY_BUCKETS)
_FIRST_BYTE_SECONDS = _CountedLocally("billing_proxy_upstream_first_byte_seconds", "Time from a call's arrival "
                                      "to the upstream's first byte.", ("endpoint",), _LATENCY_BUCKETS)


def count_request(endpoint: str, model: str, status: int, seconds: float) -> None:
    _REQUESTS.count((endpoint, model, str(status)))
    _REQUEST_SECONDS.observe((endpoint,), seconds)


def first_byte(endpoint: str, seconds: float) -> None:
    _FIRST_BYTE_SECONDS.observe((endpoint,), seconds)


def count_unpriced(model: object) -> None:
    UNPRICED_CALLS.labels(_UNPRICED_LABELS.label(model)).inc()


def add_spend(tenant: str, charge: Decimal) -> None:
    _spend[tenant] += charge


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(refresh: Callable[[], None]) -> bytes:
    refresh()  # gauges that are read off live state
    lines = [b"# HELP billing_proxy_tenant_charge_usd_total Charge billed by this process since it started, "
             b"exact USD.",
             b"# TYPE billing_proxy_tenant_charge_usd_total counter"]
    for tenant, total in sorted(_spend.items()):
        lines.append(f'billing_proxy_tenant_charge_usd_total{{tenant="{_label(tenant)}"}} {total:f}'.encode())
    return generate_latest(REGISTRY) + b"\n".join(lines) + b"\n"
