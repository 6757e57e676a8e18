"""Pure finance logic: reading the upstream's records, drift, export events, sink settings."""

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.exports import (ExportEvent, SinkConfig, cloud_event, stripe_meter_event, stripe_value,
                             webhook_signature)
from billing.upstream_usage import (OTHER, BillFormatError, Tolerance, byteplus_bill, drift, merged, openai_costs,
                                    openai_usage)
from proxy.config.settings import load_settings
from proxy.config.values import ConfigError

NOV_3 = 1793664000  # 2026-11-03T00:00:00Z

# --- the upstream's records --------------------------------------------------------------


def test_openai_usage_and_costs_pages_become_day_by_model():
    usage = [{"object": "page", "has_more": False, "data": [{"object": "bucket", "start_time": NOV_3,
              "end_time": NOV_3 + 86400, "results": [
                  {"object": "organization.usage.completions.result", "model": "gpt-4o-mini-2024-07-18",
                   "num_model_requests": 5, "input_tokens": 1000, "input_cached_tokens": 800, "output_tokens": 500},
                  {"object": "organization.usage.embeddings.result", "model": "text-embedding-3-small",
                   "num_model_requests": 2, "input_tokens": 7}]}]}]
    costs = [json.loads('{"data": [{"start_time": %d, "results": ['
                        '{"amount": {"value": 0.000123, "currency": "usd"}, "line_item": "gpt-4o-mini-2024-07-18, input"},'
                        '{"amount": {"value": 0.0003, "currency": "usd"}, "line_item": "gpt-4o-mini-2024-07-18, output"},'
                        '{"amount": {"value": 0.025, "currency": "usd"}, "line_item": "web search tool calls"}]}]}'
                        % NOV_3, parse_float=Decimal)]  # the wire's JSON numbers, read as decimals
    normalize = {"gpt-4o-mini-2024-07-18": "gpt-4o-mini"}.get
    totals = merged(openai_usage(usage, lambda n: normalize(n) or n), openai_costs(costs, lambda n: normalize(n) or n))
    assert totals == {
        ("2026-11-03", "gpt-4o-mini"): {"requests": 5, "input_tokens": 1000, "cached_tokens": 800,
                                        "output_tokens": 500, "cost": Decimal("0.000423")},
        ("2026-11-03", "text-embedding-3-small"): {"requests": 2, "input_tokens": 7, "cached_tokens": 0},
        ("2026-11-03", OTHER): {"cost": Decimal("0.025")},
    }


def test_the_usage_apis_splits_are_compared_where_it_reports_them():
    usage = [{"data": [{"start_time": NOV_3, "results": [
        {"model": "gpt-6.2-sol", "num_model_requests": 1, "input_tokens": 1000, "input_cached_tokens": 100,
         "input_cache_write_tokens": 400, "input_audio_tokens": 0, "output_audio_tokens": 0,
         "output_tokens": 50}]}]}]
    upstream = openai_usage(usage)
    assert upstream[("2026-11-03", "gpt-6.2-sol")]["cache_write_tokens"] == 400
    ledger = {("2026-11-03", "gpt-6.2-sol"): {"requests": Decimal(1), "input_tokens": Decimal(1000),
                                             "cached_tokens": Decimal(100), "cache_write_tokens": Decimal(0),
                                             "input_audio_tokens": Decimal(0), "output_audio_tokens": Decimal(0),
                                             "output_tokens": Decimal(50)}}
    # the ledger counted the cache writes as plain input: a drift in cache writes (cache writes
    # bill at 1.25x input on GPT-5.6 and later, so the cost drifts too)
    (row,) = drift(ledger, upstream, Tolerance())
    assert row.status == "drift" and row.drifted == ("cache_write_tokens",)
    # a split the page does not carry (image tokens here) is not compared
    assert "input_image_tokens" not in upstream[("2026-11-03", "gpt-6.2-sol")]


def test_costs_in_another_currency_are_refused():
    with pytest.raises(BillFormatError, match="only USD"):
        openai_costs([{"data": [{"start_time": NOV_3, "results": [{"amount": {"value": 1, "currency": "eur"}}]}]}])


BILL_CSV = """\ufeffBillPeriod,ExpenseDate,Product,InstanceName,ConfigName,Element,Count,Unit,PayableAmount,Currency
2026-11,2026-11-03,ModelArk,ep-1,seed-1-6-250915,Input tokens,"1,200",Token,0.0003,USD
2026-11,2026-11-03,ModelArk,ep-1,seed-1-6-250915,Cache hit input tokens,0.8,K Tokens,0.00004,USD
2026-11,2026-11-03,ModelArk,ep-1,seed-1-6-250915,Output tokens,0.0005,M Tokens,0.001,USD
2026-11,2026-11-03,ModelArk,ep-1,seed-1-6-250915,Cache storage,4000,Token*Hour,0.0000332,USD
2026-11,2026-11-04,ModelArk,ep-1,seed-1-6-250915,Web search,3,Times,0.015,USD
"""


