"""Errors the proxy raises itself, in the OpenAI shape, mapped to HTTP in one middleware."""

import logging
import time
from uuid import uuid4

import orjson
import sqlalchemy.exc
from aiohttp import web

from billing.db.errors import database_unreachable, refused_by_database

from proxy.observability import metrics
from proxy.observability.access_log import ACCESS, ERROR_CODE, log_access
from proxy.observability.logs import current_request_id

log = logging.getLogger(__name__)

REQUEST_ID = web.RequestKey("request_id", object)  # a UUID: the ledger's key for a billed call
MODEL = web.RequestKey("model", str)  # the priced model the call resolved to, once known
# Paths that are counted in the request metrics under their own name.
_ENDPOINTS = {"/v1/responses": "responses", "/v1/chat/completions": "chat.completions",
              "/v1/embeddings": "embeddings", "/v1/responses/compact": "responses.compact"}


class ApiError(Exception):
    """An error of the proxy's own, answered as {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None,
                 refusal: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers or {}
        self.refusal = refusal  # a budget refusal's cause, counted for the dashboard


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


# Refusals a retry cannot change: the SDKs honour `x-should-retry: false` and make one
# attempt. A malformed 2xx reply was billed by the upstream: a retry would be billed again.
_FINAL_CODES = frozenset({"insufficient_quota", "upstream_bad_response", "upstream_body_too_large"})
# Worth another try soon: the quota check may be back in a second. (An upstream that could
# not be reached says so where it is raised; one whose reply broke off may have billed it.)
_TRANSIENT_CODES = frozenset({"quota_unavailable"})


def retry_hint(error: ApiError) -> dict[str, str]:
    """`x-should-retry` (and `Retry-After`) for an error that does not set its own."""
    if {name.lower() for name in error.headers} & {"x-should-retry", "retry-after"}:
        return {}
    if error.code in _TRANSIENT_CODES:
        return {"x-should-retry": "true", "retry-after": "1"}
    if error.code in _FINAL_CODES or 400 <= error.status < 500 and error.status not in (408, 429):
        return {"x-should-retry": "false"}
    return {}


def error_response(error: ApiError) -> web.Response:
    hint = retry_hint(error)
    return web.Response(
        status=error.status,
        body=error_body(error.message, error.type, error.code, error.param),
        content_type="application/json",
        headers={**error.headers, **hint} if hint else error.headers,
    )


_HTTP_ERRORS = {
    404: ("Unknown request URL.", "invalid_request_error", "unknown_url"),
    405: ("Method not allowed for this URL.", "invalid_request_error", "method_not_allowed"),
    413: ("Request body too large.", "invalid_request_error", "request_too_large"),
}


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Gives every request an id (in the logs and as `x-request-id`), counts it, and turns
    errors into the OpenAI shape."""
    request_id = uuid4()
    request[REQUEST_ID] = request_id
    token = current_request_id.set(str(request_id))
    started = time.perf_counter()
    try:
        response = await _answer(request, handler)
        if ACCESS.isEnabledFor(logging.INFO):
            log_access(request, str(request_id), response.status, started, request.get(MODEL))
    finally:
        current_request_id.reset(token)
    endpoint = _ENDPOINTS.get(request.path)
    if endpoint:
        metrics.count_request(endpoint, request.get(MODEL, ""), response.status, time.perf_counter() - started)
    if not response.prepared:
        response.headers.setdefault("x-request-id", str(request_id))
    return response


async def _answer(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        request[ERROR_CODE] = error.code or error.type
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message, type_, code = _HTTP_ERRORS.get(exc.status, (exc.reason, "invalid_request_error", None))
        request[ERROR_CODE] = code or type_
        return error_response(ApiError(exc.status, message, type=type_, code=code))
    except web.RequestPayloadError:  # a body that cannot be read as sent (bad gzip, cut off)
        request[ERROR_CODE] = "invalid_request_body"
        request.content.feed_eof()  # nothing more of it can be read: aiohttp must not try to drain it
        response = error_response(ApiError(400, "The request body could not be read as sent: is its "
                                                "Content-Encoding right?", code="invalid_request_body"))
        response.force_close()  # where the next request would begin is unknown
        return response
    except Exception as exc:
        if database_unreachable(exc) or isinstance(exc, sqlalchemy.exc.TimeoutError):
            log.error("database unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
            request[ERROR_CODE] = "database_unavailable"
            return error_response(ApiError(503, "The proxy's database is unavailable; try again shortly.",
                                           type="server_error", code="database_unavailable",
                                           headers={"Retry-After": "2", "x-should-retry": "true"}))
        if refused_by_database(exc):  # what the request held cannot be stored (a number out of range)
            log.warning("database refused a value on %s %s: %s", request.method, request.path, type(exc).__name__)
            request[ERROR_CODE] = "invalid_value"
            return error_response(ApiError(400, "A value in the request cannot be stored.", code="invalid_value"))
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, "The proxy failed to handle the request.", type="server_error"))
