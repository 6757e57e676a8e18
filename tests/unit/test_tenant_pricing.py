"""Per-tenant charges, default prices and price versions, by hand-worked cases."""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.ledger import CallContext, build_entry
from billing.pricebook import DEFAULT_MODEL, PriceBook
from billing.pricing import PriceVersion, Tier
from billing.usage import parse_usage

D = Decimal
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
GENERAL = PriceVersion("gpt-x", T0, (Tier(D("2.00"), D("8.00"), cached=D("0.50")),), id=1)
TEAM_B_OWN = PriceVersion("gpt-x", T0, (Tier(D("1.00"), D("4.00")),), id=2, tenant_id=7)
BOOK = PriceBook([GENERAL, TEAM_B_OWN], {})
USAGE = parse_usage({"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 500},
                     "output_tokens": 250, "output_tokens_details": {"reasoning_tokens": 50}})
# Upstream cost of USAGE at GENERAL: 1000 x 2 + 500 x 0.50 + 200 x 8 + 50 x 8 (reasoning at output), / 1M
#   = 0.002 + 0.00025 + 0.0016 + 0.0004 = 0.00425
COST = D("0.00425")


def entry_for(tenant_id: int, multiplier: str):
    call = CallContext(request_id=uuid.uuid4(), tenant_id=tenant_id, key_id=1, endpoint="responses", stream=False,
                       started_at=T0, price=BOOK.resolve("gpt-x", T0, tenant_id), price_multiplier=D(multiplier))
    return build_entry(call, USAGE, status="completed", upstream_response_id=None, finished_at=T0, first_byte_ms=1)


@pytest.mark.parametrize(("multiplier", "charge"), [
    ("1", D("0.00425")),
    ("1.2", D("0.005100")),   # resale markup: 0.00425 x 1.2
    ("0.9", D("0.003825")),   # contract discount: 0.00425 x 0.9
    ("0", D("0")),            # an internal team billed nothing, still costed
])
def test_markup_and_discount(multiplier, charge):
    entry = entry_for(tenant_id=3, multiplier=multiplier)
    assert entry.cost.total == COST and entry.charge == charge
    assert entry.charge_price_version_id is None and entry.price_version_id == 1


def test_tenant_specific_price_sets_the_charge_not_the_cost():
    # Team 7's own price: 1000 x 1 + 500 x 0.10 (10% default) + 200 x 4 + 50 x 4, / 1M = 0.00205
    entry = entry_for(tenant_id=7, multiplier="1.2")  # an own price is not marked up again
    assert entry.cost.total == COST and entry.charge == D("0.00205")
    assert (entry.price_version_id, entry.charge_price_version_id) == (1, 2)


def test_price_change_mid_month_prices_each_call_by_its_own_version():
    raised = PriceVersion("gpt-x", T0 + timedelta(days=15), (Tier(D("3.00"), D("12.00")),), id=3)
    book = PriceBook([GENERAL, raised], {})
    before = book.resolve("gpt-x", T0 + timedelta(days=14, hours=23))
    after = book.resolve("gpt-x", T0 + timedelta(days=15))
    assert (before.version.id, after.version.id) == (1, 3)


def test_default_price_only_for_models_not_priced_otherwise():
    default = PriceVersion(DEFAULT_MODEL, T0, (Tier(D("5"), D("5")),), id=9)
    book = PriceBook([GENERAL, default], {"gpt-x-*": "gpt-x"})
    assert book.resolve("gpt-x-2026", T0).model == "gpt-x"
    assert book.resolve("brand-new-model", T0).model == DEFAULT_MODEL
    assert PriceBook([GENERAL], {}).resolve("brand-new-model", T0) is None
