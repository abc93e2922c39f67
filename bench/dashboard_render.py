"""How long each dashboard page takes to render with a big run store, against an empty one.

Builds three throwaway SQLite stores: an empty one, one with 3 runs and one with 500 runs, each run
with 50 epochs (bulk inserts; completed runs also get per-class metrics and a confusion matrix, like
real ones), plus a tiny generated dataset that all use. The 3-run store draws the same charts as the
500-run one (Compare picks the best run per model, Class metrics the newest run), so the ratio to it
isolates what the store's size costs; against the empty store, Compare and Class metrics only print
"no runs yet". Each page is rendered with Streamlit's AppTest (the page script
and every query it makes, charts serialised; no browser). Caches are cleared before every timed
render, so each one pays for its queries as a visitor after the cache TTL would. The first render
of each page is a warm-up (imports such as torch on Train and Predict are paid once per server).

Aim (TARGETS.md): every page under 2 s with 500 runs x 50 epochs, and under 2x its empty time.

    .venv/bin/python bench/dashboard_render.py [--runs 500] [--epochs 50] [--repeats 5]

Prints a markdown table and writes docs/BENCHMARKS_dashboard.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from backend import store  # noqa: E402
from backend.data.generate import generate_dataset  # noqa: E402
from backend.data.series import CLASSES  # noqa: E402

PAGES = ("home", "data", "train", "compare", "class_metrics", "predict")
MODELS = ("resnet50", "vae_classifier", "visual_cnn")
STATUS_CYCLE = ("completed",) * 16 + ("failed", "cancelled", "lost")  # mostly completed, like a real store
OUTPUT = REPO_ROOT / "docs" / "BENCHMARKS_dashboard.md"
SMALL_RUNS = 3


def fill_store(url: str, n_runs: int, n_epochs: int, dataset: str, class_names=CLASSES, seed: int = 0) -> None:
    """Bulk-insert ``n_runs`` finished runs with ``n_epochs`` epochs each, plus per-class results.

    Values are plausible (curves rise, F1 between 0.5 and 1), so the charts draw what they would
    for real runs.
    """
    rng = np.random.default_rng(seed)
    k = len(class_names)
    start = store.utcnow() - timedelta(days=60)
    counts = {"train": dict.fromkeys(class_names, 200), "test": dict.fromkeys(class_names, 110)}
    runs, epochs, per_class, matrices = [], [], [], []
    for i in range(n_runs):
        run_id = i + 1
        status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
        final_f1 = float(rng.uniform(0.5, 1.0))
        created = start + timedelta(minutes=10 * i)
        runs.append(
            {
                "id": run_id, "name": f"bench run {run_id}", "model": MODELS[i % len(MODELS)], "status": status,
                "config": {"model": MODELS[i % len(MODELS)], "data": dataset, "epochs": n_epochs, "lr": float(rng.choice([1e-3, 3e-4, 1e-4])),
                           "batch_size": int(rng.choice([32, 64])), "optimizer": "adam", "seed": i},
                "dataset": dataset, "class_names": list(class_names), "class_counts": counts, "device": "cpu (bf16)",
                "num_params": 390_000, "created_at": created, "started_at": created + timedelta(seconds=2),
                "finished_at": created + timedelta(minutes=8), "current_epoch": n_epochs, "total_epochs": n_epochs,
                "best_epoch": n_epochs - 2, "best_val_f1": final_f1, "best_val_acc": min(1.0, final_f1 + 0.01),
                "best_metrics": {"acc": min(1.0, final_f1 + 0.01), "precision": final_f1, "recall": final_f1, "f1": final_f1},
                "train_acc_at_best": min(1.0, final_f1 + 0.05), "error": "CUDA out of memory" if status == "failed" else None,
            }
        )  # fmt: skip
        for e in range(1, n_epochs + 1):
            progress = e / n_epochs
            epochs.append(
                {
                    "run_id": run_id, "epoch": e, "train_loss": 2.0 * (1 - progress) + 0.1, "train_acc": progress,
                    "val_loss": 2.0 * (1 - progress) + 0.2, "val_acc": final_f1 * progress, "val_precision": final_f1 * progress,
                    "val_recall": final_f1 * progress, "val_f1": final_f1 * progress, "lr": 1e-3, "seconds": 9.5,
                    "extra": {"recon": 0.1 * (1 - progress), "kl": 0.01} if i % len(MODELS) == 1 else None,
                }
            )  # fmt: skip
        if status == "completed":
            f1s = np.clip(rng.normal(final_f1, 0.05, k), 0, 1)
            per_class += [
                {
                    "run_id": run_id,
                    "class_name": name,
                    "precision": float(f),
                    "recall": float(f),
                    "f1": float(f),
                    "support": 110,
                }
                for name, f in zip(class_names, f1s, strict=True)
            ]
            matrix = np.diag(np.full(k, 100)) + rng.integers(0, 3, (k, k))
            matrices.append({"run_id": run_id, "class_names": list(class_names), "matrix": matrix.tolist()})
    with store.session_scope(url) as session:
        session.execute(insert(store.Run), runs)
        session.execute(insert(store.EpochMetric), epochs)
        session.execute(insert(store.ClassMetric), per_class)
        session.execute(insert(store.ConfusionMatrix), matrices)


def render_seconds(at: AppTest, page: str) -> float:
    """Wall time of one render of ``page`` with empty caches; fails loudly if the page raised."""
    st.cache_data.clear()
    if page != "home":
        at.switch_page(f"../pages/{page}.py")
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise RuntimeError(f"page {page} did not render cleanly: {problems}")
    return elapsed


def time_pages(url: str, repeats: int) -> dict[str, float]:
    """Median render seconds of each page against the store at ``url``."""
    os.environ["RUNS_DB_URL"] = url
    results = {}
    for page in PAGES:
        at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "Home.py"), default_timeout=120)
        at.run()
        render_seconds(at, page)  # warm-up
        results[page] = statistics.median(render_seconds(at, page) for _ in range(repeats))
    return results


def report(empty: dict[str, float], small: dict[str, float], full: dict[str, float], n_runs: int, n_epochs: int,
           repeats: int) -> str:  # fmt: skip
    """The markdown table, one row per page, with the aims checked."""
    lines = [
        "# Dashboard render times",
        "",
        f"Each page rendered with Streamlit's AppTest (script, queries, chart serialisation; no browser), "
        f"caches cleared before each render, median of {repeats} after a warm-up. "
        f"Stores: empty, {SMALL_RUNS} runs and {n_runs} runs, {n_epochs} epochs each (per-class metrics and "
        f"confusion matrices for the completed ones). Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, Streamlit {st.__version__}.",
        "",
        f"Aim (TARGETS.md): under 2 s with {n_runs} runs, and under 2x the empty-store time. Where the empty "
        f"page only prints a message (Compare, Class metrics) the 2x is also checked against {SMALL_RUNS} runs, "
        "which draw the same charts.",
        "",
        f"| page | empty (s) | {SMALL_RUNS} runs (s) | {n_runs} runs (s) | {n_runs} / empty | {n_runs} / {SMALL_RUNS} "
        "| under 2 s | under 2x empty | under 2x small |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: | :---: | :---: |",
    ]
    yes = {True: "yes", False: "no"}
    for page in PAGES:
        to_empty, to_small = full[page] / empty[page], full[page] / small[page]
        lines.append(
            f"| {page} | {empty[page]:.3f} | {small[page]:.3f} | {full[page]:.3f} | {to_empty:.2f} | {to_small:.2f} "
            f"| {yes[full[page] < 2.0]} | {yes[to_empty < 2.0]} | {yes[to_small < 2.0]} |"
        )
    lines += ["", "Reproduce: `.venv/bin/python bench/dashboard_render.py`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="awb-bench-dashboard-"))
    os.environ["DATA_DIR"] = str(root / "data")
    os.environ["ARTIFACTS_DIR"] = str(root / "artifacts")
    os.environ.setdefault("MPLBACKEND", "Agg")
    dataset = root / "data" / "bench"
    generate_dataset(dataset, train_per_class=4, test_per_class=2, seed=0)
    empty_url, small_url, full_url = (f"sqlite:///{root / name}.db" for name in ("empty", "small", "full"))
    store.init_db(empty_url)
    fill_store(small_url, SMALL_RUNS, args.epochs, str(dataset))
    t0 = time.perf_counter()
    fill_store(full_url, args.runs, args.epochs, str(dataset))
    print(f"filled {args.runs} runs x {args.epochs} epochs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    empty = time_pages(empty_url, args.repeats)
    small = time_pages(small_url, args.repeats)
    full = time_pages(full_url, args.repeats)
    text = report(empty, small, full, args.runs, args.epochs, args.repeats)
    print(text)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
