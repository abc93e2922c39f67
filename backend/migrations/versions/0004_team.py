"""Team use: the executor a run trains on (``local`` or ``ray``), its address and job id there, the trainer's
heartbeat, and a one-row ``scheduler`` table whose row lock serialises queue decisions across hosts.

Existing runs become ``executor = 'local'`` with no heartbeat (liveness from other hosts reads a
missing heartbeat as "never seen": see ``backend.runs.manager.reap``). The ``host`` column exists
since ``0002_hardening`` and the process start time since the baseline (``pid_start_time``).

Revision ID: 0004_team
Revises: 0003_comparison
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_team"
down_revision = "0003_comparison"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("executor", sa.String(20), nullable=False, server_default="local"))
        runs.add_column(sa.Column("executor_address", sa.String(500), nullable=True))
        runs.add_column(sa.Column("executor_job_id", sa.String(200), nullable=True))
        runs.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    scheduler = op.create_table(
        "scheduler",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler"),
    )
    op.bulk_insert(scheduler, [{"id": 1, "updated_at": None}])


def downgrade() -> None:
    op.drop_table("scheduler")
    with op.batch_alter_table("runs") as runs:
        for name in ("heartbeat_at", "executor_job_id", "executor_address", "executor"):
            runs.drop_column(name)
