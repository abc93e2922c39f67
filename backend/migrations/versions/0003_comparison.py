"""Honest comparison: what a run was selected on, its split sizes, its test figures with intervals, its
temperature, and every scored item's prediction (what paired comparisons match on).

Columns are added to ``runs`` (NULL for runs stored before: ``selection_split`` NULL reads as
"selected on test"); ``predictions`` is a new table, so nothing existing is rebuilt beyond ``runs``
on SQLite (batch mode, foreign keys off while the store migrates).

Revision ID: 0003_comparison
Revises: 0002_hardening
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_comparison"
down_revision = "0002_hardening"
branch_labels = None
depends_on = None

RUN_COLUMNS = (
    ("selection_split", sa.String(20)),
    ("split_counts", sa.JSON()),
    ("test_metrics", sa.JSON()),
    ("temperature", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        for name, type_ in RUN_COLUMNS:
            runs.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(),
                  sa.ForeignKey("runs.id", ondelete="CASCADE", name="fk_predictions_run_id_runs"), nullable=False),
        sa.Column("evaluation_id", sa.Integer(),
                  sa.ForeignKey("evaluations.id", ondelete="CASCADE", name="fk_predictions_evaluation_id_evaluations"),
                  nullable=True),
        sa.Column("split", sa.String(20), nullable=False),
        sa.Column("item_hash", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("true_index", sa.Integer(), nullable=False),
        sa.Column("pred_index", sa.Integer(), nullable=False),
        sa.Column("probs", sa.JSON(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )  # fmt: skip
    op.create_index("ix_predictions_run_id_evaluation_id", "predictions", ["run_id", "evaluation_id"])


def downgrade() -> None:
    op.drop_index("ix_predictions_run_id_evaluation_id", table_name="predictions")
    op.drop_table("predictions")
    with op.batch_alter_table("runs") as runs:
        for name, _ in reversed(RUN_COLUMNS):
            runs.drop_column(name)
