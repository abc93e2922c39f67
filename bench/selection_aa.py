"""A/A check of the honest comparison, on this CPU (issue 13).

Trains one small visual_cnn recipe with several seeds on one generated dataset (train / val / test)
and compares every pair of seeds with ``paired_comparison`` on the shared test items: how often are
two seeds of the SAME recipe called significantly different? (It should be near 5% or below.)

It also measures the optimism validation selection removes: every epoch the bench additionally
scores the test split (outside the product's loop, which never does) and reports the test macro-F1
of the epoch the old rule would have picked (best on test) next to the one validation picked.

    .venv/bin/python bench/selection_aa.py [--seeds 5] [--epochs 6] [--out docs/BENCHMARKS_selection.md]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.data.generate import generate_dataset  # noqa: E402
from backend.data.series import FIVE_CLASS_PRESET  # noqa: E402
from backend.evaluation.stats import paired_comparison  # noqa: E402
from backend.runs.artifacts import RunFiles  # noqa: E402
from backend.training import data as data_module  # noqa: E402
from backend.training import loop  # noqa: E402
from backend.training.config import TrainConfig  # noqa: E402
from bench.report import load_average, publish  # noqa: E402


class NullWriter:
    """A MetricsWriter that keeps nothing: the bench reads test_predictions.csv."""

    def run_started(self, **_): ...
    def log_epoch(self, row): ...
    def log_best(self, **_): ...
    def log_test(self, **_): ...
    def run_finished(self, *_, **__): ...


def train_seed(dataset: Path, seed: int, epochs: int, out: Path) -> tuple[pd.DataFrame, list[float], int]:
    """One run: its test predictions, the test macro-F1 of every epoch (bench-only) and the selected epoch."""
    per_epoch_test: list[float] = []
    real_evaluate, real_eval_batches = loop.evaluate, data_module.TrainingData.eval_batches
    current: dict = {}

    def eval_batches(self, split, *args, **kwargs):
        current["data"] = self
        current["split"] = split
        return real_eval_batches(self, split, *args, **kwargs)

    def evaluate(model, criterion, batches, **kwargs):
        result = real_evaluate(model, criterion, batches, **kwargs)
        if current.get("split") == "val":  # peek at test with the same weights (the old, optimistic rule)
            test = real_evaluate(model, criterion, real_eval_batches(current["data"], "test"), **kwargs)
            per_epoch_test.append(float(test["f1"]))
        return result

    data_module.TrainingData.eval_batches, loop.evaluate = eval_batches, evaluate
    try:
        config = TrainConfig.from_dict({"data": str(dataset), "model": "visual_cnn", "image_size": 48,
                                        "epochs": epochs, "batch_size": 32, "seed": seed, "device": "cpu",
                                        "precision": "fp32", "augmentation": "none"})  # fmt: skip
        loop.fit(config, NullWriter(), files=RunFiles(out))
    finally:
        data_module.TrainingData.eval_batches, loop.evaluate = real_eval_batches, real_evaluate
    predictions = pd.read_csv(RunFiles(out).predictions)
    selected = int(torch.load(RunFiles(out).best, map_location="cpu", weights_only=True)["epoch"])
    return predictions, per_epoch_test, selected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS_selection.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "aa"
        generate_dataset(dataset, train_per_class=40, val_per_class=20, test_per_class=40, seed=11,
                         classes=list(FIVE_CLASS_PRESET), size=(96, 72))  # fmt: skip
        runs = {}
        for seed in range(args.seeds):
            runs[seed] = train_seed(dataset, seed, args.epochs, Path(tmp) / f"run{seed}")
            print(f"seed {seed}: selected epoch {runs[seed][2]}, {time.perf_counter() - started:.0f} s", flush=True)
    classes = sorted(FIVE_CLASS_PRESET)
    rows = []
    for a, b in itertools.combinations(runs, 2):
        pa, pb = runs[a][0].set_index("item_hash"), runs[b][0].set_index("item_hash")
        pb = pb.loc[pa.index]
        y = [classes.index(c) for c in pa["true"]]
        result = paired_comparison(y, [classes.index(c) for c in pa["predicted"]],
                                   [classes.index(c) for c in pb["predicted"]], classes, seed=0)  # fmt: skip
        rows.append({"pair": f"{a} vs {b}", "n": result["n_paired"], "macro_f1_diff": result["macro_f1_diff"],
                     "ci": result["macro_f1_diff_ci"], "mcnemar_p": result["mcnemar_p"],
                     "significant": result["significant"]})  # fmt: skip
    called = sum(r["significant"] for r in rows)
    optimism = []
    for seed, (_, per_epoch, selected) in runs.items():
        val_pick = per_epoch[selected - 1]
        optimism.append({"seed": seed, "selected_on_val": selected, "test_f1_val_selection": val_pick,
                         "selected_on_test": int(np.argmax(per_epoch)) + 1, "test_f1_test_selection": max(per_epoch)})  # fmt: skip
    opt = pd.DataFrame(optimism)
    lines = [
        "# A/A check and selection optimism (`bench/selection_aa.py`)",
        "",
        f"visual_cnn (5 blocks, 2x2 head) at 48 px, {args.epochs} epochs, no augmentation, {args.seeds} seeds; "
        f"5 classes, 40 train / 20 val / 40 test per class (generated, seed 11). CPU, load average {load_average()}; "
        f"{time.perf_counter() - started:.0f} s in all.",
        "",
        f"**Pairs of seeds called significantly different: {called} of {len(rows)}** "
        "(paired bootstrap of macro-F1 + McNemar exact, alpha 0.05, both must agree).",
        "",
        "| pair | n | macro-F1 diff | 95% CI | McNemar p | significant |",
        "|---|---|---|---|---|---|",
        *(f"| {r['pair']} | {r['n']} | {r['macro_f1_diff']:+.3f} | [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] | "
          f"{r['mcnemar_p']:.3f} | {'yes' if r['significant'] else 'no'} |" for r in rows),  # fmt: skip
        "",
        "Test macro-F1 at the epoch chosen on validation (what runs report now) against the epoch the old "
        "rule chose by peeking at test:",
        "",
        "| seed | epoch (val) | test F1 (val selection) | epoch (test) | test F1 (test selection) |",
        "|---|---|---|---|---|",
        *(f"| {r.seed} | {r.selected_on_val} | {r.test_f1_val_selection:.3f} | {r.selected_on_test} | "
          f"{r.test_f1_test_selection:.3f} |" for r in opt.itertuples()),  # fmt: skip
        "",
        f"Mean optimism of test selection: {100 * (opt.test_f1_test_selection - opt.test_f1_val_selection).mean():+.1f} "
        "macro-F1 points.",
    ]
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
