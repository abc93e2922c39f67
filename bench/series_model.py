"""Series model vs image model vs their ensemble, on the same items, with 95% bootstrap intervals.

Trains ``visual_cnn`` (small: ``--image-size`` px, ``--image-epochs``) and ``series_cnn`` (its
defaults, ``--series-epochs``) on one generated dataset through ``train_run`` (scratch run store),
then scores three models on three sets:

- ``own test split``: the runs' stored test predictions (calibrated probabilities, keyed by the PNG's
  hash: the same items for both runs; Compare's paired test is reported too);
- ``independent``: CSVs from ``bench/independent_series.py`` (a generator the product did not write);
- ``harder``: the product generator's test CSVs at ``--harder`` difficulty (events smaller against noise).

On the CSV sets the image run reads each CSV as an upload (drawn, then classified) and its
probabilities are calibrated with its temperature; the series run reads the numbers; the ensemble is
the mean of the two calibrated vectors (``backend.predict_series``, as ``predict --ensemble-run``).
Intervals: ``backend.evaluation.stats.bootstrap_metrics`` (stratified, 1,000 resamples).

    OMP_NUM_THREADS=1 python bench/series_model.py            # ~6-9 minutes on this 2-core CPU

``--runs IMAGE SERIES`` scores two runs already trained on one dataset (the store named by
``RUNS_DB_URL``) instead of training: how the product-sized runs (600 plots per class, visual_cnn at
its defaults) are compared, since training those takes more than an hour here.
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
from backend.evaluation.compare import compare_runs  # noqa: E402
from backend.evaluation.stats import format_interval  # noqa: E402
from backend.predict_series import average_probabilities, open_run  # noqa: E402
from backend.runs.lifecycle import build_config, train_run  # noqa: E402
from bench import scoring  # noqa: E402
from bench.generalization import DataSpec, build_dataset, independent_csvs, use_scratch_store  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_series.md"
MODELS = ("visual_cnn", "series_cnn", "ensemble")


def train(model: str, folder: Path, options: dict) -> tuple[int, float]:
    started = time.perf_counter()
    result = train_run(build_config({"data": str(folder), "model": model, "device": "cpu", **options}))
    if result.status != "completed":
        raise SystemExit(f"{model} ended {result.status}: {store.get_run(result.run_id).error}")
    seconds = time.perf_counter() - started
    print(f"  trained {model} in {seconds:.0f} s (run {result.run_id})", flush=True)
    return result.run_id, seconds


def score(y_true: list[int], probs: np.ndarray, names: list[str], seed: int) -> dict:
    return scoring.figures(y_true, np.asarray(probs).argmax(axis=1), names, seed)


def own_split(image_run: int, series_run: int, names: list[str], seed: int) -> dict:
    """The two runs' stored calibrated test probabilities, paired by item hash, and their mean."""
    frames = {run: store.predictions(run).set_index("item_hash") for run in (image_run, series_run)}
    image, series = frames[image_run], frames[series_run].loc[frames[image_run].index]
    y_true = image["true_index"].tolist()
    assert y_true == series["true_index"].tolist()
    p_image, p_series = np.array(image["probs"].tolist()), np.array(series["probs"].tolist())
    return {
        "visual_cnn": score(y_true, p_image, names, seed),
        "series_cnn": score(y_true, p_series, names, seed),
        "ensemble": score(y_true, average_probabilities(p_image, p_series), names, seed),
    }


def csv_set(files: list[Path], image_run: int, series_run: int, names: list[str], seed: int) -> dict:
    """Every CSV through both runs (the product's upload paths: both answer calibrated probabilities),
    and the ensemble of the two (``bench.scoring``, shared with ``bench/generalization.py --ensemble``)."""
    predictors = {"visual_cnn": open_run(image_run, device="cpu", precision="fp32"),
                  "series_cnn": open_run(series_run, device="cpu")}  # fmt: skip
    started = time.perf_counter()
    y_true, probabilities, errors = scoring.member_probabilities(predictors, files, names)
    seconds = time.perf_counter() - started
    result = {m: score(y_true, p, names, seed) for m, p in scoring.with_ensemble(probabilities, *MODELS[:2]).items()}
    result["errors"] = errors
    result["seconds"] = {"both members": seconds}
    return result


