"""Container ownership: a tenant's tools may name only containers its own calls made.

A code interpreter's `container` or a hosted shell's `container_reference` naming any other
id (another tenant's, or one never seen) gets the 404 of an id that does not exist, as late
as an unknown response id's (the time must not tell that it exists), and is never
forwarded. The containers it does own come back with the unit each was made as, so that
its worst case prices them at their real size."""

import asyncio
import time

from billing.db.container_sessions import owned_containers
from billing.tool_units import named_containers
from proxy.errors import ApiError
from proxy.gateway.sessions import NOT_FOUND_SECONDS
from proxy.gateway.state import ProxyState


async def owned_container_units(state: ProxyState, tenant_id: int, tools: object) -> dict[str, str]:
    """The unit of each container the request's tools name; ApiError 404 for one the tenant
    did not make."""
    named = named_containers(tools)
    if not named:
        return {}
    started = time.monotonic()
    owned = await owned_containers(state.engine, tenant_id, named)
    missing = next((container for container in named if container not in owned), None)
    if missing is not None:
        await asyncio.sleep(max(0.0, started + NOT_FOUND_SECONDS - time.monotonic()))
        raise ApiError(404, f"Container with id '{missing[:128]}' not found.", code=None, param="tools")
    return owned
