"""Alembic's entry point for our scripts: runs on the connection ``backend.migrations`` passes in.

SQLite cannot alter most things in place, so scripts use batch mode there (copy, swap); the store
runs them with foreign keys off so that replacing a parent table does not cascade into its children.
"""

from alembic import context

from backend.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `python -m backend db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
