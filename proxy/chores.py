"""Background chores of a replica, each run every few seconds until shutdown."""

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(seconds: float, chore: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await chore()
        except Exception:
            log.warning("%s failed; trying again in %ss", name, seconds, exc_info=True)
