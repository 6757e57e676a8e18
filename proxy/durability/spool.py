"""The spool: a durable local journal of every billed call, so that no usage is lost when
the database is down or the process dies.

Each process appends to segment files of its own under `$BILLING_PROXY_HOME/spool/`, one
JSON line per record:

- `b` (begin): written before the call goes upstream; it carries what is needed to bill the
  call from an estimate (tenant, key, price versions, request bytes) if the process dies
  mid-call;
- `e` (entry): the call's final ledger row, written before it is handed to the writer;
- `p` (progress): a stream's upstream response id and the output text seen so far,
  written now and then, so that a call cut by the process's death is billed closer to
  what the upstream generated (and can be matched to the upstream's bill);
- `x` (closed): the call produced nothing to bill (an upstream error);
- `q` (queued): a background response the upstream is still working on, handed to the
  database's list of calls to poll (`background_responses`) instead of a ledger entry.

A line reaches the kernel in one `write`, so it survives SIGKILL; `sync` fsyncs in batches
against a machine crash. A live process holds an exclusive `flock` on each of its
segments, taken before the segment gets its `.spool` name (it is created as
`.spool.starting` and renamed once locked), so a sibling never finds one of them
unlocked; a segment nobody holds is an orphan (its process died) and is replayed: its
entries, plus an estimated entry for each call that began and never ended. Replays are
idempotent because the ledger skips a request id it already has.

A segment is deleted once it is sealed (a newer one took over) and each of its entries is
in the database. Calls still open when a segment is sealed are begun again in the new one,
so an old segment never waits on a long stream.
"""

import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

log = logging.getLogger(__name__)

SUFFIX = ".spool"
STARTING = ".starting"  # a segment's name while it is created and locked (never scanned)
ABANDONED_START_SECONDS = 60.0


@dataclass(eq=False)
class Segment:
    path: Path
    fd: int
    size: int = 0
    unwritten: int = 0  # entries handed to the writer and not yet in the database
    needs_replay: bool = False  # holds entries the writer dropped from memory (database down)
    sealed: bool = False


@dataclass
class Replay:
    """What a set of segments says must be in the ledger."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> final row
    interrupted: dict[str, dict[str, Any]] = field(default_factory=dict)  # began, never ended: begin records
    background: dict[str, dict[str, Any]] = field(default_factory=dict)  # queued background responses


def _encode(kind: bytes, row: dict[str, Any]) -> bytes:
    return _line(kind, orjson.dumps(row, default=str))


def _line(kind: bytes, encoded_row: bytes) -> bytes:
    return b'{"k":"' + kind + b'","row":' + encoded_row + b"}\n"


def read_records(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every well-formed record of the segments, in order; a torn last line is skipped."""
    for path in paths:
        with open(path, "rb") as file:
            for line in file:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("spool %s: skipping a torn record", path.name)
                    continue
                if isinstance(record, dict):
                    yield record


def collect(records: Iterable[dict[str, Any]], *, own: bool) -> Replay:
    """Fold records into what must be written. A process replaying its own segments (`own`)
    takes only final entries: the calls it has open are still running."""
    replay, begun, closed = Replay(), {}, set()
    for record in records:
        kind, row = record.get("k"), record.get("row") or {}
        request_id = row.get("request_id") or record.get("id")
        if kind == "e":
            replay.entries[request_id] = row
        elif kind == "q":
            replay.background[request_id] = row
        elif kind == "b":
            begun[request_id] = row
        elif kind == "p" and request_id in begun:
            begun[request_id] = {**begun[request_id], **row}
        elif kind == "x":
            closed.add(request_id)
    if not own:
        replay.interrupted = {rid: row for rid, row in begun.items()
                              if rid not in replay.entries and rid not in closed and rid not in replay.background}
    return replay


