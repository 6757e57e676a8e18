"""Who inside a team a call is for, read from the request: the end user from
`safety_identifier`, `user` or the proxy's header; tags from `metadata` and the proxy's
header; bad values refused by name; any JSON value accepted anywhere."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from billing.attribution import Attribution, AttributionError, AttributionRules, attribution_of
from tests.strategies import json_objects, json_values


def headers(**values):
    return CIMultiDict({name.replace("_", "-"): value for name, value in values.items()})


@pytest.mark.parametrize(("payload", "sent", "expected"), [
    ({}, {}, Attribution()),
    # safety_identifier before user, user before the header
    ({"safety_identifier": "u-1", "user": "u-2"}, {"X_Billing_User": "u-3"}, Attribution("u-1")),
    ({"user": "u-2"}, {"X_Billing_User": "u-3"}, Attribution("u-2")),
    ({"user": None}, {"X_Billing_User": " u-3 "}, Attribution("u-3")),
    # tags from metadata and the header; the header's wins on a name both give
    ({"metadata": {"project": "search", "env": "dev"}}, {"X_Billing_Tags": "env=prod, run=r-7"},
     Attribution(None, (("env", "prod"), ("project", "search"), ("run", "r-7")))),
    ({"metadata": {}}, {"X_Billing_Tags": " "}, Attribution()),
])
def test_hand_worked(payload, sent, expected):
    assert attribution_of(payload, headers(**sent)) == expected


@pytest.mark.parametrize(("payload", "sent", "param"), [
    ({"user": 7}, {}, "user"),
    ({"safety_identifier": ""}, {}, "safety_identifier"),
    ({"user": "x" * 257}, {}, "user"),
    ({"user": "tab\there"}, {}, "user"),
    ({}, {"X_Billing_User": "x" * 300}, "X-Billing-User"),
    ({"metadata": "project=search"}, {}, "metadata"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, {}, "metadata"),
    ({"metadata": {"k": 1}}, {}, "metadata"),
    ({"metadata": {"k": "v" * 513}}, {}, "metadata"),
    ({"metadata": {"k" * 65: "v"}}, {}, "metadata"),
    ({"metadata": {"k": "nul\x00"}}, {}, "metadata"),
    ({}, {"X_Billing_Tags": "project"}, "X-Billing-Tags"),
    ({}, {"X_Billing_Tags": "pro ject=x"}, "X-Billing-Tags"),
    ({}, {"X_Billing_Tags": "a=b=c"}, "X-Billing-Tags"),
    ({}, {"X_Billing_Tags": "a="}, "X-Billing-Tags"),
    ({}, {"X_Billing_Tags": ",".join(f"t{i}=v" for i in range(17))}, "X-Billing-Tags"),
])
def test_a_bad_value_is_refused_by_name(payload, sent, param):
    with pytest.raises(AttributionError) as refused:
        attribution_of(payload, headers(**sent))
    assert refused.value.param == param


def test_an_operator_may_keep_users_as_a_keyed_hash_and_only_some_tags():
    rules = AttributionRules(user_hash_key=b"secret-key", kept_tags=frozenset({"project"}))
    got = attribution_of({"user": "alice@example.com", "metadata": {"project": "search", "session": "s-1"}},
                         headers(), rules)
    digest = hmac.new(b"secret-key", b"alice@example.com", hashlib.sha256).hexdigest()
    assert got == Attribution(digest, (("project", "search"),)) and len(digest) == 64


@given(json_objects, json_values, st.text(max_size=40), st.text(max_size=40))
def test_any_json_and_any_header_is_attributed_or_refused(payload, value, user_header, tags_header):
    for body in (payload, {**payload, "user": value, "metadata": value, "safety_identifier": value}):
        for sent in ({}, {"X-Billing-User": user_header, "X-Billing-Tags": tags_header}):
            try:
                got = attribution_of(body, CIMultiDict(sent))
            except AttributionError as error:
                assert error.param in ("user", "safety_identifier", "metadata", "X-Billing-User", "X-Billing-Tags")
                continue
            assert got.user is None or 0 < len(got.user) <= 256
            assert all(isinstance(name, str) and isinstance(tag, str) for name, tag in got.tags)


def test_a_calls_attribution_survives_its_begin_record():
    """What a replay after a crash, or a background response's settlement, bills from."""
    import uuid
    from datetime import datetime, timezone

    import orjson

    from billing.catalog import load_catalog, shipped_catalog_path
    from billing.ledger import CallContext, build_entry, call_from_record, call_record
    from billing.pricebook import PriceBook
    from billing.usage import Usage

    catalog = load_catalog(shipped_catalog_path())
    now = datetime(2026, 12, 3, tzinfo=timezone.utc)
    price = PriceBook(catalog.versions, catalog.aliases).resolve("gpt-5-mini", now)
    call = CallContext(request_id=uuid.uuid4(), tenant_id=1, key_id=1, endpoint="responses", stream=True,
                       started_at=now, price=price, end_user="user-a", tags=(("env", "prod"), ("project", "search")),
                       worst_tools=(("web_search", 10),), unseen_input_tokens=50_000)
    from dataclasses import replace
    versions = {None: price.version}  # the shipped catalog's versions have no database id
    again = call_from_record(orjson.loads(orjson.dumps(call_record(call))), versions)
    assert replace(again, price=call.price) == call
    entry = build_entry(again, Usage(input_tokens=10, output_tokens=5), status="completed", upstream_response_id=None,
                        finished_at=now, first_byte_ms=None)
    assert (entry.end_user, entry.tags) == ("user-a", (("env", "prod"), ("project", "search")))
