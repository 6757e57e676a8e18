"""Logging: one JSON object a line (or plain text), carrying the id of the request being
served. Bodies are never logged, and neither are keys: handlers log ids and sizes only, and
every record, aiohttp's own included (its "Error handling request" quotes the header line
it could not parse), has credentials redacted before any handler sees it."""

import contextvars
import logging
import re
import sys
from datetime import datetime, timezone

import orjson

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


_CREDENTIALS = re.compile(
    r"(?i)((?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key)\s*[:=]\s*)[^\r\n'\"]+"
    r"|(bearer\s+|basic\s+)[^\s'\"]+"
    r"|(bpk_)[\w\-]+")
_REDACTED_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal", "aiohttp.client")


def redact(text: str) -> str:
    """`text` with the values of credential headers, bearer tokens and issued keys hidden."""
    return _CREDENTIALS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "[redacted]", text)


class RedactCredentials(logging.Filter):
    """Rewrites a record so that no credential it quotes survives, in its message or in its
    traceback (formatted here, once, then dropped from the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "access"):  # an access line: made of redacted parts (proxy/observability/access_log.py)
            return True
        message = record.getMessage()
        record.msg, record.args = redact(message), ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_REDACT = RedactCredentials()


def redact_aiohttp_logs() -> None:
    """Put the filter on aiohttp's own loggers (whatever handlers the embedding app uses)."""
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id:
            line["request_id"] = request_id
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        access = getattr(record, "access", None)
        if access is not None:
            text += " " + " ".join(f"{name}={value}" for name, value in access.items() if value is not None)
        request_id = current_request_id.get()
        return f"{text} [request {request_id}]" if request_id else text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes, not what it was at set-up: a
    test runner swaps (and closes) its capture streams, and libraries log from `atexit`."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


OWN_LOGGERS = ("proxy", "billing", "billing_proxy")


def configure_logging(level: str, fmt: str, *, verbose: bool = False, own_level: str | None = None) -> None:
    """Our own loggers at `own_level` (default `level`); every other library's (the embedded
    PostgreSQL's, alembic's, aiohttp's) only from WARNING up, unless `verbose` or DEBUG."""
    handler = _StderrHandler()
    handler.addFilter(_REDACT)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = level.upper()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if verbose or level == "DEBUG" else max(logging.WARNING, logging.getLevelName(level)))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel((own_level or level).upper())
    redact_aiohttp_logs()