def series_only(args, main_set: Path, independent: Path, harder: Path) -> str:
    """``--series-only``: series_cnn alone (no image run, so no ensemble): how it scales with more data."""
    options = {"epochs": args.series_epochs, "seed": args.seed}
    if args.series_kwargs:
        options["model_kwargs"] = args.series_kwargs
    run, seconds = train("series_cnn", main_set, options)
    names = list(store.get_run(run).class_names)
    frame = store.predictions(run)
    rows = {"own test split": score(frame["true_index"].tolist(), np.array(frame["probs"].tolist()), names, args.seed)}
    predictor = open_run(run, device="cpu")
    for label, files in (("independent (CSV)", sorted(independent.glob("*/*.csv"))),
                         (f"harder, difficulty {args.harder:g} (CSV)", sorted((harder / "csv" / "test").glob("*/*.csv")))):  # fmt: skip
        answers = [a for a in predictor.predict_files([(str(p), p) for p in files]) if a.error is None]
        y_true = [names.index(Path(a.filename).parent.name) for a in answers]
        rows[label] = score(y_true, np.array([[a.probabilities[c] for c in names] for a in answers]), names, args.seed)
    kwargs = f", model_kwargs {json.dumps(args.series_kwargs)}" if args.series_kwargs else ""
    lines = [f"### series_cnn alone{kwargs}, {args.train_per_class} plots' CSVs per class, {args.series_epochs} epochs "
             f"({seconds:.0f} s of training)", "", "| set | n | series_cnn macro-F1 (accuracy) | largest confusions |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    for label, figures in rows.items():
        worst = ", ".join(f"{t} -> {p}: {n}" for t, p, n in figures["top_confusions"])
        lines.append(f"| {label} | {figures['n']} | {format_interval(figures['macro_f1'], figures['macro_f1_ci'])} "
                     f"({figures['accuracy']:.3f}) | {worst} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run_summary(run_id: int) -> str:
    """One line on a stored run: id, model, the options that matter, data and training time."""
    run = store.get_run(run_id)
    config = run.config
    minutes = (run.finished_at - run.started_at).total_seconds() / 60 if run.finished_at and run.started_at else 0.0
    size = "" if config["model"] == "series_cnn" else f"{config['image_size']} px, "
    return (f"run {run_id} {config['model']} ({size}{config['epochs']} epochs, {config['augmentation']} augmentation, "
            f"seed {config['seed']}) on `{config['data']}`, {minutes:.0f} min of training")  # fmt: skip


def scored_runs_header(args, image_run: int, series_run: int) -> list[str]:
    return [
        f"## Product-sized runs, scored with `--runs {image_run} {series_run}`",
        "",
        f"`OMP_NUM_THREADS={scoring.threads()} python bench/series_model.py --runs {image_run} {series_run} "
        f"--test-per-class {args.test_per_class} --independent-per-class {args.independent_per_class} "
        f"--seed {args.seed}`, both runs trained beforehand on one dataset through `python -m backend train` "
        "(15% of the training folder held out for validation, which picks the epoch and fits the temperature; "
        "the test folder is the own split):",
        "",
        f"- image: {run_summary(image_run)}",
        f"- series: {run_summary(series_run)}",
        "",
        "Macro-F1 with its 95% stratified bootstrap interval (accuracy in brackets):",
        "",
        "| set | n | visual_cnn | series_cnn | ensemble (mean of calibrated probabilities) |",
        "| --- | --- | --- | --- | --- |",
    ]


def score_runs(args, image_run: int, series_run: int, independent: Path, harder: Path) -> tuple[dict, dict, list[str]]:
    """Both runs and their ensemble on the own split, the independent CSVs and the harder CSVs, and
    Compare's paired test (series minus image) on the own split."""
    for run_id in (image_run, series_run):
        try:
            completed = store.get_run(run_id).status == "completed"
        except store.RunNotFound:
            completed = False
        if not completed:
            raise SystemExit(f"run {run_id} is not a completed run in {os.environ.get('RUNS_DB_URL')}")
    names = list(store.get_run(image_run).class_names)
    if list(store.get_run(series_run).class_names) != names:
        raise SystemExit(f"runs {image_run} and {series_run} have different classes: train both on one dataset")
    s = args.seed
    results = {"own test split": own_split(image_run, series_run, names, s)}
    print("  scoring the independent CSVs ...", flush=True)
    results["independent (CSV)"] = csv_set(sorted(independent.glob("*/*.csv")), image_run, series_run, names, s)
    print(f"  scoring the difficulty-{args.harder:g} CSVs ...", flush=True)
    results[f"harder, difficulty {args.harder:g} (CSV)"] = csv_set(
        sorted((harder / "csv" / "test").glob("*/*.csv")), image_run, series_run, names, s
    )
    return results, compare_runs(series_run, image_run), names


def report(
    args, results: dict, times: dict, comparison: dict, names: list[str], header: list[str] | None = None
) -> str:
    lines = header or [
        "# Series model vs image model vs ensemble",
        "",
        f"`OMP_NUM_THREADS={scoring.threads()} python bench/series_model.py --train-per-class {args.train_per_class} "
        f"--test-per-class {args.test_per_class} --independent-per-class {args.independent_per_class} "
        f"--image-size {args.image_size} --image-epochs {args.image_epochs} --series-epochs {args.series_epochs} "
        f"--seed {args.seed}` on this 2-core CPU (shared). Training set: team-style plots + their "
        f"CSVs, {args.train_per_class} per class (15% held out for validation, which picks the epoch and "
        "fits the temperature); 9 classes.",
        "",
        f"Training time: visual_cnn {times['visual_cnn']:.0f} s ({args.image_size} px, {args.image_epochs} epochs), "
        f"series_cnn {times['series_cnn']:.0f} s ({args.series_epochs} epochs, 256 points).",
        "",
        "Macro-F1 with its 95% stratified bootstrap interval (accuracy in brackets):",
        "",
        "| set | n | visual_cnn | series_cnn | ensemble (mean of calibrated probabilities) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, figures in results.items():
        cells = [f"{format_interval(figures[m]['macro_f1'], figures[m]['macro_f1_ci'])} "
                 f"({figures[m]['accuracy']:.3f})" for m in MODELS]  # fmt: skip
        lines.append(f"| {label} | {figures['visual_cnn']['n']} | " + " | ".join(cells) + " |")
    lines += ["", f"Compare (own test split, paired, series minus image): {comparison['sentence']}", ""]
    lines += ["Largest confusions (true -> predicted: count):", ""]
    for label, figures in results.items():
        for model in MODELS:
            worst = ", ".join(f"{t} -> {p}: {n}" for t, p, n in figures[model]["top_confusions"])
            lines.append(f"- {label}, {model}: {worst}")
    lines += ["", "Per-class F1 (own split / independent / harder):", "",
              "| class | " + " | ".join(MODELS) + " |", "| --- | --- | --- | --- |"]  # fmt: skip
    for name in names:
        cells = [" / ".join(f"{figures[m]['per_class_f1'][name]:.2f}" for figures in results.values()) for m in MODELS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=40)
    parser.add_argument("--independent-per-class", type=int, default=40)
    parser.add_argument("--harder", type=float, default=1.75)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--image-epochs", type=int, default=10)
    parser.add_argument("--series-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--runs", type=int, nargs=2, metavar=("IMAGE", "SERIES"),
                        help="score these two stored runs (same dataset) instead of training; print the section")  # fmt: skip
    parser.add_argument("--series-kwargs", type=json.loads, default=None, metavar="JSON",
                        help='series_cnn architecture options with --series-only, e.g. \'{"blocks": 4}\'')  # fmt: skip
    parser.add_argument("--series-only", action="store_true",
                        help="train and score series_cnn alone; print its section (the file is not written)")  # fmt: skip
    args = parser.parse_args(argv)
    args.workdir = args.workdir or data_dir() / "generalization"
    if not args.runs:
        use_scratch_store()
    started = time.perf_counter()
    s = args.seed
    harder = build_dataset(DataSpec("team", s + 40, 1, args.test_per_class, difficulty=args.harder), args.workdir, None)
    independent = independent_csvs(args.workdir, args.independent_per_class, s + 50)
    if args.runs:
        image_run, series_run = args.runs
        results, comparison, names = score_runs(args, image_run, series_run, independent, harder)
        text = report(args, results, {}, comparison, names, scored_runs_header(args, image_run, series_run))
        print("\n" + text)
        (args.workdir / f"series-model-runs-{image_run}-{series_run}.json").write_text(
            json.dumps(results, indent=1, default=str)
        )
        print(f"scored in {time.perf_counter() - started:.0f} s")
        return 0
    main_set = build_dataset(DataSpec("team", s, args.train_per_class, args.test_per_class), args.workdir, None)
    if args.series_only:
        print("\n" + series_only(args, main_set, independent, harder))
        return 0
    image_run, image_s = train("visual_cnn", main_set, {"image_size": args.image_size, "epochs": args.image_epochs,
                                                        "seed": s})  # fmt: skip
    series_run, series_s = train("series_cnn", main_set, {"epochs": args.series_epochs, "seed": s})
    results, comparison, names = score_runs(args, image_run, series_run, independent, harder)
    text = report(args, results, {"visual_cnn": image_s, "series_cnn": series_s}, comparison, names)
    print("\n" + text)
    args.out.write_text(text)
    (args.workdir / "series-model-results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"written to {args.out} ({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
