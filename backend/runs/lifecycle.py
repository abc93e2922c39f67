"""One trainer process's life: claim the run row, heartbeat, fit, record the final status, exit code.

The one entry point of ``python -m backend train`` (``train_process``, what every executor starts)
and of in-process callers (test fixtures, benches: ``train_run``). Every way out leaves a final
status in the row: completed, cancelled (the stop event was set) or failed.

While it trains, a daemon thread writes the run's ``heartbeat_at`` every ``HEARTBEAT_INTERVAL_S``
seconds (default 5): that is how a host other than the trainer's tells a live run from a dead one
(``backend.runs.manager.reap``).

Exit codes: 0 completed; 1 failed while training (status ``failed``, traceback in the log);
2 invalid options, a dataset that cannot be used (a bad folder, unreadable images: one line naming
them, no traceback unless ``ANOMALY_DEBUG=1``) or a run that is not waiting to be trained (nothing
trained; an existing row is marked ``failed`` with the message when the options are at fault); 143
cancelled by SIGTERM or Ctrl-C (status ``cancelled``, checkpoints of finished epochs kept).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend import store
from backend.config import positive_seconds
from backend.data.dataset import DatasetError
from backend.data.images import ImageError
from backend.runs import artifacts
from backend.runs.teacher import check_teacher
from backend.runs.writer import RunClaimError, StoreWriter, close_run_log, open_run_log, run_dir
from backend.training.config import ConfigError, TrainConfig

EXIT_COMPLETED, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 128 + signal.SIGTERM
# The user's input is at fault: the message says what to fix, and a traceback would only bury it.
INPUT_ERRORS = (ConfigError, DatasetError, ImageError)
HEARTBEAT_INTERVAL_ENV = "HEARTBEAT_INTERVAL_S"
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: its id, final status (or "refused": the row was not waiting for this process,
    and was left as it was) and the process exit code that goes with it."""

    run_id: int
    status: str
    exit_code: int


def build_config(source: argparse.Namespace | Mapping[str, Any]) -> TrainConfig:
    """A validated TrainConfig from parsed flags (``add_config_arguments``) or a dict of options,
    its teacher (``distill_from``) checked against the store."""
    config = TrainConfig.from_dict(source) if isinstance(source, Mapping) else TrainConfig.from_args(source)
    check_teacher(config)
    return config


def heartbeat_interval() -> float:
    """``HEARTBEAT_INTERVAL_S`` (default 5 s): how often a trainer writes its heartbeat."""
    try:
        return positive_seconds(HEARTBEAT_INTERVAL_ENV, DEFAULT_HEARTBEAT_INTERVAL_S)
    except ValueError as e:
        raise ConfigError(str(e)) from e


class Heartbeat:
    """A daemon thread writing the run's ``heartbeat_at`` every ``interval`` seconds until stopped
    (or until the run is no longer active). A failed write is retried at the next beat: a busy
    store must not kill a training."""

    def __init__(self, run_id: int, interval: float | None = None, url: str | None = None):
        self.run_id, self.url = int(run_id), url
        self.interval = interval if interval is not None else heartbeat_interval()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run{run_id}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not store.heartbeat(self.run_id, url=self.url):
                    return  # finished, cancelled or lost: nothing left to keep alive
            except Exception as e:  # a locked or unreachable store: try again next time
                print(f"heartbeat of run {self.run_id} not written: {e}", file=sys.stderr, flush=True)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def train_process(args: argparse.Namespace) -> int:
    """What ``python -m backend train`` does with its parsed flags; returns the exit code.

    ``--run-id N`` trains run row N (its stored config, overridden by flags given); otherwise a new
    row is made from the flags. Ends by handing the slot to the next queued run.
    """
    from backend.runs.manager import on_run_finished

    run_id = args.run_id
    try:
        base = store.get_run(run_id).config if run_id is not None else None
        config = TrainConfig.from_args(args, base)
        check_teacher(config)
        heartbeat_interval()
    except store.RunNotFound as e:
        print(f"error: {e}; list runs with `python -m backend runs`", file=sys.stderr)
        return EXIT_INVALID
    except ConfigError as e:
        print(f"error: invalid training options: {e}", file=sys.stderr)
        if run_id is not None:
            fail_before_training(run_id, f"invalid training options: {e}")
        return EXIT_INVALID
    with contextlib.suppress(ValueError, AttributeError):  # io.UnsupportedOperation: stderr is not a file
        faulthandler.enable()  # a crash in native code (a decoder, a kernel) still leaves a traceback in the log
    result = train_run(config, run_id=run_id, stop=install_stop_handlers(), pid=os.getpid())
    if result.status != "refused":
        on_run_finished(result.run_id)  # hand this run's slot to the next queued run
    return result.exit_code


