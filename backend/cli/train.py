"""``python -m backend train``: train one model on one dataset in the foreground, into the run store.

Two ways in:

- ``--run-id N`` trains run row N, created beforehand by the run manager or the dashboard; its
  ``config`` column is the config (flags given here override it). This is exactly what
  ``backend.runs`` starts as a subprocess.
- Otherwise a new run row is made from ``--config FILE`` and/or the flags.

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
from backend.data.dataset import DatasetError
from backend.data.images import ImageError
from backend.training.config import ConfigError, TrainConfig, add_config_arguments

EXIT_COMPLETED, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 128 + signal.SIGTERM
# The user's input is at fault: the message says what to fix, and a traceback would only bury it.
INPUT_ERRORS = (ConfigError, DatasetError, ImageError)

__all__ = ["TrainResult", "add_arguments", "add_config_arguments", "build_config", "main", "train_run"]


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: its id, final status (or "refused": the row was not waiting for this process,
    and was left as it was) and the process exit code that goes with it."""

    run_id: int
    status: str
    exit_code: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", type=int, metavar="N", default=None,
                        help="train this queued run row (its stored config, overridden by any flags given)")  # fmt: skip
    add_config_arguments(parser)


def build_config(source: argparse.Namespace | Mapping[str, Any]) -> TrainConfig:
    """A validated TrainConfig from parsed flags (``add_config_arguments``) or a dict of options."""
    if isinstance(source, Mapping):
        return TrainConfig.from_dict(source)
    return TrainConfig.from_args(source)


def main(args: argparse.Namespace) -> int:
    run_id = args.run_id
    try:
        base = store.get_run(run_id).config if run_id is not None else None
        config = TrainConfig.from_args(args, base)
    except store.RunNotFound as e:
        print(f"error: {e}; list runs with `python -m backend runs`", file=sys.stderr)
        return EXIT_INVALID
    except ConfigError as e:
        print(f"error: invalid training options: {e}", file=sys.stderr)
        if run_id is not None:
            _fail_before_training(run_id, f"invalid training options: {e}")
        return EXIT_INVALID
    with contextlib.suppress(ValueError, AttributeError):  # io.UnsupportedOperation: stderr is not a file
        faulthandler.enable()  # a crash in native code (a decoder, a kernel) still leaves a traceback in the log
    result = train_run(config, run_id=run_id, stop=install_stop_handlers(), pid=os.getpid())
    if result.status != "refused":
        from backend.runs import on_run_finished

        on_run_finished(result.run_id)  # hand this run's slot to the next queued run
    return result.exit_code


def train_run(
    config: TrainConfig, *, run_id: int | None = None, stop: threading.Event | None = None, pid: int | None = None
) -> TrainResult:
    """Train ``config`` as run ``run_id`` (a new row when None) and record how it ended.

    The one entry point of both the CLI and in-process callers (test fixtures, benches). Every way
    out leaves a final status in the row: completed, cancelled (``stop`` was set) or failed.
    """
    from backend.training.loop import fit
    from backend.training.writer import RunClaimError, StoreWriter, close_run_log, open_run_log, run_dir

    fields = {"config": config.to_dict(), "name": config.display_name(), "model": config.model, "dataset": config.data}
    writer = StoreWriter(run_id) if run_id is not None else StoreWriter.create(**fields)
    try:
        writer.claim(pid=pid, **fields)
    except (RunClaimError, store.RunNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return TrainResult(writer.run_id, "refused", EXIT_INVALID)
    stop = stop or threading.Event()
    log = open_run_log(writer.run_id)
    out_dir = run_dir(writer.run_id)
    log.info("run %d: %s (pid %d)", writer.run_id, fields["name"], os.getpid())
    log.info("config: %s", json.dumps(fields["config"], sort_keys=True))
    try:
        fit(config, writer, out_dir=out_dir, run_id=writer.run_id, should_stop=stop.is_set, log=log)
        return TrainResult(writer.run_id, "completed", EXIT_COMPLETED)
    except KeyboardInterrupt:
        _record_end(writer, log, "cancelled", None, out_dir)
        raise
    except Exception as e:  # every failure must end in a final status, whatever raised it
        if stop.is_set():  # e.g. RunCancelled, or a DataLoader worker that died with the signal
            return _record_end(writer, log, "cancelled", None, out_dir)
        if not isinstance(e, INPUT_ERRORS) or os.environ.get("ANOMALY_DEBUG") == "1":
            log.exception("training failed")
        code = EXIT_INVALID if isinstance(e, INPUT_ERRORS) else EXIT_FAILED
        return _record_end(writer, log, "failed", error_message(e), out_dir, code)
    finally:
        close_run_log(log)


def _record_end(writer, log, status: str, error: str | None, out_dir, code: int = EXIT_CANCELLED) -> TrainResult:
    """Write the final status (keeping the best checkpoint's path when there is one)."""
    from backend.training.loop import BEST_CHECKPOINT, LAST_CHECKPOINT

    best = out_dir / BEST_CHECKPOINT
    kept = [name for name in (BEST_CHECKPOINT, LAST_CHECKPOINT) if (out_dir / name).is_file()]
    log.info("%s%s; checkpoints kept: %s", status, f": {error.rstrip('.')}" if error else "", ", ".join(kept) or "none")
    try:
        writer.run_finished(status, error=error, checkpoint_path=best if best.is_file() else None)
    except Exception:
        log.exception("could not record the final status %r in the run store", status)
        return TrainResult(writer.run_id, status, EXIT_FAILED)
    return TrainResult(writer.run_id, status, code)


def error_message(error: BaseException) -> str:
    """What the run row shows: our own errors' messages as they are, anything else with its type."""
    if isinstance(error, ValueError | OSError) and str(error):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _fail_before_training(run_id: int, message: str) -> None:
    """Mark a run that never started as failed, if it is still waiting for this process."""
    from backend.training.writer import RunClaimError, StoreWriter

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
