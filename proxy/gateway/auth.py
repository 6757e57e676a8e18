"""Who is calling: the key in `Authorization: Bearer`, checked against the mirror of keys in
memory (no database round trip), and whether that key may use the model it names."""

from datetime import datetime, timezone

from aiohttp import web

from billing.keys import DISPLAY_PREFIX_LENGTH, KeyGrant, KeyRefused, admit_key, hash_secret, model_allowed
from proxy.errors import ApiError
from proxy.gateway.headers import bearer_token
from proxy.gateway.state import ProxyState
from proxy.observability.access_log import CALLER


async def authenticate(request: web.Request, state: ProxyState) -> KeyGrant:
    if len(request.headers.getall("Authorization", ())) > 1:
        raise ApiError(401, "Send exactly one Authorization header.", code="invalid_api_key")
    secret = bearer_token(request.headers)
    if secret is None:
        raise ApiError(401, "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
                       code="invalid_api_key")
    secret_hash = hash_secret(secret)
    grant = state.mirror.grant(secret_hash) or await state.mirror.grant_after_sync(secret_hash)
    if grant is not None:
        request[CALLER] = (grant.tenant_name, grant.key_id, secret[:DISPLAY_PREFIX_LENGTH])
    try:
        return admit_key(grant, datetime.now(timezone.utc))
    except KeyRefused as refused:
        raise ApiError(refused.status, refused.message, code=refused.code) from None


def check_model_allowed(state: ProxyState, grant: KeyGrant, model: str) -> None:
    if not model_allowed(grant, model, state.mirror.pricebook.resolve_name(model)):
        raise ApiError(403, f"This API key may not use the model {model!r}.", code="model_not_allowed",
                       param="model")
