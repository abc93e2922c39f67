"""Where a training run reports to: ``StoreWriter`` (the run-store implementation of the loop's
``backend.training.writer.MetricsWriter`` protocol) and the run's log.

The loop only calls the protocol (``run_started``, ``log_epoch``, ``log_best``, ``log_test``,
``run_finished``), which keeps it testable and the store swappable (torchtune's metric-logger
pattern). ``StoreWriter`` is the implementation the product uses: the run row is the contract with
the dashboard. Moved here from ``backend/training/`` so that training imports neither the store nor
the run manager.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend import store
from backend.errors import WorkbenchError
from backend.runs import artifacts
from backend.runs.processes import process_start_time, this_host

if TYPE_CHECKING:
    from backend.training.metrics import EvalReport

LOG_FORMAT = "%(asctime)s %(message)s"


class RunClaimError(WorkbenchError, RuntimeError):
    """The run row is not waiting to be trained by this process."""


class StoreWriter:
    """MetricsWriter over one row of the run store (``backend.store``)."""

    def __init__(self, run_id: int, url: str | None = None):
        self.run_id = int(run_id)
        self.url = url

    @classmethod
    def create(cls, *, name: str, model: str, config: dict, dataset: str, url: str | None = None) -> StoreWriter:
        """A writer for a new run row (``python -m backend train`` without ``--run-id``)."""
        from backend.runs.manager import claim_run_folder

        run_id = store.create_run(name=name, model=model, config=config, dataset=dataset, status="queued", url=url)
        claim_run_folder(run_id)
        return cls(run_id, url)

    def claim(self, *, pid: int | None = None, **fields: Any) -> None:
        """Take the run for this process: queued -> running, recording this host and ``fields`` (config, name...).

        A run the run manager already marked running for this very pid is also ours. Anything else
        (finished, cancelled, or running in another process) raises ``RunClaimError`` and the row
        is left as it is. Compare-and-set, so a cancel that lands first wins.
        """
        values = {"status": "running", "started_at": store.utcnow(), "error": None, "host": this_host(),
                  "heartbeat_at": store.utcnow(), **fields}
        if pid is not None:
            values.update(pid=pid, pid_start_time=process_start_time(pid))
        if store.update_run_if(self.run_id, ["queued"], running_pid=pid, url=self.url, **values):
            return
        run = store.get_run(self.run_id, url=self.url)
        where = f" in process {run.pid}" if run.status == "running" else ""
        raise RunClaimError(
            f"run {self.run_id} is {run.status}{where}; only a queued run can be trained "
            "(launch a new run to train this config again)"
        )

    def run_started(self, *, class_names: list[str], class_counts: dict, device: str, num_params: int,
                    total_epochs: int, dataset_fingerprint: str | None = None) -> None:  # fmt: skip
        store.update_run(
            self.run_id, url=self.url, class_names=list(class_names), class_counts=class_counts, device=device,
            num_params=int(num_params), total_epochs=int(total_epochs), current_epoch=0,
            dataset_fingerprint=dataset_fingerprint,
        )  # fmt: skip

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        store.log_epoch(self.run_id, dict(row), url=self.url)

    def log_best(self, *, epoch: int, metrics: Mapping[str, float], train_acc: float, checkpoint_path: Path) -> None:
        store.update_run(
            self.run_id, url=self.url, best_epoch=int(epoch), best_val_f1=float(metrics["f1"]),
            best_val_acc=float(metrics["acc"]), best_metrics=dict(metrics), train_acc_at_best=float(train_acc),
            checkpoint_path=str(checkpoint_path),
        )  # fmt: skip

    def log_test(self, *, selection_split: str, split_counts: Mapping[str, Any], test_metrics: Mapping[str, Any],
                 temperature: float, predictions: list[dict[str, Any]]) -> None:  # fmt: skip
        """The one test evaluation: figures with intervals, calibration, and the per-item predictions."""
        store.save_predictions(self.run_id, predictions, split="test", url=self.url)
        store.update_run(
            self.run_id, url=self.url, selection_split=selection_split, split_counts=dict(split_counts),
            test_metrics=dict(test_metrics), temperature=float(temperature),
        )  # fmt: skip

    def run_finished(self, status: str, *, error: str | None = None, report: EvalReport | None = None,
                     checkpoint_path: Path | None = None) -> None:  # fmt: skip
        if report is not None:
            store.save_class_metrics(self.run_id, report.per_class, url=self.url)
            store.save_confusion(self.run_id, report.matrix, report.class_names, url=self.url)
        fields: dict[str, Any] = {"status": status, "finished_at": store.utcnow(), "error": error}
        if checkpoint_path is not None:
            fields["checkpoint_path"] = str(checkpoint_path)
        store.update_run(self.run_id, url=self.url, **fields)


def run_dir(run_id: int) -> Path:
    """The run's artifacts folder (checkpoints, log, predictions), created if missing."""
    folder = artifacts.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_run_log(run_id: int) -> logging.Logger:
    """A logger writing to stdout and appending to ``artifacts/runs/<id>/log.txt``.

    The run manager already points stdout at that file; then the file handler is skipped, so a
    supervised run does not write every line twice.
    """
    logger = logging.getLogger(f"backend.train.run{run_id}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    close_run_log(logger)
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    log_path = artifacts.RunFiles(run_dir(run_id)).log
    if not _stdout_is(log_path):
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def close_run_log(logger: logging.Logger) -> None:
    """Flush and detach the logger's handlers (closing the log file)."""
    for handler in list(logger.handlers):
        handler.flush()
        if isinstance(handler, logging.FileHandler):
            handler.close()
        logger.removeHandler(handler)


def _stdout_is(path: Path) -> bool:
    """True when this process's stdout is the file at ``path`` (redirected by the run manager)."""
    try:
        out = os.fstat(sys.stdout.fileno())
        target = path.stat()
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)
