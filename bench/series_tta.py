"""Test-time augmentation for CSV predictions: ``flip4`` against ``none``, paired, on the same items.

For a series model ``flip4`` is the series, reversed in time, negated, and both
(``backend.models.series1d.series_tta_views``: the moves its training draws at random); for an image
model the plot and its three flips. Scores stored runs (the store named by ``RUNS_DB_URL``): a series
run, and with ``--image-run`` an image run trained on the same dataset and the ensemble of the two
(the mean of calibrated probabilities, as ``predict --ensemble-run``), each with ``--tta none`` and
``flip4``, on three sets of CSVs sent through the upload path (``predict_files``):

- ``own test split``: the series run's dataset's ``csv/test`` (the series behind its test plots);
- ``independent``: ``bench/independent_series.py`` (a generator the product did not write);
- ``harder``: the product generator's test CSVs at ``--harder`` difficulty.

The independent and harder sets are the ones ``bench/series_model.py`` builds for the same ``--seed``
and sizes under the same ``--workdir`` (made once, reused). Each row: macro-F1 with its 95% stratified
bootstrap interval for both modes, and the paired difference flip4 minus none with its interval and
McNemar's exact p (``backend.evaluation.stats.paired_comparison``).

    OMP_NUM_THREADS=2 python bench/series_tta.py --series-run 5 --image-run 4 --workdir W
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend import store  # noqa: E402
from backend.config import data_dir  # noqa: E402
from backend.evaluation.stats import format_interval, paired_comparison  # noqa: E402
from backend.predict_series import open_run  # noqa: E402
from bench import scoring  # noqa: E402
from bench.generalization import DataSpec, build_dataset, independent_csvs  # noqa: E402

MODES = ("none", "flip4")


def completed_run(run_id: int) -> store.RunRecord:
    try:
        run = store.get_run(run_id)
    except store.RunNotFound:
        raise SystemExit(f"run {run_id} is not in {os.environ.get('RUNS_DB_URL')}") from None
    if run.status != "completed":
        raise SystemExit(f"run {run_id} is {run.status}, not completed")
    return run


def score_set(files: list[Path], predictors: dict, names: list[str], seed: int) -> dict:
    """Every member (and the ensemble, with two members) in both modes on the same items, and the
    paired flip4-minus-none comparison of each."""
    probabilities, seconds = {}, {}
    for mode in MODES:
        started = time.perf_counter()
        y_true, probabilities[mode], errors = scoring.member_probabilities(predictors, files, names, mode)
        seconds[mode] = time.perf_counter() - started
        if "image" in predictors:
            probabilities[mode] = scoring.with_ensemble(probabilities[mode], "image", "series")
        if errors:
            print(f"  {errors} of {len(files)} files unreadable by a member (left out)", flush=True)
    rows = {}
    for member in probabilities["none"]:
        predicted = {mode: probabilities[mode][member].argmax(axis=1) for mode in MODES}
        rows[member] = {
            mode: scoring.figures(y_true, predicted[mode], names, seed) for mode in MODES
        } | {"paired": paired_comparison(y_true, predicted["flip4"], predicted["none"], names, seed=seed)}
    return {"n": len(y_true), "rows": rows, "seconds": seconds}


def report(results: dict, args: argparse.Namespace, runs: dict[str, int]) -> str:
    members = ", ".join(f"{member} run {run_id}" for member, run_id in runs.items())
    lines = [
        f"`OMP_NUM_THREADS={scoring.threads()} python bench/series_tta.py --series-run {args.series_run}"
        + (f" --image-run {args.image_run}" if args.image_run else "")
        + f" --independent-per-class {args.independent_per_class} --test-per-class {args.test_per_class}"
        f" --seed {args.seed}` ({members}):",
        "",
        "| set | n | model | none | flip4 | flip4 - none [95%] | McNemar p |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, result in results.items():
        for member, row in result["rows"].items():
            cells = [format_interval(row[m]["macro_f1"], row[m]["macro_f1_ci"]) for m in MODES]
            paired = row["paired"]
            low, high = paired["macro_f1_diff_ci"]
            lines.append(f"| {label} | {result['n']} | {member} | {cells[0]} | {cells[1]} | "
                         f"{100 * paired['macro_f1_diff']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] | "
                         f"{paired['mcnemar_p']:.2g} |")  # fmt: skip
    lines += ["", "Largest confusions with flip4 (true -> predicted: count):", ""]
    for label, result in results.items():
        for member, row in result["rows"].items():
            worst = ", ".join(f"{t} -> {p}: {n}" for t, p, n in row["flip4"]["top_confusions"])
            lines.append(f"- {label}, {member}: {worst}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series-run", type=int, required=True)
    parser.add_argument("--image-run", type=int, default=None, help="an image run on the same dataset: adds the ensemble")
    parser.add_argument("--test-per-class", type=int, default=40, help="of the harder set (as bench/series_model.py)")
    parser.add_argument("--independent-per-class", type=int, default=40)
    parser.add_argument("--harder", type=float, default=1.75)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    args.workdir = args.workdir or data_dir() / "generalization"
    started = time.perf_counter()
    runs = {"series": args.series_run} | ({"image": args.image_run} if args.image_run else {})
    records = {member: completed_run(run_id) for member, run_id in runs.items()}
    names = list(records["series"].class_names)
    if "image" in records and list(records["image"].class_names) != names:
        raise SystemExit(f"runs {args.series_run} and {args.image_run} have different classes: train both on one dataset")
    predictors = {member: open_run(run_id, device="cpu", precision="fp32") for member, run_id in runs.items()}
    s = args.seed
    harder = build_dataset(DataSpec("team", s + 40, 1, args.test_per_class, difficulty=args.harder), args.workdir, None)
    sets = {
        "own test split": Path(records["series"].config["data"]) / "csv" / "test",
        "independent (CSV)": independent_csvs(args.workdir, args.independent_per_class, s + 50),
        f"harder, difficulty {args.harder:g} (CSV)": harder / "csv" / "test",
    }
    results = {}
    for label, folder in sets.items():
        print(f"  scoring {label} ...", flush=True)
        results[label] = score_set(scoring.csv_files(folder), predictors, names, s)
    text = report(results, args, runs)
    print("\n" + text)
    out = args.workdir / f"series-tta-{args.series_run}-{args.image_run}.json"
    out.write_text(json.dumps(results, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))
    print(f"scored in {time.perf_counter() - started:.0f} s; figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
