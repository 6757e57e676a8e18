"""Apply the alembic migrations (under an advisory lock, see migrations/env.py)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Blocking: call it before the event loop starts (alembic runs its own loop)."""
    command.upgrade(alembic_config(database_url), "head")
