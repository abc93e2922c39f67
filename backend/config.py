"""Where things live: one place for every path the product reads or writes.

Paths come from environment variables when set, otherwise from the repository root
(never from the current working directory by accident):

- ``RUNS_DB_URL``   SQLAlchemy URL of the run store (default ``sqlite:///<repo>/runs.db``)
- ``DATA_DIR``      folder of datasets, one sub-folder each (default ``<repo>/data``)
- ``ARTIFACTS_DIR`` checkpoints, logs and caches (default ``<repo>/artifacts``)
- ``MAX_CONCURRENT_RUNS`` how many training runs may run at once (default 1: one GPU)
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def runs_db_url() -> str:
    return os.environ.get("RUNS_DB_URL") or f"sqlite:///{REPO_ROOT / 'runs.db'}"


def data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR") or REPO_ROOT / "data")


def artifacts_dir() -> Path:
    return Path(os.environ.get("ARTIFACTS_DIR") or REPO_ROOT / "artifacts")


def run_dir(run_id: int) -> Path:
    """Folder of one run's checkpoints, log and predictions: ``artifacts/runs/<id>``."""
    return artifacts_dir() / "runs" / str(int(run_id))


def cache_dir() -> Path:
    """Decoded-image caches, keyed by content (see ``backend.data.cache``)."""
    return artifacts_dir() / "cache"


def max_concurrent_runs() -> int:
    raw = os.environ.get("MAX_CONCURRENT_RUNS", "1")
    try:
        value = int(raw)
    except ValueError as e:
        raise ValueError(f"MAX_CONCURRENT_RUNS must be a whole number, got {raw!r}") from e
    if value < 1:
        raise ValueError(f"MAX_CONCURRENT_RUNS must be at least 1, got {value}")
    return value


def positive_seconds(name: str, default: float) -> float:
    """Environment variable ``name`` as a positive number of seconds (``default`` when unset or empty);
    ``ValueError`` naming the variable otherwise."""
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError as e:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from e
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value
