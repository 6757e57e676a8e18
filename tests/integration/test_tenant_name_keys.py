"""Migration 0017 keys the tenants that exist, and stops, naming them, when two of them are
look-alikes; after it, the database itself refuses a second tenant with the same key."""

import asyncio

import asyncpg
import pytest
from alembic import command

from billing.db.engine import plain_url
from billing.db.migrate import alembic_config
from billing.db.scratch import scratch_database
from billing.operator_text import name_key


def _sql(url: str, statement: str, *args):
    async def run():
        conn = await asyncpg.connect(plain_url(url))
        try:
            return await conn.fetch(statement, *args)
        finally:
            await conn.close()
    return asyncio.run(run())


def _with_tenants(url: str, *names: str) -> None:
    command.upgrade(alembic_config(url), "0016")
    for name in names:
        _sql(url, "INSERT INTO tenants (name) VALUES ($1)", name)


def test_existing_tenants_are_keyed(database_url):
    with scratch_database(database_url, "bp_name_keys") as url:
        _with_tenants(url, "alpha", "Team B", "ｇａｍｍａ")
        command.upgrade(alembic_config(url), "head")
        rows = _sql(url, "SELECT name, name_key FROM tenants ORDER BY id")
        assert [(r["name"], r["name_key"]) for r in rows] == [("alpha", "alpha"), ("Team B", "team b"),
                                                              ("ｇａｍｍａ", "gamma")]
        assert all(r["name_key"] == name_key(r["name"]) for r in rows)  # the frozen copy agrees
        with pytest.raises(asyncpg.UniqueViolationError):
            _sql(url, "INSERT INTO tenants (name, name_key) VALUES ('ALPHA', 'alpha')")
        with pytest.raises(asyncpg.NotNullViolationError):
            _sql(url, "INSERT INTO tenants (name) VALUES ('delta')")


def test_look_alike_tenants_stop_the_migration_naming_them(database_url):
    with scratch_database(database_url, "bp_name_keys") as url:
        _with_tenants(url, "alpha", "beta", "Alpha", "al\u200bpha", "beta ")
        with pytest.raises(RuntimeError) as stopped:
            command.upgrade(alembic_config(url), "head")
        message = str(stopped.value)
        assert "id 1 'alpha', id 3 'Alpha', id 4 'al\\u200bpha'" in message and "id 2 'beta', id 5 'beta '" in message
        assert "Rename" in message
        # nothing was merged or renamed, and the schema is still at 0016
        assert [r["name"] for r in _sql(url, "SELECT name FROM tenants ORDER BY id")] == [
            "alpha", "beta", "Alpha", "al\u200bpha", "beta "]
        assert _sql(url, "SELECT version_num FROM alembic_version")[0]["version_num"] == "0016"
        _sql(url, "UPDATE tenants SET name = 'alpha-2' WHERE id = 3")
        _sql(url, "UPDATE tenants SET name = 'alpha-3' WHERE id = 4")
        _sql(url, "UPDATE tenants SET name = 'beta-2' WHERE id = 5")
        command.upgrade(alembic_config(url), "0017")
        assert _sql(url, "SELECT version_num FROM alembic_version")[0]["version_num"] == "0017"
