"""The spool's files: what a set of segments says must be in the ledger, rotation carrying
open calls over, deletion once written, torn lines, and orphans told apart from live
segments by their locks."""

import os

import pytest

from billing.db.ledger import encode_row
from proxy.durability.spool import Spool, collect, read_records


def row(request_id: str, **extra) -> dict:
    return {"request_id": request_id, "started_at": "2026-11-25T00:00:00+00:00", **extra}


@pytest.fixture
def spool(tmp_path):
    spool = Spool(tmp_path / "spool", segment_bytes=10_000)
    spool.open()
    yield spool
    spool.close()


@pytest.mark.parametrize("records,own,entries,interrupted", [
    ([], False, [], []),
    ([("b", "r1")], False, [], ["r1"]),  # began, never ended: billed from its estimate
    ([("b", "r1")], True, [], []),  # own segments: the call is still running
    ([("b", "r1"), ("e", "r1")], False, ["r1"], []),
    ([("b", "r1"), ("x", "r1")], False, [], []),  # ended with nothing to bill
    ([("b", "r1"), ("b", "r1"), ("e", "r1")], False, ["r1"], []),  # carried over by a rotation
    ([("b", "r1"), ("b", "r2"), ("e", "r2"), ("x", "r1"), ("b", "r3")], False, ["r2"], ["r3"]),
    ([("b", "r1"), ("p", "r1")], False, [], ["r1"]),  # progress adds to what an interrupted call is billed
])
def test_collect(records, own, entries, interrupted):
    folded = [{"k": "x", "id": rid} if k == "x" else {"k": "p", "id": rid, "row": {"output_text_bytes": 8}}
              if k == "p" else {"k": k, "row": row(rid, kind=k)} for k, rid in records]
    replay = collect(folded, own=own)
    assert sorted(replay.entries) == entries and sorted(replay.interrupted) == interrupted
    assert all(r["kind"] == "e" for r in replay.entries.values())
    assert all(r["kind"] == "b" for r in replay.interrupted.values())


def test_written_segments_are_deleted_and_open_calls_carried_over(spool):
    spool.begin("long", row("long", note="stream"))
    spool.progress("long", "resp_1", 40)
    first = spool.active
    for i in range(200):  # past segment_bytes: rotates
        spool.begin(f"r{i}", row(f"r{i}"))
        segment = spool.append_entry(f"r{i}", encode_row(row(f"r{i}", cost="0.000001")))
        spool.written(segment, 1)
    assert not first.path.exists()  # sealed and fully written: gone
    remaining = sorted(spool.directory.glob("*.spool"))
    assert remaining == [spool.active.path]
    replay = collect(read_records(remaining), own=False)
    assert list(replay.interrupted) == ["long"]  # the open call lives on in the newest segment...
    assert replay.interrupted["long"]["output_text_bytes"] == 40  # ...with its progress
    assert spool.depth == 0


def test_unwritten_entries_keep_their_segment(spool):
    segment = spool.append_entry("r1", encode_row(row("r1")))
    spool.rotate()
    assert segment.path.exists() and spool.depth == 1
    spool.drop_from_memory([segment])
    assert spool.segments_needing_replay == [segment]
    spool.replayed(segment)
    assert not segment.path.exists() and spool.depth == 0


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "x.spool"
    path.write_bytes(b'{"k":"e","row":{"request_id":"r1"}}\n{"k":"e","row":{"requ')
    assert [r["row"]["request_id"] for r in read_records([path])] == ["r1"]


def test_only_unlocked_segments_are_orphans(tmp_path, spool):
    spool.append_entry("mine", encode_row(row("mine")))
    dead = tmp_path / "spool" / "00000000000000000001-1.spool"
    dead.write_bytes(b'{"k":"b","row":{"request_id":"lost"}}\n')
    claimed = spool.claim_orphans()
    assert [path for path, _ in claimed] == [dead]  # the live segment is locked by its owner
    other = Spool(tmp_path / "spool")
    assert other.claim_orphans() == []  # already claimed
    Spool.release_orphans(claimed, replayed=True)
    assert not dead.exists() and spool.active.path.exists()


def test_close_keeps_what_is_unwritten_for_the_next_start(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.append_entry("r1", encode_row(row("r1")))
    path = spool.active.path
    spool.close()
    assert path.exists()
    successor = Spool(tmp_path / "spool")
    successor.open()
    claimed = successor.claim_orphans()
    assert [p for p, _ in claimed] == [path]
    Spool.release_orphans(claimed, replayed=False)
    successor.close()


def test_a_failed_write_is_reported_not_raised(spool):
    os.close(spool.active.fd)  # as a failing disk would: every write errors
    spool.active.fd = os.open(os.devnull, os.O_RDONLY)
    spool.begin("r1", row("r1"))
    assert spool.append_entry("r1", encode_row(row("r1"))) is None  # the caller keeps it in memory
    assert spool.depth == 0


def test_collect_hands_queued_background_responses_over():
    records = [{"k": "b", "row": row("r1")}, {"k": "q", "row": row("r1", response_id="resp_1")},
               {"k": "b", "row": row("r2")}]
    replay = collect(records, own=False)
    # the queued call is polled and billed later, not billed now from an estimate
    assert list(replay.background) == ["r1"] and replay.background["r1"]["response_id"] == "resp_1"
    assert list(replay.interrupted) == ["r2"] and replay.entries == {}


def test_a_sibling_scanning_for_orphans_never_takes_a_segment_being_started(tmp_path):
    """Two processes share a spool directory. One starts segment after segment while the
    other scans for orphans as fast as it can: the scan must never lock (and so replay and
    delete) a segment its owner has created and not locked yet."""
    import threading

    directory = tmp_path / "spool"
    owner, sibling = Spool(directory), Spool(directory)
    owner.open()
    sibling.open()
    stop, taken, failures = threading.Event(), [], []

    def scan():
        while not stop.is_set():
            claimed = sibling.claim_orphans()
            taken.extend(path.name for path, _ in claimed)
            sibling.release_orphans(claimed, replayed=False)

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        for _ in range(3000):
            try:
                owner.rotate()
            except BlockingIOError as error:  # the scan held the new segment's lock first
                failures.append(error)
                break
    finally:
        stop.set()
        scanner.join()
    assert failures == [] and taken == []
    owner.close()
    sibling.close()


def test_a_segment_abandoned_while_it_was_being_started_is_removed(tmp_path):
    directory = tmp_path / "spool"
    directory.mkdir()
    abandoned = directory / ("00000000000000000001-99999" + ".spool.starting")
    abandoned.write_bytes(b"")  # its process died between creating it and naming it...
    os.utime(abandoned, (0, 0))  # ...long ago
    recent = directory / ("00000000000000000002-99999" + ".spool.starting")
    recent.write_bytes(b"")  # one a process may be about to lock: left alone
    spool = Spool(directory)
    spool.open()
    assert spool.claim_orphans() == [] and not abandoned.exists() and recent.exists()
    spool.close()