def test_a_byteplus_bill_export_in_csv_and_in_listbilldetail_json():
    expected = {
        # input = uncached 1,200 + cache hit 800; cost includes the cache storage of the model
        ("2026-11-03", "seed-1-6"): {"input_tokens": 2000, "cached_tokens": 800, "output_tokens": 500,
                                     "cost": Decimal("0.0013732")},
        ("2026-11-04", OTHER): {"cost": Decimal("0.015")},
    }
    normalize = lambda name: "seed-1-6" if name.startswith("seed-1-6") else name  # noqa: E731
    assert byteplus_bill(BILL_CSV, normalize) == expected
    records = [dict(zip(BILL_CSV.splitlines()[0].lstrip("\ufeff").split(","), line)) for line in (
        ["2026-11", "2026-11-03", "ModelArk", "ep-1", "seed-1-6-250915", "Input tokens", "1200", "Token", "0.0003",
         "USD"],)]
    assert byteplus_bill(json.dumps({"Result": {"List": records}}), normalize) == {
        ("2026-11-03", "seed-1-6"): {"input_tokens": 1200, "cost": Decimal("0.0003")}}


def test_a_bill_without_the_needed_columns_says_which():
    with pytest.raises(BillFormatError, match="no model, count column"):
        byteplus_bill("ExpenseDate,Element,PayableAmount\n2026-11-03,Input tokens,1\n")


# --- drift ---------------------------------------------------------------------------------

D = Decimal


@pytest.mark.parametrize(("ledger", "upstream", "tolerance", "status", "drifted"), [
    ({"requests": D(4), "cost": D("0.10")}, {"requests": D(4), "cost": D("0.10")}, Tolerance(), "ok", ()),
    ({"requests": D(4), "cost": D("0.10")}, {"requests": D(5), "cost": D("0.10")}, Tolerance(), "drift",
     ("requests",)),
    # 1 in 1,000 is within 0.1% but not within 0.05%
    ({"input_tokens": D(999)}, {"input_tokens": D(1000)}, Tolerance(D("0.1")), "ok", ()),
    ({"input_tokens": D(999)}, {"input_tokens": D(1000)}, Tolerance(D("0.05")), "drift", ("input_tokens",)),
    # cost: a cent a row by default, exact with 0
    ({"cost": D("0.105")}, {"cost": D("0.10")}, Tolerance(), "ok", ()),
    ({"cost": D("0.111")}, {"cost": D("0.10")}, Tolerance(), "drift", ("cost",)),
    ({"cost": D("0.1000001")}, {"cost": D("0.10")}, Tolerance(cost_usd=D(0)), "drift", ("cost",)),
    ({}, {"requests": D(2), "input_tokens": D(30)}, Tolerance(), "not_in_ledger", ("requests", "input_tokens")),
    ({"requests": D(2), "input_tokens": D(30)}, {}, Tolerance(), "not_upstream", ("requests", "input_tokens")),
    ({"cost": D("0.001")}, {}, Tolerance(), "ok", ()),  # a sliver of cost within the tolerance
    # a measure the upstream does not report is not compared
    ({"requests": D(3), "reasoning_tokens": D(90)}, {"requests": D(3)}, Tolerance(), "ok", ()),
])
def test_drift_by_hand(ledger, upstream, tolerance, status, drifted):
    [row] = drift({("2026-11-03", "m"): ledger} if ledger else {},
                  {("2026-11-03", "m"): upstream} if upstream else {}, tolerance)
    assert (row.status, row.drifted) == (status, drifted)


counts = st.integers(min_value=0, max_value=10**9).map(Decimal)
sides = st.dictionaries(st.tuples(st.sampled_from(["2026-11-01", "2026-11-02"]), st.sampled_from(["a", "b", "c"])),
                        st.fixed_dictionaries({"requests": counts, "input_tokens": counts, "cost": counts.map(lambda d: d / 10**6)}),
                        min_size=1)


@given(sides)
def test_the_same_records_never_drift(totals):
    assert all(row.status == "ok" for row in drift(totals, totals, Tolerance(cost_usd=Decimal(0))))


@given(sides, st.integers(min_value=1, max_value=1000))
def test_one_token_more_upstream_is_always_caught_at_zero_tolerance(totals, extra):
    key = sorted(totals)[0]
    upstream = {k: dict(v) for k, v in totals.items()}
    upstream[key]["input_tokens"] += extra
    flagged = [row for row in drift(totals, upstream, Tolerance()) if row.status != "ok"]
    assert [(r.day, r.model) for r in flagged] == [key] and "input_tokens" in flagged[0].drifted


# --- export events -----------------------------------------------------------------------

def test_webhook_signature_matches_the_standard_webhooks_example():
    # the example of the Standard Webhooks specification
    assert webhook_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


NOW = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)