def train_run(
    config: TrainConfig, *, run_id: int | None = None, stop: threading.Event | None = None, pid: int | None = None,
    debug: bool | None = None,
) -> TrainResult:  # fmt: skip
    """Train ``config`` as run ``run_id`` (a new row when None) and record how it ended.

    ``debug``: log the traceback of input errors too (default: ``ANOMALY_DEBUG``, read by the CLI).
    """
    from backend.training.loop import fit

    if debug is None:
        from backend.__main__ import debug_enabled

        debug = debug_enabled()
    fields = {"config": config.to_dict(), "name": config.display_name(), "model": config.model, "dataset": config.data}
    writer = StoreWriter(run_id) if run_id is not None else StoreWriter.create(**fields)
    try:
        writer.claim(pid=pid, **fields)
    except (RunClaimError, store.RunNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return TrainResult(writer.run_id, "refused", EXIT_INVALID)
    stop = stop or threading.Event()
    log = open_run_log(writer.run_id)
    files = artifacts.RunFiles(run_dir(writer.run_id))
    log.info("run %d: %s (pid %d)", writer.run_id, fields["name"], os.getpid())
    log.info("config: %s", json.dumps(fields["config"], sort_keys=True))
    try:
        with Heartbeat(writer.run_id, url=writer.url):
            teacher = check_teacher(config)  # again: the teacher may have been deleted since the run was queued
            fit(config, writer, files=files, run_id=writer.run_id, should_stop=stop.is_set, log=log, teacher=teacher)
        return TrainResult(writer.run_id, "completed", EXIT_COMPLETED)
    except KeyboardInterrupt:
        _record_end(writer, log, "cancelled", None, files)
        raise
    except Exception as e:  # every failure must end in a final status, whatever raised it
        if stop.is_set():  # e.g. RunCancelled, or a DataLoader worker that died with the signal
            return _record_end(writer, log, "cancelled", None, files)
        if not isinstance(e, INPUT_ERRORS) or debug:
            log.exception("training failed")
        code = EXIT_INVALID if isinstance(e, INPUT_ERRORS) else EXIT_FAILED
        return _record_end(writer, log, "failed", error_message(e), files, code)
    finally:
        close_run_log(log)


def _record_end(writer: StoreWriter, log, status: str, error: str | None, files: artifacts.RunFiles,
                code: int = EXIT_CANCELLED) -> TrainResult:  # fmt: skip
    """Write the final status (keeping the best checkpoint's path when there is one)."""
    kept = files.checkpoints_kept()
    log.info("%s%s; checkpoints kept: %s", status, f": {error.rstrip('.')}" if error else "", ", ".join(kept) or "none")
    try:
        writer.run_finished(status, error=error, checkpoint_path=files.best if files.best.is_file() else None)
    except Exception:
        log.exception("could not record the final status %r in the run store", status)
        return TrainResult(writer.run_id, status, EXIT_FAILED)
    return TrainResult(writer.run_id, status, code)


def error_message(error: BaseException) -> str:
    """What the run row shows: our own errors' messages as they are, anything else with its type."""
    if isinstance(error, ValueError | OSError) and str(error):
        return str(error)
    return f"{type(error).__name__}: {error}"


def fail_before_training(run_id: int, message: str) -> None:
    """Mark a run that never started as failed, if it is still waiting for this process."""
    writer = StoreWriter(run_id)
    try:
        writer.claim(pid=os.getpid())
    except (RunClaimError, store.RunNotFound):
        return
    writer.run_finished("failed", error=message)


def install_stop_handlers() -> threading.Event:
    """SIGTERM and Ctrl-C ask the run to stop at the next batch; a second signal stops at once."""
    stop = threading.Event()

    def request_stop(signum: int, frame) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    return stop
