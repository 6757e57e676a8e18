"""What every command of the CLI shares: its error, the database it runs on, the audit actor."""

import asyncio
import getpass

from billing.db.engine import embedded_database_url, make_engine
from billing.db.migrate import upgrade_to_head
from billing.db.prices import sync_catalog
from proxy.app import merged_catalog
from proxy.settings import Settings


class CliError(Exception):
    pass


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded_database_url(settings.home)


def _ready_database(settings: Settings) -> str:
    url = database_url(settings)
    upgrade_to_head(url)
    return url


def _run_db(settings: Settings, action):
    """Migrate, then run `action(engine)` on a fresh engine in a fresh event loop; its result."""
    url = _ready_database(settings)

    async def runner():
        engine = make_engine(url, pool_size=2)
        try:
            await sync_catalog(engine, merged_catalog(settings))
            return await action(engine)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def actor() -> str:
    """Who the audit log names for a CLI change."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
