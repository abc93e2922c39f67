"""The executor interface: how a queued run's trainer is started, stopped and checked on.

Every executor starts the same program, ``python -m backend train --run-id N``, which claims the
run row and reports through the store; executors differ only in where that process runs. The run
manager (``backend.runs.manager``) decides *when* (queue, concurrency limit) and calls these.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass

from backend import store
from backend.config import REPO_ROOT


@dataclass(frozen=True)
class Started:
    """What an executor knows right after starting a trainer (stored in the run row).

    ``pid`` and ``pid_start_time``: the trainer's process on this host (local executor);
    ``job_id`` and ``address``: the job in a cluster (ray executor). A trainer on another machine
    records its own pid and host when it claims the run.
    """

    pid: int | None = None
    pid_start_time: float | None = None
    host: str | None = None
    job_id: str | None = None
    address: str | None = None


class Executor(ABC):
    """Starts and stops trainers of queued runs."""

    name: str = ""

    @abstractmethod
    def start(self, run: store.RunRecord) -> Started:
        """Start run ``run``'s trainer; raise ``OSError`` or ``ExecutorError`` when it cannot start."""

    @abstractmethod
    def stop(self, run: store.RunRecord, grace: float) -> None:
        """Ask the trainer to stop (it records ``cancelled``), and make sure it is gone after ``grace`` s."""

    def job_alive(self, run: store.RunRecord) -> bool:
        """For a run started but not yet claimed by its trainer: whether its job may still start.

        The local executor records a pid at once, so this is only asked of cluster executors.
        """
        return True

    def job_logs(self, run: store.RunRecord) -> str | None:
        """The job's output as the cluster keeps it (None: this executor keeps none)."""
        return None


def training_command(run_id: int, python: str | None = None) -> list[str]:
    """The trainer's argv: no shell, nothing but the run id, which is an integer."""
    return [python or sys.executable, "-m", "backend", "train", "--run-id", str(int(run_id))]


__all__ = ["REPO_ROOT", "Executor", "Started", "training_command"]
