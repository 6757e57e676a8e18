"""Rate-limit shares and concurrency slots in memory, and OpenAI's reset durations."""

import pytest

from billing.concurrency import SlotBook
from billing.rate_limit import RateBook, Share, duration, one_second

KEY_RPM = ("key", 1, "requests", 120)
KEY_TPM = ("key", 1, "tokens", 6000)
TENANT_RPM = ("tenant", 7, "requests", 600)


def test_a_call_takes_from_its_shares_or_says_what_to_withdraw():
    book = RateBook()
    needs = book.needs([KEY_RPM, KEY_TPM], tokens=80)
    assert needs == {("key", 1, "requests"): 1, ("key", 1, "tokens"): 80}
    assert not book.take(needs, now=0.0)  # nothing withdrawn yet
    asks = {a.key: (a.need, a.want) for a in book.withdrawals(needs)}
    # one second's worth (120/60 = 2 requests, 6000/60 = 100 tokens), at least what is needed
    assert asks == {("key", 1, "requests"): (1, 2), ("key", 1, "tokens"): (80, 100)}
    book.granted(("key", 1, "requests"), 2, level=118, now=0.0)
    book.granted(("key", 1, "tokens"), 100, level=5900, now=0.0)
    assert book.take(needs, now=0.1) and book.take(book.needs([KEY_RPM, KEY_TPM], 20), now=0.2)
    assert book.shares[("key", 1, "requests")].units == 0 and book.shares[("key", 1, "tokens")].units == 0
    # a share that holds enough of one bucket and not of the other takes from neither
    assert not book.take(needs, now=0.3) and book.shares[("key", 1, "tokens")].units == 0


def test_a_call_bigger_than_the_limit_needs_the_whole_bucket():
    book = RateBook()
    assert book.needs([KEY_TPM], tokens=50_000) == {("key", 1, "tokens"): 6000}


def test_tokens_settle_with_the_actual_usage_and_unused_shares_go_back():
    book = RateBook()
    needs = book.needs([KEY_TPM, TENANT_RPM], tokens=500)
    for key, need in needs.items():
        book.granted(key, need, level=0, now=0.0)
    assert book.take(needs, now=0.0)
    book.settle(needs, tokens_used=120)  # took 500, used 120: 380 back; requests are not refunded
    assert book.shares[("key", 1, "tokens")].units == 380 and book.shares[("tenant", 7, "requests")].units == 0
    book.settle(book.needs([KEY_TPM], 10), tokens_used=400)  # used more than it took: owed
    assert book.shares[("key", 1, "tokens")].units == -10
    assert book.idle(now=0.5, seconds=1.0) == []
    assert book.idle(now=1.0, seconds=1.0) == [(("key", 1, "tokens"), 6000, -10)]
    assert book.shares[("key", 1, "tokens")].units == 0


def test_a_call_refused_later_gives_back_what_it_took():
    book = RateBook()
    needs = book.needs([KEY_RPM], tokens=0)
    book.granted(("key", 1, "requests"), 2, level=0, now=0.0)
    assert book.take(needs, now=0.0)
    book.give_back(needs)
    assert book.shares[("key", 1, "requests")].units == 2


def test_headers_show_the_tightest_bucket_per_measure():
    book = RateBook()
    needs = book.needs([KEY_RPM, TENANT_RPM, KEY_TPM], tokens=10)
    book.granted(("key", 1, "requests"), 2, level=60, now=0.0)  # 62 of 120 left: 29 s to full
    book.granted(("tenant", 7, "requests"), 10, level=590, now=0.0)  # all 600 left
    book.granted(("key", 1, "tokens"), 100, level=5900, now=0.0)
    assert book.headers(needs, now=0.0) == {
        "x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "62",
        "x-ratelimit-reset-requests": "29s", "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "6000", "x-ratelimit-reset-tokens": "0ms"}
    # ten seconds later the bucket refilled 20 (2 per second)
    assert book.headers(needs, now=10.0)["x-ratelimit-remaining-requests"] == "82"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0ms"), (0.0201, "21ms"), (1, "1s"), (59.2, "1m0s"),
                                                (360, "6m0s"), (3723, "1h2m3s")])
def test_duration_as_openai_writes_it(seconds, text):
    assert duration(seconds) == text


def test_one_seconds_worth():
    assert (one_second(1), one_second(60), one_second(61), one_second(6000)) == (1, 1, 2, 100)
    assert Share(limit=60, units=0, level=30, level_at=0).remaining(now=15) == 45


def test_slots_are_claimed_when_all_are_busy_and_given_back_when_idle():
    book = SlotBook()
    assert not book.take(5)  # none held: claim one
    book.claimed(5)
    assert not book.take(5)  # the one held is busy
    book.claimed(5)
    book.end(5, now=1.0)
    assert book.take(5)  # a held slot is free again: no claim
    book.end(5, now=2.0)
    book.end(5, now=2.0)
    assert book.surplus(now=2.1, idle_seconds=0.25) == []
    assert book.surplus(now=2.3, idle_seconds=0.25) == [(5, 2)]
    assert not book.holding()
