"""``python -m backend runs list|show N|cancel N|delete N|rename N NAME|note N TEXT|tag N``: look after
training runs from a terminal.

``rename``, ``note`` and ``tag`` organise a team's runs (names, markdown notes, tags); ``list --tag T``
filters by tag. The dashboard edits the same columns, so either side sees the other's changes.

Every action goes through ``backend.runs``, so listing reaps dead runs first, exactly as the
dashboard does. An unknown run or a refused action is a ``WorkbenchError``: the CLI's error boundary
(``backend/__main__.py``) prints it as one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from backend import runs, store

TABLE_COLUMNS = (
    "id", "name", "model", "status", "epoch", "best_val_f1", "best_val_acc", "started_at", "duration_s", "tags",
)  # fmt: skip
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "seconds")
HISTORY_TAIL = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="runs, newest first (dead runs are marked lost first)")
    listing.add_argument("--status", choices=store.STATUSES, help="only runs in this status")
    listing.add_argument("--model", help="only runs of this model")
    listing.add_argument("--dataset", help="only runs on this dataset (its path, as stored, or its folder name)")
    listing.add_argument("--tag", action="append", help="only runs with this tag (repeat: any of them)")
    listing.add_argument("--limit", type=int, help="at most this many runs")
    listing.add_argument("--json", action="store_true", help="JSON records instead of a table")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="one run: status, process, config, best metrics, last epochs, log file")
    show.add_argument("run_id", type=int)
    show.add_argument("--json", action="store_true", help="one JSON object of the run's fields instead")
    show.set_defaults(handler=_show)

    cancel = actions.add_parser("cancel", help="dequeue a queued run or stop a running one")
    cancel.add_argument("run_id", type=int)
    cancel.add_argument("--grace", type=float, default=10.0, help="seconds to wait after SIGTERM before SIGKILL")
    cancel.set_defaults(handler=_cancel)

    remove = actions.add_parser("delete", help="delete a finished run's rows and artifacts")
    remove.add_argument("run_id", type=int)
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_delete)

    rename = actions.add_parser("rename", help="give a run a new name")
    rename.add_argument("run_id", type=int)
    rename.add_argument("name", help="the new name (one line, at most 200 characters)")
    rename.set_defaults(handler=_rename)

    note = actions.add_parser("note", help="set a run's notes (markdown); an empty TEXT clears them")
    note.add_argument("run_id", type=int)
    note.add_argument("text", help="the notes, markdown (replace, not append); '-' reads them from stdin")
    note.set_defaults(handler=_note)

    tag = actions.add_parser("tag", help="add or remove tags of a run (prints its tags afterwards)")
    tag.add_argument("run_id", type=int)
    tag.add_argument("--add", action="append", default=[], metavar="TAG", help="tag to add (repeatable)")
    tag.add_argument("--remove", action="append", default=[], metavar="TAG", help="tag to remove (repeatable)")
    tag.set_defaults(handler=_tag)


def main(args: argparse.Namespace) -> int:
    return args.handler(args)


def _list(args: argparse.Namespace) -> int:
    frame = runs.list_runs(status=args.status, model=args.model, tag=args.tag, limit=args.limit)
    if args.dataset:
        frame = frame[[args.dataset in (path, Path(path).name) for path in frame["dataset"]]]
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
        tags=[",".join(tags) for tags in frame["tags"]],
    )
    return table[list(TABLE_COLUMNS)].astype(object).fillna("-")


def _progress(current, total) -> str:
    """'3/10' from possibly missing epoch counts."""
    as_text = ["-" if pd.isna(value) else str(int(value)) for value in (current, total)]
    return "/".join(as_text)


SHOW_LABELS = {  # run_fields key -> label in ``runs show``, in the order shown
    "status": "status", "model": "model", "dataset": "dataset", "device": "device", "executor": "executor",
    "executor_job_id": "job", "host": "host", "pid": "pid", "heartbeat_at": "heartbeat", "command": "command", "created_at": "created", "started_at": "started",
    "finished_at": "finished", "epoch": "epoch", "best_epoch": "best epoch", "best_val_f1": "best val macro-F1",
    "best_val_acc": "best val accuracy", "train_acc_at_best": "train acc at best", "checkpoint_path": "checkpoint",
    "error": "error", "log": "log", "dataset_fingerprint": "dataset fingerprint", "tags": "tags",
}  # fmt: skip


def run_fields(run: store.RunRecord) -> dict[str, Any]:
    """Everything ``runs show`` says about a run, JSON-plain: every stored field (timestamps in ISO
    8601), plus ``epoch`` ('3/10'), ``log`` (its log file) and ``command`` (its trainer's command
    line). The one place to add a field to ``runs show`` and ``runs show --json``."""
    fields = {key: value.isoformat() if isinstance(value, datetime) else value for key, value in asdict(run).items()}
    fields["epoch"] = _progress(run.current_epoch, run.total_epochs)
    fields["log"] = str(runs.log_path(run.id))
    fields["command"] = runs.trainer_command_line(run)
    fields["tags"] = store.run_tags(run.id)
    return fields


def _show(args: argparse.Namespace) -> int:
    runs.reap()
    run = store.get_run(args.run_id)
    fields = run_fields(run)
    if args.json:
        print(json.dumps(fields))
        return 0
    print(f"run {run.id}: {run.name}")
    for key, label in SHOW_LABELS.items():
        value = ", ".join(fields[key]) if isinstance(fields[key], list) else fields[key]
        if value not in (None, ""):
            print(f"  {label:<18} {value}")
    if run.notes:
        print("notes:")
        print("\n".join(f"  {line}" for line in run.notes.splitlines()))
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


def _rename(args: argparse.Namespace) -> int:
    name = store.rename_run(args.run_id, args.name)
    print(f"run {args.run_id} is now named {name!r}")
    return 0


def _note(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    store.set_notes(args.run_id, text)
    print(f"run {args.run_id}: notes {'set' if text.strip() else 'cleared'}")
    return 0


def _tag(args: argparse.Namespace) -> int:
    if not args.add and not args.remove:
        raise store.StoreError("say what to change: --add TAG and/or --remove TAG")
    tags = store.tag_run(args.run_id, add=args.add, remove=args.remove)
    print(f"run {args.run_id} tags: {', '.join(tags) or '(none)'}")
    return 0


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer (no terminal) means no."""
    try:
        return input(question).strip().lower() in {"y", "yes"}
    except EOFError:
        return False
