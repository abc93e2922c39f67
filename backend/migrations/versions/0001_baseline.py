"""Baseline: the schema of the release before migrations, exactly (five tables and their indexes).

A database made by that release has these tables and no ``alembic_version``; the store stamps it
with this revision and upgrades it from here.

Revision ID: 0001_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "lost")
EPOCH_FLOAT_COLUMNS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_precision",
    "val_recall",
    "val_f1",
    "lr",
    "seconds",
)


def _run_fk(table: str) -> sa.Column:
    fk = sa.ForeignKey("runs.id", ondelete="CASCADE", name=f"fk_{table}_run_id_runs")
    return sa.Column("run_id", sa.Integer(), fk, nullable=False)


def _evaluation_fk(table: str) -> sa.Column:
    fk = sa.ForeignKey("evaluations.id", ondelete="CASCADE", name=f"fk_{table}_evaluation_id_evaluations")
    return sa.Column("evaluation_id", sa.Integer(), fk, nullable=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("dataset", sa.String(1000), nullable=False),
        sa.Column("class_names", sa.JSON(), nullable=True),
        sa.Column("class_counts", sa.JSON(), nullable=True),
        sa.Column("device", sa.String(100), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_start_time", sa.Float(), nullable=True),
        sa.Column("num_params", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_epoch", sa.Integer(), nullable=True),
        sa.Column("total_epochs", sa.Integer(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("best_val_f1", sa.Float(), nullable=True),
        sa.Column("best_val_acc", sa.Float(), nullable=True),
        sa.Column("best_metrics", sa.JSON(), nullable=True),
        sa.Column("train_acc_at_best", sa.Float(), nullable=True),
        sa.Column("checkpoint_path", sa.String(1000), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name=op.f("ck_runs_status")),
    )
    for column in ("status", "model", "created_at", "dataset"):
        op.create_index(f"ix_runs_{column}", "runs", [column])

    op.create_table(
        "epoch_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        _run_fk("epoch_metrics"),
        sa.Column("epoch", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in EPOCH_FLOAT_COLUMNS),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_epoch_metrics"),
        sa.UniqueConstraint("run_id", "epoch", name="uq_epoch_metrics_run_id_epoch"),
    )

    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        _run_fk("evaluations"),
        sa.Column("dataset", sa.String(1000), nullable=False),
        sa.Column("tta", sa.String(50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_run_id", "evaluations", ["run_id"])

    op.create_table(
        "class_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        _run_fk("class_metrics"),
        _evaluation_fk("class_metrics"),
        sa.Column("class_name", sa.String(200), nullable=False),
        sa.Column("precision", sa.Float(), nullable=True),
        sa.Column("recall", sa.Float(), nullable=True),
        sa.Column("f1", sa.Float(), nullable=True),
        sa.Column("support", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_class_metrics"),
    )
    op.create_index("ix_class_metrics_run_id_evaluation_id", "class_metrics", ["run_id", "evaluation_id"])

    op.create_table(
        "confusion_matrices",
        sa.Column("id", sa.Integer(), nullable=False),
        _run_fk("confusion_matrices"),
        _evaluation_fk("confusion_matrices"),
        sa.Column("class_names", sa.JSON(), nullable=False),
        sa.Column("matrix", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_confusion_matrices"),
    )
    op.create_index("ix_confusion_matrices_run_id_evaluation_id", "confusion_matrices", ["run_id", "evaluation_id"])


def downgrade() -> None:
    for table in ("confusion_matrices", "class_metrics", "evaluations", "epoch_metrics", "runs"):
        op.drop_table(table)
