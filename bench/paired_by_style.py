"""Two stored runs, paired on the same test plots, overall and by how each plot was drawn.

The Compare page and ``python -m backend compare`` give one paired figure for the whole test split.
An image preprocessing change (a crop, a polarity step, a finder version) moves some drawing styles
and leaves the rest alone, so this splits the same comparison by the style the generator recorded
for each test plot in the dataset's manifest: the team style, the varied styles together, and each
theme of the varied half. Per group: both runs' accuracy with a stratified bootstrap interval, the
paired difference (B minus A, percentage points) with its paired bootstrap interval, and McNemar's
exact p (``backend.evaluation.stats``).

    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/paired_by_style.py 1 2 --data DATASET

Prints a markdown table; docs/BENCHMARKS_crop.md holds the figures it produced.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend import store  # noqa: E402
from backend.data.render import TEAM_STYLE  # noqa: E402
from backend.evaluation.stats import bootstrap_metrics, paired_comparison  # noqa: E402

TEAM = "team style"
MIN_ITEMS = 10  # themes with fewer test plots are reported together as "other themes"


def style_groups(manifest: dict) -> dict[str, str]:
    """Each test plot's path (as stored with predictions: relative to the dataset) -> its group: the
    team style, or the varied style's theme. A dataset generated all in team style records no
    style per plot (``options.style`` says it); each of its plots is in the team group."""
    team = asdict(TEAM_STYLE)
    all_team = manifest.get("options", {}).get("style") == "team"
    groups = {}
    for sample in manifest["samples"]:
        if sample["split"] != "test":
            continue
        if "style" in sample:
            groups[sample["png"]] = TEAM if sample["style"] == team else sample["style"]["theme"]
        elif all_team:
            groups[sample["png"]] = TEAM
    return groups


def aligned_frames(run_ids) -> list:
    """The stored test predictions of ``run_ids`` (in the store ``RUNS_DB_URL`` names), one frame per
    run indexed by plot path, every frame in the first run's order. ValueError when a run has no
    predictions, the runs were tested on different plots or label the same plots differently."""
    frames = [store.predictions(run_id) for run_id in run_ids]
    for run_id, frame in zip(run_ids, frames, strict=True):
        if frame.empty:
            raise ValueError(f"run {run_id} has no stored test predictions")
    first = frames[0].set_index("path")
    if first.index.has_duplicates:
        raise ValueError(f"run {run_ids[0]} stores some test plot twice")
    aligned = []
    for run_id, frame in zip(run_ids, frames, strict=True):
        indexed = frame.set_index("path")
        if set(indexed.index) != set(first.index) or indexed.index.has_duplicates:
            raise ValueError(f"runs {run_ids[0]} and {run_id} were not tested on the same plots")
        indexed = indexed.loc[first.index]
        if not np.array_equal(indexed["true_index"], first["true_index"]):
            raise ValueError(f"runs {run_ids[0]} and {run_id} label the same plots differently")
        aligned.append(indexed)
    return aligned


def shared_class_names(run_ids) -> list[str]:
    """The runs' class names; ValueError when two runs name other classes."""
    names = list(store.get_run(run_ids[0]).class_names)
    for run_id in run_ids[1:]:
        if list(store.get_run(run_id).class_names) != names:
            raise ValueError(f"runs {run_ids[0]} and {run_id} have different class names")
    return names


def aligned_predictions(run_ids) -> tuple[list[str], np.ndarray, list[np.ndarray], list[str]]:
    """The stored test predictions of ``run_ids`` on their shared plots, in the first run's order:
    ``(paths, y_true, [pred of each run], class_names)``; ValueError as ``aligned_frames`` and
    ``shared_class_names`` raise it."""
    frames = aligned_frames(run_ids)
    names = shared_class_names(run_ids)
    return list(frames[0].index), frames[0]["true_index"].to_numpy(), [f["pred_index"].to_numpy() for f in frames], names


