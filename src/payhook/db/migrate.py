"""Running the Alembic migrations of :mod:`payhook.migrations` from code (CLI, release step,
tests). The configuration is built here, from where the package is installed, so a wheel
migrates without a checkout or an ``alembic.ini``."""

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    config = Config()
    # A directory on disk (a wheel installs files; Alembic reads env.py and versions/ by path):
    # in the installed package, or the repository's migrations/ for an editable install.
    # Options are interpolated, so a % in the path is doubled.
    location = str(files("payhook.migrations")).replace("%", "%%")
    config.set_main_option("script_location", location)
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. Blocking: call it from a thread inside an event loop."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)
