"""How fast the run store answers the dashboard's queries at thousands of runs, on SQLite and PostgreSQL.

Builds a throwaway store on each database (5,000 runs, 500 of them with 50 epochs each): a SQLite
file, and a database on a throwaway PostgreSQL cluster started for the bench (``initdb`` + ``pg_ctl``
on a free port, the same helper as the tests' fixture: tests/fixtures/pgcluster.py; durability off,
as there). Prints the median time of each query the pages make, one column per database, and with
``--write`` replaces the results section of docs/BENCHMARKS_store.md. Goal: list_runs over 5,000
runs and runs_history over 20 runs x 50 epochs well under 100 ms.

    .venv/bin/python bench/store_queries.py [--databases sqlite postgresql] [--runs 5000]
        [--runs-with-history 500] [--epochs 50] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from backend import store  # noqa: E402
from tests.fixtures.pgcluster import PgCluster, PgUnavailable  # noqa: E402

REPORT = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS_store.md"
MARKER = "<!-- bench/store_queries.py writes below this line -->"


def fill(url: str, n_runs: int, n_with_history: int, n_epochs: int) -> list[int]:
    """Bulk-insert runs and epoch rows; return the ids of the runs that have a history."""
    start = store.utcnow() - timedelta(days=30)
    statuses = store.STATUSES
    runs = [
        {
            "name": f"run-{i}",
            "model": ("resnet50", "vae_classifier", "visual_cnn")[i % 3],
            "status": statuses[i % len(statuses)],
            "config": {"lr": 1e-3, "epochs": n_epochs, "batch_size": 32},
            "dataset": f"data/set{i % 4}",
            "class_names": [f"class_{k}" for k in range(9)],
            "created_at": start + timedelta(minutes=i),
            "started_at": start + timedelta(minutes=i, seconds=5),
            "current_epoch": n_epochs,
            "total_epochs": n_epochs,
            "best_val_f1": (i % 100) / 100,
        }
        for i in range(n_runs)
    ]
    with store.session_scope(url) as session:
        session.execute(insert(store.Run), runs)
    history_ids = list(range(1, n_with_history + 1))
    epochs = [
        {
            "run_id": run_id,
            "epoch": e,
            "train_loss": 1 / e,
            "val_f1": e / n_epochs,
            "lr": 1e-3,
            "extra": {"recon": 0.1, "kl": 0.01},
        }
        for run_id in history_ids
        for e in range(1, n_epochs + 1)
    ]
    with store.session_scope(url) as session:
        session.execute(insert(store.EpochMetric), epochs)
    return history_ids


def median_ms(fn: Callable[[], object], repeats: int = 15) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    """Fill the store at ``url`` and return the median milliseconds of each query, by label."""
    t0 = time.perf_counter()
    history_ids = fill(url, args.runs, args.runs_with_history, args.epochs)
    fill_s = time.perf_counter() - t0
    log_target = store.create_run(name="bench", model="visual_cnn", config={}, dataset="d", url=url)
    counter = iter(range(1, 10**6))
    cases = {
        f"list_runs() over {args.runs} runs": lambda: store.list_runs(url=url),
        "list_runs(status=ACTIVE)": lambda: store.list_runs(status=store.ACTIVE, url=url),
        "list_runs(limit=50)": lambda: store.list_runs(limit=50, url=url),
        f"runs_history(20 runs x {args.epochs} epochs)": lambda: store.runs_history(history_ids[:20], url=url),
        f"run_history(1 run x {args.epochs} epochs)": lambda: store.run_history(history_ids[0], url=url),
        "get_run": lambda: store.get_run(history_ids[0], url=url),
        "count_runs_by_status": lambda: store.count_runs_by_status(url=url),
        "log_epoch (one write transaction)": lambda: store.log_epoch(
            log_target, {"epoch": next(counter), "val_f1": 0.5}, url=url
        ),
    }
    results = {label: median_ms(fn) for label, fn in cases.items()}
    results[f"filling the store ({args.runs} runs, {args.runs_with_history * args.epochs} epoch rows), s"] = fill_s
    return results


@contextlib.contextmanager
def database_url(kind: str, tmp: Path):
    """A fresh empty store URL of ``kind`` (a PostgreSQL cluster is started and removed around it)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'runs.db'}"
        return
    with PgCluster.start(prefix="awb-bench-pg-") as cluster:
        yield cluster.create_database("bench")


def write_report(table: str, args: argparse.Namespace) -> None:
    """Replace what follows MARKER in docs/BENCHMARKS_store.md with this run's table."""
    text = REPORT.read_text() if REPORT.exists() else f"# Run-store query benchmark\n\n{MARKER}\n"
    head = text.split(MARKER)[0]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = (
        f"{MARKER}\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load} at the end; Python {platform.python_version()}. "
        f"Command: `.venv/bin/python bench/store_queries.py --runs {args.runs} --runs-with-history "
        f"{args.runs_with_history} --epochs {args.epochs} --write`. Median of 15 calls after one warm-up, in ms.\n\n"
        f"{table}\n"
    )
    REPORT.write_text(head + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--runs-with-history", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--write", action="store_true", help="write the table to docs/BENCHMARKS_store.md")
    args = parser.parse_args()

    columns: dict[str, dict[str, float]] = {}
    for kind in args.databases:
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(database_url(kind, Path(tmp)))
            except PgUnavailable as e:
                print(f"skipping {kind}: {e}", file=sys.stderr)
                continue
            columns[kind] = measure(url, args)
            print(f"{kind}: done", file=sys.stderr)
    labels = list(next(iter(columns.values())))
    header = "| query | " + " | ".join(columns) + " |"
    rule = "| --- |" + " ---: |" * len(columns)
    rows = [f"| {label} | " + " | ".join(f"{columns[k][label]:.2f}" for k in columns) + " |" for label in labels]
    table = "\n".join([header, rule, *rows])
    print(table)
    if args.write:
        write_report(table, args)


if __name__ == "__main__":
    main()
