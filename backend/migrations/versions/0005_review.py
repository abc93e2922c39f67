"""Team review: runs carry tags (a ``run_tags`` table) and their dataset's fingerprint (lineage).

``runs.dataset_fingerprint`` is NULL for runs stored before (their dataset's state at training time
is unknown, so no change can be reported for them). ``run_tags`` is a new table: one row per
(run, tag), deleted with its run.

Revision ID: 0005_review
Revises: 0003_comparison
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_review"
down_revision = "0004_team"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("dataset_fingerprint", sa.String(64), nullable=True))
    op.create_table(
        "run_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(),
                  sa.ForeignKey("runs.id", ondelete="CASCADE", name="fk_run_tags_run_id_runs"), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_tags"),
        sa.UniqueConstraint("run_id", "tag", name="uq_run_tags_run_id_tag"),
    )  # fmt: skip
    op.create_index("ix_run_tags_tag", "run_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_run_tags_tag", table_name="run_tags")
    op.drop_table("run_tags")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("dataset_fingerprint")
