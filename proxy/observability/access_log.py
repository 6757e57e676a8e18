"""The access log: one line per call, written when the reply is done (a stream's at its
end), with what an operator asks first: status, latency, who, which model, tokens, charge.
Never a body, never a secret: the key shows as its listing prefix, a path is redacted.

In `serve` the lines are formatted here and written to stderr in batches (`batch_lines`):
a log record per call through `logging` (a caller lookup, a pid system call, a formatter,
a write) cost the proxy about 9% of its CPU per call. Elsewhere (tests, an embedding app)
they go through the `billing_proxy.access` logger. Either way that logger's level and
`disabled` decide whether there are lines at all."""

import logging
import sys
import time
from datetime import datetime, timezone

import orjson
from aiohttp import web

from billing.ledger import LedgerEntry
from proxy.observability.logs import redact

ACCESS = logging.getLogger("billing_proxy.access")

# Set by the handlers as the call goes on; read once the reply is done.
CALLER = web.RequestKey("caller", tuple)  # (tenant name, key id, key prefix)
REQUESTED_MODEL = web.RequestKey("requested_model", str)
ENTRY = web.RequestKey("ledger_entry", object)  # the LedgerEntry the call was billed with
FIRST_BYTE_MS = web.RequestKey("first_byte_ms", int)
ERROR_CODE = web.RequestKey("error_code", str)
OUTPUT_FIT = web.RequestKey("output_fit", tuple)  # (cap, limit) of a call fitted to what a limit had left

# Probes and scrapes would drown the calls.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
BATCH_BYTES = 64 * 1024  # a batch is written at this size, or at the next flush (every 0.2 s)


class BatchedLines:
    """Access lines in the format of the other logs (JSON or text), held until `flush()` or
    until a batch is full, then written to stderr in one call."""

    def __init__(self, fmt: str) -> None:
        self.json = fmt == "json"
        self._lines: list[str] = []
        self._size = 0
        self._second, self._stamp = -1, ""

    def _time(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:  # the date and time are formatted once a second
            self._second = second
            self._stamp = (datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") if self.json
                           else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        millis = int((now - second) * 1000)
        return f"{self._stamp}.{millis:03d}+00:00" if self.json else f"{self._stamp},{millis:03d}"

    def add(self, message: str, fields: dict) -> None:
        if self.json:
            line = orjson.dumps({"time": self._time(), "level": "INFO", "logger": ACCESS.name, "message": message,
                                 **fields}).decode() + "\n"
        else:
            pairs = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
            line = f"{self._time()} INFO {ACCESS.name}: {message} {pairs}\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            self._size = 0
            sys.stderr.write(text)
            sys.stderr.flush()


_batched: BatchedLines | None = None


def batch_lines(fmt: str) -> BatchedLines:
    """From now on, in this process, access lines are written in batches (`serve`)."""
    global _batched
    _batched = BatchedLines(fmt)
    return _batched


async def flush_access_log() -> None:
    if _batched is not None:
        _batched.flush()


def log_access(request: web.Request, request_id: str, status: int, started: float, priced_model: str | None) -> None:
    if request.path in QUIET_PATHS:
        return
    path = redact(request.path)  # a client may put anything in a path, a key included
    fields = {"request_id": request_id, "method": request.method, "path": path, "status": status,
              "latency_ms": round((time.perf_counter() - started) * 1000, 2),
              "ttfb_ms": request.get(FIRST_BYTE_MS)}
    caller = request.get(CALLER)
    if caller is not None:
        fields["tenant"], fields["key_id"], fields["key_prefix"] = caller
    if REQUESTED_MODEL in request:
        fields["model"] = request[REQUESTED_MODEL]
        fields["priced_model"] = priced_model
    entry: LedgerEntry | None = request.get(ENTRY)
    if entry is not None:
        usage = entry.usage
        fields.update(input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens,
                      output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens,
                      charge=str(entry.charge), estimated=entry.estimated)
    if OUTPUT_FIT in request:
        fields["output_cap"], fields["output_cap_limit"] = request[OUTPUT_FIT]
    if ERROR_CODE in request:
        fields["error"] = request[ERROR_CODE]
    message = f"{request.method} {path} {status}"
    if _batched is not None:
        _batched.add(message, fields)
        return
    record = logging.LogRecord(ACCESS.name, logging.INFO, __file__, 0, message, None, None)
    record.access = fields
    ACCESS.handle(record)
