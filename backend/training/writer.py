"""What a training run tells the outside world: the ``MetricsWriter`` protocol the loop writes through.

The loop only calls this protocol, which keeps it testable and the store swappable (torchtune's
metric-logger pattern). The product's implementation, over the run store, is
``backend.runs.writer.StoreWriter``; nothing under ``backend/training/`` imports the store or the
run manager (tests/test_layering.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from backend.training.metrics import EvalReport


class MetricsWriter(Protocol):
    """What a training run tells the outside world, in the order it happens."""

    def run_started(self, *, class_names: list[str], class_counts: dict, device: str, num_params: int,
                    total_epochs: int, dataset_fingerprint: str | None = None) -> None: ...  # fmt: skip

    def log_epoch(self, row: Mapping[str, Any]) -> None: ...

    def log_best(self, *, epoch: int, metrics: Mapping[str, float], train_acc: float, checkpoint_path: Path) -> None: ...

    def log_test(self, *, selection_split: str, split_counts: Mapping[str, Any], test_metrics: Mapping[str, Any],
                 temperature: float, predictions: list[dict[str, Any]]) -> None: ...  # fmt: skip

    def run_finished(self, status: str, *, error: str | None = None, report: EvalReport | None = None,
                     checkpoint_path: Path | None = None) -> None: ...  # fmt: skip


class OutputFiles(Protocol):
    """Where ``fit`` leaves its files (``backend.runs.artifacts.RunFiles`` names them for a run)."""

    @property
    def folder(self) -> Path: ...

    @property
    def best(self) -> Path: ...

    @property
    def last(self) -> Path: ...

    @property
    def predictions(self) -> Path: ...
