"""Where several runs fail together: the test plots most runs get wrong, and what averaging them scores.

A recipe change is judged by the plots it moves (``bench/seeds_ab.py``); this asks the other
question: of one run's errors, how many would any run of this family make? Give the runs (trained on
the same dataset, whatever their recipe or seed; every run must have predicted the same test plots
with probabilities). It prints:

- each run's macro-F1 with its stratified bootstrap interval, the macro-F1 of the mean of the runs'
  stored (calibrated) probabilities, and the accuracy of an oracle that is right wherever any run is
  (a bound, not a model);
- how many plots are wrong in 0, 1, ..., n of the runs;
- the plots wrong in at least ``--at-least`` runs (default: all but one), grouped by true class,
  the generator's sub-kind (from the manifest, with ``--data``) and the class most of those runs
  chose; and how short those series are beside the whole test split;
- with ``--data``, accuracy by series length (the manifest's point count): the mean run's and the
  averaged probabilities'.

With ``--sheet PNG`` (and ``--data``) it also draws those plots on one contact sheet, captioned with
the truth, the sub-kind, the series length and the runs' choice: the way to see whether a person
would have got them right.

    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/shared_errors.py 1 3 5 6 --data DATASET \\
        --sheet shared_errors.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.evaluation.stats import bootstrap_metrics  # noqa: E402
from bench.paired_by_style import aligned_frames, shared_class_names  # noqa: E402

SHORT = 256  # a series with fewer points than this counts as short
LENGTH_EDGES = (128, 256, 512, 1024, 2048)  # the by-length table's bucket edges, in series points
THUMB = (300, 210)  # contact-sheet cell (width, height) below its two caption lines
CAPTION = 30
COLUMNS = 6


def stacked_probabilities(frames, run_ids) -> np.ndarray:
    """(runs, plots, classes) of the stored probabilities; ValueError when a run stored none."""
    stacked = []
    for run_id, frame in zip(run_ids, frames, strict=True):
        if frame["probs"].isna().any():
            raise ValueError(f"run {run_id} stored no probabilities for some test plots")
        stacked.append(np.array(frame["probs"].tolist(), dtype=float))
    if len({p.shape for p in stacked}) != 1:
        raise ValueError("the runs stored probabilities over different numbers of classes")
    return np.stack(stacked)


def analyse(y_true, preds: np.ndarray, probs: np.ndarray, class_names, *, at_least: int, resamples: int = 1000) -> dict:
    """The figures this bench prints, from the truth (plots,), each run's predictions (runs, plots)
    and probabilities (runs, plots, classes): ``runs`` (bootstrap_metrics per run), ``ensemble``
    (bootstrap_metrics of the mean probability's argmax), ``oracle_accuracy``, ``wrong_counts``
    (plots wrong in k runs, k = 0..runs), ``shared`` (mask of plots wrong in at least ``at_least``
    runs), ``majority`` (each plot's most chosen class among the runs that got it wrong), and the
    ``preds`` and the averaged probabilities' ``ensemble_pred`` themselves."""
    y_true = np.asarray(y_true)
    wrong = preds != y_true[None, :]
    per_plot = wrong.sum(axis=0)
    majority = np.array([
        Counter(preds[wrong[:, i], i].tolist()).most_common(1)[0][0] if per_plot[i] else y_true[i] for i in range(len(y_true))
    ])  # fmt: skip
    ensemble_pred = probs.mean(axis=0).argmax(axis=1)
    return {
        "preds": preds,
        "ensemble_pred": ensemble_pred,
        "runs": [bootstrap_metrics(y_true, pred, class_names, n_resamples=resamples) for pred in preds],
        "ensemble": bootstrap_metrics(y_true, ensemble_pred, class_names, n_resamples=resamples),
        "oracle_accuracy": float((per_plot < len(preds)).mean()),
        "wrong_counts": np.bincount(per_plot, minlength=len(preds) + 1).tolist(),
        "shared": per_plot >= at_least,
        "majority": majority,
    }


def sample_details(manifest: dict | None, paths) -> list[dict]:
    """Each test plot's sub-kind and series length from the manifest (``?`` and None without one)."""
    samples = {s["png"]: s for s in (manifest or {}).get("samples", [])}
    details = []
    for path in paths:
        sample = samples.get(path, {})
        details.append({"subkind": sample.get("subkind", "?"), "length": sample.get("params", {}).get("length")})
    return details


def length_rows(lengths, y_true, preds: np.ndarray, ensemble_pred) -> list[dict]:
    """Per length bucket (``LENGTH_EDGES``): its range, n, the runs' mean accuracy and the averaged
    probabilities' accuracy; empty buckets are left out."""
    lengths = np.asarray(lengths)
    bucket = np.digitize(lengths, LENGTH_EDGES)
    edges = (0, *LENGTH_EDGES, None)
    rows = []
    for index in range(len(edges) - 1):
        mask = bucket == index
        if not mask.any():
            continue
        low, high = edges[index], edges[index + 1]
        rows.append({
            "points": f"{low}-{high - 1}" if high else f"{low} or more", "n": int(mask.sum()),
            "run_accuracy": float((preds[:, mask] == y_true[mask]).mean()),
            "ensemble_accuracy": float((ensemble_pred[mask] == y_true[mask]).mean()),
        })  # fmt: skip
    return rows


def markdown(run_ids, result: dict, y_true, class_names, details, at_least: int) -> str:
    def f1(m) -> str:
        return f"{m['macro_f1']:.3f} [{m['macro_f1_ci'][0]:.3f}, {m['macro_f1_ci'][1]:.3f}]"

    n_runs, n_plots = len(run_ids), len(y_true)
    counts = result["wrong_counts"]
    run_wrong = (result["preds"] != y_true).sum(axis=1)
    lines = ["| run | macro-F1 [95%] | accuracy | plots wrong |", "| --- | --- | --- | --- |"]
    for run_id, metrics, wrong in zip(run_ids, result["runs"], run_wrong, strict=True):
        lines.append(f"| {run_id} | {f1(metrics)} | {metrics['accuracy']:.3f} | {wrong} |")
    ensemble = result["ensemble"]
    lines.append(f"| mean of the {n_runs} runs' probabilities | {f1(ensemble)} | {ensemble['accuracy']:.3f} | "
                 f"{(result['ensemble_pred'] != y_true).sum()} |")  # fmt: skip
    lines.append(f"| any run right (a bound, not a model) | | {result['oracle_accuracy']:.3f} | {counts[-1]} |")
    lines += ["", f"| wrong in k of {n_runs} runs | " + " | ".join(str(k) for k in range(n_runs + 1)) + " |",
              "| --- " * (n_runs + 2) + "|", "| test plots | " + " | ".join(str(c) for c in counts) + " |"]  # fmt: skip
    shared = np.flatnonzero(result["shared"])
    lines += ["", f"{len(shared)} test plots ({len(shared) / n_plots:.1%}) are wrong in at least {at_least} of the "
              f"{n_runs} runs; a run makes {run_wrong.mean():.0f} errors on average."]  # fmt: skip
    lengths = [d["length"] for d in details]
    if all(length is not None for length in lengths):
        short = np.array(lengths) < SHORT
        lines.append(f"Series shorter than {SHORT} points: {short[shared].mean():.0%} of these, "
                     f"{short.mean():.0%} of the test split.")  # fmt: skip
        lines += ["", "| series length (points) | test plots | accuracy, mean of the runs | accuracy, averaged probabilities |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for row in length_rows(lengths, y_true, result["preds"], result["ensemble_pred"]):
            lines.append(f"| {row['points']} | {row['n']} | {row['run_accuracy']:.3f} | {row['ensemble_accuracy']:.3f} |")
    groups = Counter((int(y_true[i]), details[i]["subkind"], int(result["majority"][i])) for i in shared)
    lines += ["", "| true class | sub-kind | most of those runs say | plots |", "| --- | --- | --- | --- |"]
    for (truth, subkind, said), count in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {class_names[truth]} | {subkind} | {class_names[said]} | {count} |")
    return "\n".join(lines)


def contact_sheet(data: Path, paths, y_true, result: dict, class_names, details) -> Image.Image:
    """The shared-error plots as drawn, in a grid of ``COLUMNS``, each captioned with the truth and
    sub-kind, the series length and the class most runs chose (in red)."""
    shared = np.flatnonzero(result["shared"])
    rows = max(1, -(-len(shared) // COLUMNS))
    width, height = THUMB
    sheet = Image.new("RGB", (width * COLUMNS, (height + CAPTION) * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for cell, i in enumerate(shared):
        x, y = (cell % COLUMNS) * width, (cell // COLUMNS) * (height + CAPTION)
        with Image.open(data / paths[i]) as image:
            thumb = image.convert("RGB")
        thumb.thumbnail(THUMB)
        sheet.paste(thumb, (x, y + CAPTION))
        draw.text((x + 3, y + 2), f"{class_names[y_true[i]]} / {details[i]['subkind']}, {details[i]['length']} points", fill="black")
        draw.text((x + 3, y + 15), f"runs say {class_names[result['majority'][i]]}", fill="red")
    return sheet


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int, nargs="+", help="two or more run ids tested on the same plots")
    parser.add_argument("--data", type=Path, default=None, help="the dataset they tested on: sub-kinds and lengths")
    parser.add_argument("--at-least", type=int, default=None, help="a shared error is wrong in this many runs "
                        "(default: all but one)")  # fmt: skip
    parser.add_argument("--sheet", type=Path, default=None, help="write the shared errors' contact sheet here (PNG)")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    if len(args.runs) < 2 or len(set(args.runs)) != len(args.runs):
        parser.error("give two or more different runs")
    at_least = len(args.runs) - 1 if args.at_least is None else args.at_least
    if not 1 <= at_least <= len(args.runs):
        parser.error(f"--at-least must be between 1 and {len(args.runs)}")
    if args.sheet is not None and args.data is None:
        parser.error("--sheet needs --data (the plots are read from the dataset)")
    try:
        frames = aligned_frames(args.runs)
        class_names = shared_class_names(args.runs)
        probs = stacked_probabilities(frames, args.runs)
        manifest = json.loads((args.data / "manifest.json").read_text()) if args.data else None
    except (ValueError, OSError) as error:
        parser.error(str(error))
    paths, y_true = list(frames[0].index), frames[0]["true_index"].to_numpy()
    preds = np.stack([frame["pred_index"].to_numpy() for frame in frames])
    result = analyse(y_true, preds, probs, class_names, at_least=at_least, resamples=args.resamples)
    details = sample_details(manifest, paths)
    print(markdown(args.runs, result, y_true, class_names, details, at_least))
    if args.sheet is not None:
        contact_sheet(args.data, paths, y_true, result, class_names, details).save(args.sheet)
        print(f"\ncontact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
