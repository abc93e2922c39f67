"""An A/B of two training recipes over several seeds, paired on the same test plots.

One seed's A/B (``bench/paired_by_style.py``, the Compare page) says whether two *runs* differ; a
recipe change of a point or less is the size of one recipe's seed-to-seed spread on these splits, so
the question that decides a default is whether the change holds over seeds. Give one ``--pair A B``
per seed (run A trained with the old recipe, run B with the new, same seed, same dataset); every run
must have predicted the same test plots. For each seed it prints both runs' macro-F1, the difference
B - A with its paired bootstrap interval and McNemar's p; then the pooled figure
(``backend.evaluation.stats.paired_over_seeds``): the mean of the seeds' differences, its interval
from one resample of the shared items, the sign test on every seed's discordant items together, and
whether every seed points the same way. With ``--data`` the pooled figure is also split by the style
the dataset's manifest records for each plot (team style, varied, each theme). Last, per class:
both recipes' F1 (scikit-learn's, the mean over seeds) and, summed over seeds, the plots of that
class only one recipe got right, to see which classes a change moves.

With ``--csv-sets`` every run is also scored, through the upload path (``predict_files``, fp32, no
TTA), on the two CSV sets ``bench/series_model.py`` and ``bench/series_tta.py`` build for the same
``--seed`` and sizes under ``--workdir``: the independent generator's series
(``bench/independent_series.py``, which nothing here is tuned to) and the product generator's at
``--harder`` difficulty. Their pooled rows join the table, so one command answers whether a change
holds on the sets the series aims are about, not only on the split it was selected on.

    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/seeds_ab.py --pair 1 3 --pair 5 6 --data DATASET \\
        --names defaults ink
    python bench/seeds_ab.py --pair 2 3 --pair 4 5 --data DATASET --csv-sets --workdir W   # + independent, harder

The interval reflects which items were drawn, not where a further seed would land: two or three
seeds show their spread (the per-seed rows), they cannot estimate it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.config import data_dir  # noqa: E402
from backend.evaluation.stats import paired_over_seeds  # noqa: E402
from bench.paired_by_style import (  # noqa: E402
    aligned_predictions,
    interval,
    points,
    style_groups,
    style_selections,
)


def pooled_by_group(paths, y_true, pairs, class_names, groups: dict[str, str] | None, *, resamples: int = 1000):
    """(group, pooled result) for all plots (first) and, given the manifest's groups, every style group."""
    selections = style_selections(paths, groups) if groups else [("all", np.ones(len(paths), bool))]
    return [
        (name, paired_over_seeds(y_true[mask], [(a[mask], b[mask]) for a, b in pairs], class_names, n_resamples=resamples))
        for name, mask in selections
    ]


def csv_sets(workdir: Path, independent_per_class: int, test_per_class: int, harder: float, seed: int) -> dict[str, Path]:
    """The independent and harder CSV folders of ``bench/series_model.py`` for these options (made once)."""
    from bench.generalization import DataSpec, build_dataset, independent_csvs

    harder_set = build_dataset(DataSpec("team", seed + 40, 1, test_per_class, difficulty=harder), workdir, None)
    return {
        "independent (CSV)": independent_csvs(workdir, independent_per_class, seed + 50),
        f"harder, difficulty {harder:g} (CSV)": harder_set / "csv" / "test",
    }


def pooled_on_csv_sets(run_ids, class_names, sets: dict[str, Path], *, seed: int, resamples: int = 1000):
    """(set label, pooled result, y_true, pairs) per CSV set: every run predicts the set's files (fp32,
    no TTA), only files every run could read are kept, and consecutive runs form the pairs as in
    ``--pair``."""
    from backend.predict_series import open_run
    from bench import scoring

    predictors = {run_id: open_run(run_id, device="cpu", precision="fp32") for run_id in run_ids}
    pooled = []
    for label, folder in sets.items():
        print(f"  scoring {label} with runs {', '.join(map(str, run_ids))} ...", file=sys.stderr, flush=True)
        y_true, probabilities, unreadable = scoring.member_probabilities(predictors, scoring.csv_files(folder), class_names)
        if unreadable:
            print(f"  {unreadable} files of {label} unreadable by a run (left out)", file=sys.stderr, flush=True)
        predictions = [probabilities[run_id].argmax(axis=1) for run_id in run_ids]
        pairs = list(zip(predictions[::2], predictions[1::2], strict=True))
        result = paired_over_seeds(np.asarray(y_true), pairs, class_names, n_resamples=resamples, seed=seed)
        pooled.append((label, result, np.asarray(y_true), pairs))
    return pooled


