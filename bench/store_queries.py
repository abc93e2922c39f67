"""How fast the run store answers the dashboard's queries at thousands of runs.

Builds a throwaway SQLite store (5,000 runs, 500 of them with 50 epochs each), then prints the
median time of each query the pages make. Goal: list_runs over 5,000 runs and runs_history over
20 runs x 50 epochs well under 100 ms.

    .venv/bin/python bench/store_queries.py [--runs 5000] [--runs-with-history 500] [--epochs 50]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--runs-with-history", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runs.db'}"
        history_ids = fill(url, args.runs, args.runs_with_history, args.epochs)
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
        width = max(map(len, cases))
        for label, fn in cases.items():
            print(f"{label:<{width}}  {median_ms(fn):8.2f} ms")


if __name__ == "__main__":
    main()