class Spool:
    def __init__(self, directory: Path, *, segment_bytes: int = 8 * 1024 * 1024):
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._segments: list[Segment] = []
        self._open: dict[str, dict[str, Any]] = {}  # request id -> its begin record (with progress), calls under way
        self._synced = True

    @property
    def active(self) -> Segment:
        return self._segments[-1]

    @property
    def depth(self) -> int:
        """Entries on disk that are not known to be in the database yet (own segments)."""
        return sum(s.unwritten for s in self._segments)

    @property
    def segments_needing_replay(self) -> list[Segment]:
        return [s for s in self._segments if s.needs_replay]

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_segment()

    def close(self) -> None:
        """Seal the active segment and delete every segment that is fully written; the rest
        stay for the next start to replay."""
        if not self._segments:
            return
        self.active.sealed = True
        for segment in list(self._segments):
            if not self._maybe_delete(segment):
                os.close(segment.fd)  # releases the lock: an orphan now, replayed next start
        self._segments.clear()

    # --- the hot path: one write each -------------------------------------------------------

    def begin(self, request_id: str, call: dict[str, Any]) -> None:
        self._open[request_id] = call
        self._write(_encode(b"b", call))

    def progress(self, request_id: str, upstream_response_id: str, output_text_bytes: int) -> None:
        call = self._open.get(request_id)
        if call is not None:
            update = {"upstream_response_id": upstream_response_id, "output_text_bytes": output_text_bytes}
            call.update(update)
            self._write(b'{"k":"p","id":"' + request_id.encode() + b'","row":' + orjson.dumps(update) + b"}\n")

    def close_call(self, request_id: str) -> None:
        """The call ended with nothing to bill."""
        if self._open.pop(request_id, None) is not None:
            self._write(b'{"k":"x","id":"' + request_id.encode() + b'"}\n')

    def append_entry(self, request_id: str, encoded_row: bytes, kind: bytes = b"e") -> Segment | None:
        """The segment now holding the entry (`encoded_row`: its row as a JSON object) or,
        kind `q`, the queued background response; None if it could not be written (the
        caller must then keep it in memory until the database has it)."""
        written = self._write(_line(kind, encoded_row))
        self._open.pop(request_id, None)
        if not written:
            return None
        segment = self.active
        segment.unwritten += 1
        if segment.size >= self.segment_bytes:
            self.rotate()
        return segment

    def _write(self, line: bytes) -> bool:
        segment = self.active
        try:
            os.write(segment.fd, line)
        except OSError as error:  # a full or failing disk must not fail the call being billed
            log.error("spool %s: write failed (%s); the entry is kept in memory only", segment.path.name, error)
            return False
        segment.size += len(line)
        self._synced = False
        return True

    # --- the writer's side ---------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced

    def sync(self) -> None:
        """fsync the active segment if anything was written since the last sync (run it in a
        thread: it may take milliseconds)."""
        if not self._synced and self._segments:
            self._synced = True
            try:
                os.fsync(self.active.fd)
            except OSError:  # rotated and deleted meanwhile: nothing left to make durable there
                self._synced = False

    def written(self, segment: Segment, count: int) -> None:
        segment.unwritten -= count
        self._maybe_delete(segment)

    def drop_from_memory(self, segments: Iterable[Segment]) -> None:
        """The writer gave up holding these segments' entries in memory: they will be
        replayed from disk."""
        for segment in segments:
            segment.needs_replay = True

    def rotate(self) -> None:
        """Seal the active segment and start a new one, carrying the open calls over."""
        self.active.sealed = True
        previous = self.active
        self._start_segment()
        for call in self._open.values():
            self._write(_encode(b"b", call))
        self._maybe_delete(previous)

    def replayed(self, segment: Segment) -> None:
        segment.needs_replay = False
        segment.unwritten = 0
        self._maybe_delete(segment)

    def _start_segment(self) -> None:
        """A new segment, locked before it bears a segment's name: a sibling scanning for
        orphans never sees it unlocked (it would take it for a dead process's, replay it and
        delete it under its owner)."""
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}{SUFFIX}"
        unnamed = path.with_name(path.name + STARTING)
        fd = os.open(unnamed, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(unnamed, path)  # the lock belongs to the file, whatever its name
        self._segments.append(Segment(path, fd))

    def _maybe_delete(self, segment: Segment) -> bool:
        if not segment.sealed or segment.unwritten > 0 or segment.needs_replay:
            return False
        segment.path.unlink(missing_ok=True)  # before unlocking, so no one replays it needlessly
        os.close(segment.fd)
        self._segments.remove(segment)
        return True

    # --- orphans: segments of processes that died ---------------------------------------------

    def claim_orphans(self) -> list[tuple[Path, int]]:
        """Lock every segment no live process holds; the caller replays, then `release_orphans`."""
        self._remove_abandoned_starts()
        claimed = []
        own = {s.path for s in self._segments}
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            if path in own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not path.exists():  # deleted by its owner between glob and lock
                os.close(fd)
                continue
            claimed.append((path, fd))
        return claimed

    def _remove_abandoned_starts(self) -> None:
        """A segment whose process died while creating it holds nothing: removed once it is
        a minute old and nobody holds its lock (a start takes microseconds, so a younger one
        may be about to be locked by its owner)."""
        for path in self.directory.glob("*" + SUFFIX + STARTING):
            try:
                if time.time() - path.stat().st_mtime < ABANDONED_START_SECONDS:
                    continue
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
            except BlockingIOError:
                pass  # being started right now
            finally:
                os.close(fd)

    @staticmethod
    def release_orphans(claimed: list[tuple[Path, int]], *, replayed: bool) -> None:
        for path, fd in claimed:
            if replayed:
                path.unlink(missing_ok=True)
            os.close(fd)