def markdown(run_pairs, pooled: list[tuple[str, dict]], names: tuple[str, str]) -> str:
    """Each seed's paired comparison on all plots (from the pooled result's ``per_pair``), then the
    pooled figure per group."""
    a, b = names
    rows = pooled[0][1]["per_pair"]  # the "all" group
    lines = [
        f"| seed: runs ({a}, {b}) | macro-F1 {a} | macro-F1 {b} | {b} - {a} [95%] | only {a} / only {b} right | McNemar p |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (run_a, run_b), row in zip(run_pairs, rows, strict=True):
        only_a, only_b = row["discordant"]
        lines.append(f"| runs {run_a}, {run_b} | {row['macro_f1_a']:.3f} | {row['macro_f1_b']:.3f} | "
                     f"{points(row['macro_f1_diff'])} {interval(row['macro_f1_diff_ci'])} | {only_a} / {only_b} | "
                     f"{row['mcnemar_p']:.2g} |")  # fmt: skip
    lines += [
        "",
        f"| test plots | n | macro-F1 {a} -> {b} (mean of {len(rows)} seed{'s' * (len(rows) != 1)}) | {b} - {a} per seed | pooled {b} - {a} [95%] "
        f"| accuracy {b} - {a} [95%] | only {a} / only {b} right | sign test p | every seed same way |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for group, result in pooled:
        per_seed = ", ".join(points(row["macro_f1_diff"]) for row in result["per_pair"])
        only_a, only_b = result["discordant"]
        lines.append(
            f"| {group} | {result['n_paired']} | {result['macro_f1_a']:.3f} -> {result['macro_f1_b']:.3f} | {per_seed} | "
            f"{points(result['macro_f1_diff'])} {interval(result['macro_f1_diff_ci'])} | "
            f"{points(result['accuracy_diff'])} {interval(result['accuracy_diff_ci'])} | {only_a} / {only_b} | "
            f"{result['mcnemar_p']:.2g} | {'yes' if result['same_sign'] else 'no'} |"
        )
    return "\n".join(lines)


def per_class_rows(y_true, pairs, class_names) -> list[dict]:
    """One row per class: n (its test plots), F1 of A and of B (each the mean over the seeds' pairs),
    and how many of its plots only A / only B got right, summed over the seeds."""
    from sklearn.metrics import f1_score

    labels = list(range(len(class_names)))
    f1_a = np.mean([f1_score(y_true, a, labels=labels, average=None, zero_division=0) for a, _ in pairs], axis=0)
    f1_b = np.mean([f1_score(y_true, b, labels=labels, average=None, zero_division=0) for _, b in pairs], axis=0)
    rows = []
    for index, name in enumerate(class_names):
        mine = y_true == index
        only_a = sum(int(np.sum(mine & (a == y_true) & (b != y_true))) for a, b in pairs)
        only_b = sum(int(np.sum(mine & (b == y_true) & (a != y_true))) for a, b in pairs)
        rows.append({"class": name, "n": int(mine.sum()), "f1_a": float(f1_a[index]), "f1_b": float(f1_b[index]),
                     "only_a": only_a, "only_b": only_b})  # fmt: skip
    return rows


def class_markdown(rows: list[dict], names: tuple[str, str], seeds: int) -> str:
    a, b = names
    lines = [
        f"| class | n | F1 {a} | F1 {b} | {b} - {a} (F1: mean of {seeds} seed{'s' * (seeds != 1)}) | "
        f"only {a} / only {b} right (all seeds) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['class']} | {row['n']} | {row['f1_a']:.3f} | {row['f1_b']:.3f} | "
                     f"{points(row['f1_b'] - row['f1_a'])} | {row['only_a']} / {row['only_b']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, type=int, action="append", required=True, metavar=("A", "B"),
                        help="one seed's two runs: A with the old recipe, B with the new (repeat per seed)")  # fmt: skip
    parser.add_argument("--data", type=Path, default=None, help="the generated dataset, to split by drawing style")
    parser.add_argument("--names", nargs=2, default=("A", "B"), metavar=("A", "B"), help="labels of the two recipes")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--csv-sets", action="store_true",
                        help="also score every run on the independent and harder CSV sets (module docstring)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the CSV sets are made (default: DATA_DIR/generalization)")
    parser.add_argument("--independent-per-class", type=int, default=40)
    parser.add_argument("--test-per-class", type=int, default=40, help="series per class of the harder set")
    parser.add_argument("--harder", type=float, default=1.75, help="difficulty of the harder set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the CSV sets (as bench/series_model.py)")
    args = parser.parse_args(argv)
    run_ids = [run for pair in args.pair for run in pair]
    if len(set(run_ids)) != len(run_ids):
        parser.error("each run may appear in one pair only")
    try:
        paths, y_true, predictions, class_names = aligned_predictions(run_ids)
        groups = style_groups(json.loads((args.data / "manifest.json").read_text())) if args.data else None
        pairs = list(zip(predictions[::2], predictions[1::2], strict=True))
        pooled = pooled_by_group(paths, y_true, pairs, class_names, groups, resamples=args.resamples)
        if args.csv_sets:
            sets = csv_sets(args.workdir or data_dir() / "generalization", args.independent_per_class,
                            args.test_per_class, args.harder, args.seed)  # fmt: skip
            on_sets = pooled_on_csv_sets(run_ids, class_names, sets, seed=args.seed, resamples=args.resamples)
        else:
            on_sets = []
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(markdown(args.pair, pooled + [(label, result) for label, result, _, _ in on_sets], tuple(args.names)))
    print()
    print(class_markdown(per_class_rows(y_true, pairs, class_names), tuple(args.names), len(pairs)))
    for label, _, set_truth, set_pairs in on_sets:
        print(f"\nBy class, {label}:\n")
        print(class_markdown(per_class_rows(set_truth, set_pairs, class_names), tuple(args.names), len(set_pairs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
