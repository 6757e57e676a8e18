"""What a refused call for an unpriced model is told, and the dashboard's section of such
models: both built from names a client chose, so both escaped and bounded."""

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import orjson
from hypothesis import given

from billing.db.unpriced import UnpricedModel
from billing.keys import KeyGrant
from billing.model_labels import OTHER
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier
from proxy.admin.unpriced_section import unpriced_section
from proxy.errors import error_body
from proxy.gateway.unpriced import unpriced_error
from tests.strategies import json_values

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
BOOK = PriceBook([PriceVersion(m, AT, (Tier(Decimal(1), Decimal(2)),)) for m in ("gpt-6.1-sol", "gpt-6-sol")] +
                 [PriceVersion("gpt-6.15-sol", AT, (Tier(Decimal(1), Decimal(2)),), tenant_id=3)], {})
GRANT = KeyGrant(key_id=7, tenant_id=3, tenant_name="team", key_status="active", tenant_status="active",
                 expires_at=None)


def test_the_refusal_names_the_nearest_priced_model_the_key_may_use():
    error = unpriced_error(BOOK, GRANT, "gpt-6.2-sol")
    assert (error.status, error.code, error.param, error.type) == (400, "model_not_priced", "model",
                                                                   "invalid_request_error")
    assert error.message == ("The model 'gpt-6.2-sol' has no price configured, so it cannot be billed; ask an "
                             "operator to add one. The nearest priced model is 'gpt-6.1-sol'.")
    # a tenant's own price is no general one: never named, not even to that tenant
    assert "6.15" not in unpriced_error(BOOK, GRANT, "gpt-6.16-sol").message
    limited = replace(GRANT, allowed_models=("gpt-6.2*", "gpt-6-*"))
    assert unpriced_error(BOOK, limited, "gpt-6.2-sol").message.endswith("The nearest priced model is 'gpt-6-sol'.")
    nothing = replace(GRANT, allowed_models=("gpt-6.2*",))
    assert unpriced_error(BOOK, nothing, "gpt-6.2-sol").message.endswith("ask an operator to add one.")


@given(json_values)
def test_the_refusal_takes_any_json_value(value):
    error = unpriced_error(BOOK, GRANT, value)
    body = orjson.loads(error_body(error.message, error.type, error.code, error.param))
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["code"] == "model_not_priced"


def test_the_section_escapes_names_and_hints_what_to_do():
    seen = [UnpricedModel("gpt-6.2-sol", 2, ("team-a",), AT, AT),
            UnpricedModel("<img src=x onerror=alert(1)>", 1, ("team-<b>",), AT, AT),
            UnpricedModel("gpt-6.1-sol", 3, ("team-a",), AT, AT),
            UnpricedModel(OTHER, 9, tuple(f"t{i}" for i in range(8)), AT, AT)]
    html = unpriced_section(seen, {"gpt-6.2-sol": ["gpt-6.1-sol", "gpt-6-sol"]}, {"gpt-6.1-sol"})
    assert html.startswith("<h2>Models refused as unpriced</h2>")
    assert ('<td class="">gpt-6.2-sol</td><td class="n">2</td><td class="">team-a</td>'
            '<td class="">2026-12-01 00:00</td><td class="">2026-12-01 00:00</td>'
            '<td class="">gpt-6.1-sol, gpt-6-sol</td>'
            '<td class=""><code>billing-proxy prices resolve gpt-6.2-sol</code></td>') in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "team-&lt;b&gt;" in html
    assert "billing-proxy prices resolve &#x27;&lt;img src=x onerror=alert(1)&gt;&#x27;" in html  # shell-quoted
    assert "priced now" in html and "t0, t1, t2, t3, t4 and 3 more" in html
    assert "billing-proxy prices set MODEL --input USD --output USD" in html
    assert "No call was refused" in unpriced_section([], {}, set())
