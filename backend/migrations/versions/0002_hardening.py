"""Hardening: run ids are never reused, and a run records the host that trains it.

On SQLite the ``runs`` table is rebuilt with AUTOINCREMENT (batch mode: copy, drop, rename; the store
runs this with foreign keys off so the children of ``runs`` survive). PostgreSQL's sequence never
hands an id out twice already, so there only the column is added.

Revision ID: 0002_hardening
Revises: 0001_baseline
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_hardening"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def _rebuild_runs(**table_kwargs):
    """Batch operations on ``runs``; on SQLite the table is always rebuilt, with ``table_kwargs``."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    return op.batch_alter_table("runs", recreate="always" if sqlite else "auto", table_kwargs=table_kwargs)


def upgrade() -> None:
    with _rebuild_runs(sqlite_autoincrement=True) as runs:
        runs.add_column(sa.Column("host", sa.String(255), nullable=True))


def downgrade() -> None:
    with _rebuild_runs() as runs:
        runs.drop_column("host")