def style_selections(paths, groups: dict[str, str]) -> list[tuple[str, np.ndarray]]:
    """(group name, boolean mask over ``paths``) for all, team style, varied, then each varied theme
    with at least ``MIN_ITEMS`` plots (largest first) and the smaller themes together; empty groups
    are left out. ValueError when a path has no group."""
    missing = sorted({p for p in paths if p not in groups})
    if missing:
        raise ValueError(f"{len(missing)} test item(s) have no style in the manifest, e.g. {missing[0]}")
    group = np.array([groups[p] for p in paths])
    counts = {name: int((group == name).sum()) for name in set(group) if name != TEAM}
    themes = sorted((n for n, c in counts.items() if c >= MIN_ITEMS), key=lambda n: (-counts[n], n))
    selections = [("all", np.ones(len(group), bool)), (TEAM, group == TEAM), ("varied", group != TEAM)]
    selections += [(f"varied, {theme}", group == theme) for theme in themes]
    selections.append(("varied, other themes", np.isin(group, [n for n in counts if n not in themes])))
    return [(name, mask) for name, mask in selections if mask.any()]


def paired_rows(paths, y_true, pred_a, pred_b, class_names, groups: dict[str, str], *, resamples: int = 1000) -> list[dict]:
    """One row per group (all, team style, varied, then each varied theme, largest first): n, both
    runs' accuracy and interval, the paired difference B - A and its interval, McNemar's p."""
    selections = style_selections(list(paths), groups)
    y_true, pred_a, pred_b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    rows = []
    for name, mask in selections:
        a = bootstrap_metrics(y_true[mask], pred_a[mask], class_names, n_resamples=resamples)
        b = bootstrap_metrics(y_true[mask], pred_b[mask], class_names, n_resamples=resamples)
        paired = paired_comparison(y_true[mask], pred_b[mask], pred_a[mask], class_names, n_resamples=resamples)
        rows.append({
            "group": name, "n": int(mask.sum()),
            "accuracy_a": a["accuracy"], "accuracy_a_ci": a["accuracy_ci"],
            "accuracy_b": b["accuracy"], "accuracy_b_ci": b["accuracy_ci"],
            "diff": paired["accuracy_diff"], "diff_ci": paired["accuracy_diff_ci"], "p": paired["mcnemar_p"],
        })  # fmt: skip
    return rows


def points(value: float) -> str:
    """A difference of two shares in percentage points: ``+1.3``."""
    return f"{100 * value:+.1f}"


def interval(ci) -> str:
    """A difference's interval in percentage points: ``[-0.2, +1.7]``."""
    return f"[{points(ci[0])}, {points(ci[1])}]"


def markdown(rows: list[dict], run_a: int | str, run_b: int | str) -> str:
    def acc(value, ci) -> str:
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

    a, b = (f"run {r}" if isinstance(r, int) else str(r) for r in (run_a, run_b))  # a run id, or a name
    lines = [
        f"| test plots | n | {a} | {b} | {run_b} - {run_a} [95%], McNemar p |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['group']} | {row['n']} | {acc(row['accuracy_a'], row['accuracy_a_ci'])} | "
            f"{acc(row['accuracy_b'], row['accuracy_b_ci'])} | "
            f"{points(row['diff'])} {interval(row['diff_ci'])}, p = {row['p']:.2g} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=int)
    parser.add_argument("run_b", type=int)
    parser.add_argument("--data", type=Path, required=True, help="the generated dataset both runs tested on")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        paths, y_true, (pred_a, pred_b), names = aligned_predictions([args.run_a, args.run_b])
    except ValueError as error:
        parser.error(str(error))
    groups = style_groups(json.loads((args.data / "manifest.json").read_text()))
    rows = paired_rows(paths, y_true, pred_a, pred_b, names, groups, resamples=args.resamples)
    print(markdown(rows, args.run_a, args.run_b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
