"""What every command of the CLI shares: its error, the database it runs on, the audit actor."""

import asyncio
import errno
import getpass
import socket

from billing.db.engine import embedded_database_url, make_engine
from billing.db.migrate import upgrade_to_head
from billing.db.prices import sync_catalog
from proxy.app import merged_catalog
from proxy.config.settings import Settings


class CliError(Exception):
    pass


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded_database_url(settings.home)


def ready_database(settings: Settings) -> str:
    url = database_url(settings)
    upgrade_to_head(url)
    return url


def run_db(settings: Settings, action):
    """Migrate, then run `action(engine)` on a fresh engine in a fresh event loop; its result."""
    url = ready_database(settings)

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


def check_port_free(host: str, port: int) -> None:
    """Fail in one line, before anything starts, when the address is taken (bound the way
    aiohttp binds it: SO_REUSEADDR, so a socket lingering in TIME_WAIT does not count)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
                raise CliError(f"{host}:{port} {reason}; is another server running there? Stop it or pass "
                               "--port.") from None
