"""Every artifact path and file name of a run, in one place (torch-free: the dashboard reads it).

A run's files live in ``ARTIFACTS_DIR/runs/<id>/``: the trainer's ``log.txt``, the checkpoints
``best.pt`` (best validation macro-F1) and ``last.pt``, and ``test_predictions.csv``. The
scheduler's file lock (SQLite stores on one host) sits beside the run folders. For remote trainers
(the ``ray`` executor) ``ARTIFACTS_DIR`` must be storage shared by every host: the run row keeps the
absolute checkpoint path the trainer wrote, and readers find the files by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend import config

LOG_FILE = "log.txt"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
PREDICTIONS_FILE = "test_predictions.csv"
SCHEDULER_LOCK = ".scheduler.lock"
ORPHANED_PREFIX = "orphaned-"


@dataclass(frozen=True)
class RunFiles:
    """The files of one run folder (or of any output folder a training writes into)."""

    folder: Path

    @property
    def log(self) -> Path:
        return self.folder / LOG_FILE

    @property
    def best(self) -> Path:
        return self.folder / BEST_CHECKPOINT

    @property
    def last(self) -> Path:
        return self.folder / LAST_CHECKPOINT

    @property
    def predictions(self) -> Path:
        return self.folder / PREDICTIONS_FILE

    def checkpoints_kept(self) -> list[str]:
        """Names of the checkpoints present, best first."""
        return [path.name for path in (self.best, self.last) if path.is_file()]


def runs_root() -> Path:
    """``ARTIFACTS_DIR/runs``: one folder per run."""
    return config.artifacts_dir() / "runs"


def run_dir(run_id: int) -> Path:
    """Folder of one run's checkpoints, log and predictions (not created)."""
    return config.run_dir(run_id)


def run_files(run_id: int) -> RunFiles:
    return RunFiles(run_dir(run_id))


def log_path(run_id: int) -> Path:
    """Where a launched run's stdout and stderr go."""
    return run_files(run_id).log


def best_checkpoint(run_id: int) -> Path:
    return run_files(run_id).best


def last_checkpoint(run_id: int) -> Path:
    return run_files(run_id).last


def predictions_path(run_id: int) -> Path:
    return run_files(run_id).predictions


def scheduler_lock_path() -> Path:
    return runs_root() / SCHEDULER_LOCK


def orphaned_dir(run_id: int, stamp: str) -> Path:
    """Where files left under a reused run id are moved aside."""
    return runs_root() / f"{ORPHANED_PREFIX}{int(run_id)}-{stamp}"