def usage_event(charge: str = "0.0000145", finished: datetime = NOW, booked: date | None = None) -> ExportEvent:
    row = {"key_id": 7, "key": "bp-abc", "endpoint": "responses", "model": "gpt-4o-mini",
           "requested_model": "gpt-4o-mini", "upstream": "default", "upstream_response_id": "resp_1",
           "status": "completed", "service_tier": None, "stream": False, "started_at": finished - timedelta(seconds=1),
           "finished_at": finished, "input_tokens": 1, "cached_tokens": 0, "cache_write_tokens": 0,
           "output_tokens": 24, "reasoning_tokens": 0, "tool_calls": {}, "cache_storage_tokens": 0,
           "cost_total": Decimal("0.0000145"), "charge_total": Decimal(charge), "estimated": False, "booked_on": booked}
    return ExportEvent(1, "usage", "0b0e7c1e-0000-4000-8000-000000000001", 3, "team-a", row)


def test_a_cloud_event_carries_the_ledger_entry_with_exact_money():
    event = cloud_event(usage_event(booked=date(2026, 12, 2)), "billing-proxy/eu")
    assert {k: event[k] for k in ("specversion", "id", "source", "type", "subject")} == {
        "specversion": "1.0", "id": "0b0e7c1e-0000-4000-8000-000000000001", "source": "billing-proxy/eu",
        "type": "io.billing-proxy.usage", "subject": "team-a"}
    data = event["data"]
    assert (data["charge_usd"], data["cost_usd"], data["total_tokens"]) == ("0.0000145", "0.0000145", 25)
    assert (data["late"], data["booked_month"]) == (True, "2026-12")


@pytest.mark.parametrize(("measure", "charge", "value"), [
    ("total_tokens", "0.0000145", "25"),
    ("output_tokens", "0.0000145", "24"),
    ("charge_micro_usd", "0.0000145", "14"),  # 14.5 micro-USD: half to even
    ("charge_micro_usd", "0.0000155", "16"),
    ("charge_micro_usd", "1.2345678", "1234568"),
])
def test_stripe_meter_values_are_whole_numbers(measure, charge, value):
    assert stripe_value(usage_event(charge), measure) == value


def test_a_stripe_meter_event_is_identified_by_the_request_id_and_dated_within_35_days():
    config = SinkConfig("stripe", "stripe", "https://api.stripe.com", "sk_test", customers={"team-a": "cus_A"})
    fresh = stripe_meter_event(usage_event(), config, NOW)
    assert fresh == {"event_name": "llm_usage", "identifier": "0b0e7c1e-0000-4000-8000-000000000001",
                     "timestamp": str(int(NOW.timestamp())), "payload[stripe_customer_id]": "cus_A",
                     "payload[value]": "25"}
    old = stripe_meter_event(usage_event(finished=NOW - timedelta(days=40)), config, NOW)
    assert old["timestamp"] == str(int(NOW.timestamp()))  # Stripe refuses older events: dated now


# --- sink settings -------------------------------------------------------------------------

def test_export_sinks_from_the_environment_and_the_config_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[exports.billing]\ntype = "stripe"\napi_key_env = "STRIPE_KEY"\nvalue = "charge_micro_usd"\n'
                      '[exports.billing.customers]\nteam-a = "cus_A"\n'
                      '[exports.meter]\ntype = "openmeter"\nurl = "https://om.example"\napi_key = "om_1"\n')
    settings = load_settings(config, environ={"STRIPE_KEY": "sk_live_x", "BILLING_PROXY_EXPORT_WEBHOOK_URL":
                                              "https://hooks.example/usage",
                                              "BILLING_PROXY_EXPORT_WEBHOOK_SECRET": "whsec_c2VjcmV0"})
    sinks = {s.name: s for s in settings.export_sinks()}
    assert (sinks["webhook"].kind, sinks["webhook"].url, sinks["webhook"].secret) == (
        "webhook", "https://hooks.example/usage", "whsec_c2VjcmV0")
    assert (sinks["billing"].url, sinks["billing"].secret, sinks["billing"].customers) == (
        "https://api.stripe.com", "sk_live_x", {"team-a": "cus_A"})
    assert sinks["meter"].secret == "om_1"
    assert "sk_live_x" not in repr(settings) and "whsec_c2VjcmV0" not in repr(settings)


@pytest.mark.parametrize(("table", "message"), [
    ('[exports.x]\ntype = "kafka"\n', "exports.x.type: must be one of webhook, stripe, openmeter"),
    ('[exports.x]\ntype = "webhook"\n', "exports.x.url: must start with http"),
    ('[exports.x]\ntype = "stripe"\n', "a Stripe sink needs api_key_env"),
    ('[exports.x]\ntype = "stripe"\napi_key_env = "NOPE"\n', "NOPE is not set"),
    ('[exports.x]\ntype = "stripe"\napi_key = "k"\nvalue = "cost"\n', "exports.x.value: must be one of"),
    ('[exports.x]\ntype = "webhook"\nurl = "https://h"\ncolour = 1\n', "exports.x.colour: unknown field"),
])
def test_bad_sinks_are_refused_at_start_up(tmp_path, table, message):
    config = tmp_path / "c.toml"
    config.write_text(table)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})
