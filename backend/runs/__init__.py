"""Training runs: queue, start, watch, cancel and delete them, locally or on a Ray cluster.

- ``manager``: launch, queue, cancel, delete, list_runs/reap (the public API, re-exported here)
- ``processes``: process identity (this host, /proc start time, command line)
- ``lifecycle``: one trainer process's life: claim the row, heartbeat, fit, final status, exit code
- ``writer``: ``StoreWriter``, the loop's MetricsWriter over the run store, and the run's log
- ``artifacts``: every artifact path and file name (log.txt, best.pt, last.pt, test_predictions.csv)
- ``executors``: ``local`` (subprocess) and ``ray`` (a Ray job) behind one interface

``from backend import runs; runs.launch(...)`` is the way in. No torch is imported here (the
dashboard imports this package); ``lifecycle`` imports it and is only imported by trainers.
"""

from __future__ import annotations

from backend.runs.artifacts import log_path
from backend.runs.manager import (
    LOST_ERROR,
    LOST_HEARTBEAT_ERROR,
    RunActive,
    RunStateError,
    cancel,
    claim_run_folder,
    delete,
    heartbeat_timeout,
    launch,
    list_runs,
    maybe_reap,
    on_run_finished,
    reap,
    start_queued,
    trainer_command_line,
)
from backend.runs.processes import process_start_time, this_host

__all__ = [
    "LOST_ERROR", "LOST_HEARTBEAT_ERROR", "RunActive", "RunStateError", "cancel", "claim_run_folder", "delete",
    "heartbeat_timeout", "launch", "list_runs", "log_path", "maybe_reap", "on_run_finished", "process_start_time",
    "reap", "start_queued", "this_host", "trainer_command_line",
]  # fmt: skip
