"""The admin API's OpenAPI 3.1 document, generated from the operations table and the same
pydantic models that validate requests and serialise responses."""

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from proxy.admin.models import fields

REF = "#/components/schemas/{model}"
_ERROR_TEXT = {400: "Invalid request (the field is named in error.param)", 401: "Missing or wrong admin token",
               404: "No such object", 409: "Conflicts with the current state",
               429: "Too many wrong admin tokens from this address lately (see Retry-After)"}


def build_document(operations) -> dict[str, Any]:
    models = {(op.body, "validation") for op in operations if op.body} | \
             {(op.response, "serialization") for op in operations} | {(fields.ErrorOut, "serialization")}
    refs, definitions = models_json_schema(sorted(models, key=lambda pair: pair[0].__name__), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": fields.MAX_ID}}
            for name in re.findall(r"{(\w+)}", op.path)
        ]
        if op.query is not None:
            schema = op.query.model_json_schema()
            for name, prop in schema["properties"].items():
                prop = {k: v for k, v in prop.items() if k != "title"}
                parameters.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                                   "schema": prop})
        operation: dict[str, Any] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "security": [{"adminToken": []}],
            "parameters": parameters,
            "responses": {
                str(op.status): {"description": "OK", "content": {
                    op.media_type: {"schema": {"type": "string"} if op.media_type != "application/json"
                                    else refs[(op.response, "serialization")]}}},
                **{str(code): {"description": _ERROR_TEXT[code], "content": {
                    "application/json": {"schema": refs[(fields.ErrorOut, "serialization")]}}}
                   for code in sorted(set(op.errors) | {400, 401, 429})},
            },
        }
        if op.body is not None:
            required = any(f.is_required() for f in op.body.model_fields.values())
            operation["requestBody"] = {"required": required, "content": {
                "application/json": {"schema": refs[(op.body, "validation")]}}}
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "billing-proxy admin API", "version": "1",
                 "description": "Tenants, keys, prices, reports and the audit log. Money is a decimal string."},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
