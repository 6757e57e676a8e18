"""The admin HTTP API under /admin/: the operations of `proxy/admin/operations.py` as
routes, with their bodies and queries validated, and the OpenAPI document.

Authenticated by `Authorization: Bearer $BILLING_PROXY_ADMIN_TOKEN`, compared in constant
time; with no token configured every /admin/ path answers 404. Only wrong tokens are
counted and, past the guard's limit, refused (`proxy/admin/guard.py`).
"""

import re

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from billing.db.tenants import AlreadyExists, Conflict, NotFound
from proxy.admin.guard import ADMIN_GUARD
from proxy.admin.models import fields
from proxy.admin.operations import OPERATIONS, Operation
from proxy.errors import ApiError, error_response
from proxy.gateway.headers import bearer_token, same_secret
from proxy.gateway.request_body import json_object
from proxy.gateway.state import STATE


def _check_token(request: web.Request) -> None:
    state = request.app[STATE]
    expected = state.settings.admin_token
    if not expected:
        raise ApiError(404, "Unknown request URL.", code="unknown_url")
    if not same_secret(bearer_token(request.headers), expected):
        request.app[ADMIN_GUARD].failed(request.remote, request.path)
        raise ApiError(401, "The admin API needs `Authorization: Bearer <admin token>`.", code="invalid_admin_token")


def _validation_error(error: ValidationError, where: str) -> ApiError:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return ApiError(400, f"Invalid {where}{' field ' + repr(field) if field else ''}: {first['msg']}.", param=field)


def _ids(request: web.Request) -> dict[str, int]:
    ids = {}
    for name, text in request.match_info.items():
        value = int(text) if text.isascii() and text.isdigit() and len(text) < 20 else 0
        if not 1 <= value <= fields.MAX_ID:
            raise ApiError(404, f"No such {name.removesuffix('_id')}.", code="not_found")
        ids[name] = value
    return ids


async def _body(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        return None
    raw = await request.read()
    if not raw.strip() and not any(f.is_required() for f in model.model_fields.values()):
        return model()
    data = json_object(raw)
    try:
        # JSON Schema counts 1.0 as an integer; strict pydantic would not.
        return model.model_validate_json(orjson.dumps(_integral_floats_as_ints(data)))
    except ValidationError as error:
        raise _validation_error(error, "body") from None


def _integral_floats_as_ints(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    return value


def _query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        return None
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise _validation_error(error, "query") from None


def _endpoint(operation: Operation):
    async def handle(request: web.Request) -> web.Response:
        _check_token(request)
        ids = _ids(request)
        body = await _body(request, operation.body)
        query = _query(request, operation.query)
        try:
            state = request.app[STATE]
            extra = {"rules": state.attribution_rules} if operation.attribution else {}
            result = await operation.handler(state.engine, ids, body, query, **extra)
        except NotFound as exc:
            raise ApiError(404, str(exc), code="not_found") from None
        except (AlreadyExists, Conflict) as exc:
            raise ApiError(409, str(exc), code="conflict") from None
        if isinstance(result, str):
            return web.Response(status=operation.status, text=result, content_type=operation.media_type)
        return web.Response(status=operation.status, body=result.model_dump_json(), content_type="application/json")

    return handle


async def openapi_document(request: web.Request) -> web.Response:
    from proxy.admin.openapi import build_document

    _check_token(request)
    return web.json_response(build_document(OPERATIONS), dumps=lambda o: orjson.dumps(o).decode())


_TEMPLATES = [(re.compile("^" + re.sub(r"{\w+}", "[^/]+", op.path) + "$"), op.method) for op in OPERATIONS]


async def admin_not_found(request: web.Request) -> web.Response:
    """Unknown admin paths: 404; a known path with another method: 405 with Allow."""
    _check_token(request)
    allowed = sorted({method for pattern, method in _TEMPLATES if pattern.match(request.path)})
    if allowed:
        response = error_response(ApiError(405, f"Use {', '.join(allowed)} on this URL.", code="method_not_allowed"))
        response.headers["Allow"] = ", ".join(allowed)
        return response
    raise ApiError(404, "Unknown admin URL.", code="unknown_url")


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/openapi.json", openapi_document)
    for operation in OPERATIONS:
        app.router.add_route(operation.method, operation.path, _endpoint(operation))
    app.router.add_route("*", "/admin/{tail:.*}", admin_not_found)

