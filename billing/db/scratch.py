"""Throw-away databases on a server, for tests and benchmarks."""

import asyncio
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import asyncpg

from billing.db.engine import embedded_database_url, plain_url


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


async def execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def server_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL in a temporary directory."""
    return os.environ.get("DATABASE_URL") or embedded_database_url(Path(tempfile.mkdtemp()))


@contextmanager
def scratch_database(server: str, prefix: str) -> Iterator[str]:
    """A new, empty database on `server`, dropped afterwards. Call outside an event loop."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(execute(server, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server, name)
    finally:
        asyncio.run(execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
