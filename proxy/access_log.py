"""The access log: one line per call, written when the reply is done (a stream's at its
end), with what an operator asks first: status, latency, who, which model, tokens, charge.
Never a body, never a secret: the key shows as its listing prefix."""

import logging
import time

from aiohttp import web

from billing.ledger import LedgerEntry

ACCESS = logging.getLogger("billing_proxy.access")

# Set by the handlers as the call goes on; read once the reply is done.
CALLER = web.RequestKey("caller", tuple)  # (tenant name, key id, key prefix)
REQUESTED_MODEL = web.RequestKey("requested_model", str)
ENTRY = web.RequestKey("ledger_entry", object)  # the LedgerEntry the call was billed with
FIRST_BYTE_MS = web.RequestKey("first_byte_ms", int)
ERROR_CODE = web.RequestKey("error_code", str)

# Probes and scrapes would drown the calls.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def log_access(request: web.Request, request_id: str, status: int, started: float, priced_model: str | None) -> None:
    if request.path in QUIET_PATHS:
        return
    fields = {"request_id": request_id, "method": request.method, "path": request.path, "status": status,
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
    if ERROR_CODE in request:
        fields["error"] = request[ERROR_CODE]
    ACCESS.info("%s %s %d", request.method, request.path, status, extra={"access": fields})


def access_text(fields: dict) -> str:
    """`key=value ...` for the text log format."""
    return " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
