"""``python -m backend runs list|show N|cancel N|delete N``: look after training runs from a terminal.

Every action goes through ``backend.runs``, so listing reaps dead runs first, exactly as the
dashboard does. An unknown run or a refused action prints one line and exits 1, without a traceback.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from backend import runs, store

TABLE_COLUMNS = ("id", "name", "model", "status", "epoch", "best_val_f1", "best_val_acc", "started_at", "duration_s")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "seconds")
HISTORY_TAIL = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="runs, newest first (dead runs are marked lost first)")
    listing.add_argument("--status", choices=store.STATUSES, help="only runs in this status")
    listing.add_argument("--model", help="only runs of this model")
    listing.add_argument("--limit", type=int, help="at most this many runs")
    listing.add_argument("--json", action="store_true", help="JSON records instead of a table")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="one run: status, config, best metrics, last epochs, log file")
    show.add_argument("run_id", type=int)
    show.set_defaults(handler=_show)

    cancel = actions.add_parser("cancel", help="dequeue a queued run or stop a running one")
    cancel.add_argument("run_id", type=int)
    cancel.add_argument("--grace", type=float, default=10.0, help="seconds to wait after SIGTERM before SIGKILL")
    cancel.set_defaults(handler=_cancel)

    remove = actions.add_parser("delete", help="delete a finished run's rows and artifacts")
    remove.add_argument("run_id", type=int)
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_delete)


def main(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except (store.RunNotFound, runs.RunStateError) as e:
        print(e)
        return 1


def _list(args: argparse.Namespace) -> int:
    frame = runs.list_runs(status=args.status, model=args.model, limit=args.limit)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("no runs")
    else:
        print(_table(frame).to_string(index=False))
    return 0


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    """The list columns a person reads: epochs as 'current/total', times to the second."""
    table = frame.assign(
        epoch=[
            _progress(current, total)
            for current, total in zip(frame["current_epoch"], frame["total_epochs"], strict=True)
        ],
        started_at=frame["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("-"),
        duration_s=frame["duration_s"].round(0),
    )
    return table[list(TABLE_COLUMNS)].astype(object).fillna("-")


def _progress(current, total) -> str:
    """'3/10' from possibly missing epoch counts."""
    as_text = ["-" if pd.isna(value) else str(int(value)) for value in (current, total)]
    return "/".join(as_text)


def _show(args: argparse.Namespace) -> int:
    runs.reap()
    run = store.get_run(args.run_id)
    print(f"run {run.id}: {run.name}")
    for label, value in (
        ("status", run.status),
        ("model", run.model),
        ("dataset", run.dataset),
        ("device", run.device),
        ("created", run.created_at),
        ("started", run.started_at),
        ("finished", run.finished_at),
        ("epoch", _progress(run.current_epoch, run.total_epochs)),
        ("best epoch", run.best_epoch),
        ("best val macro-F1", run.best_val_f1),
        ("best val accuracy", run.best_val_acc),
        ("train acc at best", run.train_acc_at_best),
        ("checkpoint", run.checkpoint_path),
        ("error", run.error),
        ("log", runs.log_path(run.id)),
    ):
        if value is not None:
            print(f"  {label:<18} {value}")
    print("config:")
    print(json.dumps(run.config, indent=2, sort_keys=True))
    history = store.run_history(run.id)
    if not history.empty:
        print(f"last {min(HISTORY_TAIL, len(history))} of {len(history)} epochs:")
        print(history[list(HISTORY_COLUMNS)].tail(HISTORY_TAIL).to_string(index=False))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    status = runs.cancel(args.run_id, grace=args.grace)
    print(f"run {args.run_id} is {status}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    store.get_run(args.run_id)  # an unknown run fails before the question
    if not args.yes and not _confirm(f"delete run {args.run_id}, its metrics and its artifacts? [y/N] "):
        print("nothing deleted")
        return 1
    runs.delete(args.run_id)
    print(f"run {args.run_id} deleted")
    return 0


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer (no terminal) means no."""
    try:
        return input(question).strip().lower() in {"y", "yes"}
    except EOFError:
        return False
