"""Budget leases, worked by hand: when one is worth taking, what it admits, how calls settle
in it, and when it is given back."""

from decimal import Decimal
from uuid import uuid4

from billing.quota import Estimate
from billing.quota_lease import LEASE_CALLS, LEASE_HEADROOM, Lease, LeaseBook, lease_size, worth_leasing

D = Decimal
WORST = Estimate(input_tokens=100, output_tokens=400, charge=D("0.001"))
SCOPE = (1, 10, "2026-11")


def lease(now=0.0) -> Lease:
    size = lease_size(WORST)
    return Lease(uuid4(), size.charge, size.tokens, now, budget_remaining=D("50"), tokens_remaining=None,
                 key_budget_remaining=None)


def test_size_and_headroom():
    assert lease_size(WORST) == Estimate(100 * LEASE_CALLS, 400 * LEASE_CALLS, D("0.001") * LEASE_CALLS)
    assert worth_leasing(WORST, D("0.001") * LEASE_HEADROOM, None, None)
    assert not worth_leasing(WORST, D("0.001") * LEASE_HEADROOM - D("0.000001"), None, None)
    assert not worth_leasing(WORST, None, 500 * LEASE_HEADROOM - 1, None)  # the token quota is near
    assert not worth_leasing(WORST, D("1000"), None, D("0.5"))  # the key's budget is near
    assert worth_leasing(WORST, None, None, None)


def test_a_lease_admits_its_worst_cases_then_retires():
    book = LeaseBook(max_age=60)
    taken = lease()
    book.start(SCOPE, taken)
    admitted = [book.admit(SCOPE, WORST, 1.0) for _ in range(LEASE_CALLS)]
    assert all(a is taken for a in admitted)
    assert taken.room() == (D("50"), None, None)  # the lease is fully held: only the database's remainder
    assert book.admit(SCOPE, WORST, 1.0) is None  # full: retired, calls still in flight
    assert book.take_releasable() == []
    for _ in range(LEASE_CALLS - 1):
        assert not book.end_call(taken, WORST, D("0.0002"), 120)
    assert book.end_call(taken, WORST, D("0.0002"), 120)  # the last call ended: release it


def test_settled_calls_free_room_for_more():
    book = LeaseBook(max_age=60)
    taken = lease()
    book.start(SCOPE, taken)
    first = book.admit(SCOPE, WORST, 1.0)
    book.end_call(first, WORST, D("0.0002"), 120)
    assert taken.held_usd == D("0.0002") and taken.held_tokens == 120
    assert taken.room()[0] == D("50") + D("0.1") - D("0.0002")


def test_an_old_or_idle_lease_is_given_back():
    book = LeaseBook(max_age=60)
    old = lease(now=0.0)
    book.start(SCOPE, old)
    assert book.admit(SCOPE, WORST, 61.0) is None  # past its age: retired, nothing in flight
    assert book.take_releasable() == [old]
    idle = lease(now=100.0)
    book.start(SCOPE, idle)
    call = book.admit(SCOPE, WORST, 100.0)
    assert book.idle(now=200.0, idle_seconds=10) == []  # a call is still in flight
    book.end_call(call, WORST, D(0), 0)
    assert book.idle(now=200.0, idle_seconds=10) == [idle]
    assert book.admit(SCOPE, WORST, 200.0) is None and book.all_idle() == []
