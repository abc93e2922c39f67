"""Schema migrations of the run store, with Alembic driven from code (there is no alembic.ini).

``versions/`` holds one script per schema change, named and numbered in order (``0001_baseline``,
``0002_hardening``, ...); ``backend.store.get_engine`` brings every database it opens to the newest
one. Adding a column or a table is: change the ORM model in ``backend/store.py`` and add the next
script under ``versions/`` (docs/STORE.md says how). This module only wraps Alembic's commands on a
connection the store hands over; deciding when to run them is the store's job.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent
BASELINE = "0001_baseline"  # the schema of the release before migrations (tables, no alembic_version)
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for our scripts, running on ``connection`` (see ``env.py``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    return _scripts().get_current_head()


def known_revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, or None where there is no ``alembic_version`` row."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Apply every script from the database's revision up to ``revision``."""
    command.upgrade(alembic_config(connection), revision)


def stamp(connection: Connection, revision: str) -> None:
    """Record ``revision`` without running anything (a database that already has that schema)."""
    command.stamp(alembic_config(connection), revision)
