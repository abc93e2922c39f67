"""How well the per-prediction ``uncertain`` flag catches wrong answers (issue 13, item 5).

Trains one small visual_cnn on the product's generator (team style, train / val / test; the run
stores its temperature, confidence threshold and feature statistics), then predicts, through the CSV
prediction path (``Predictor.predict_files``, style TTA on):

- ``own``: the dataset's own test CSVs (in distribution);
- ``independent``: CSVs from ``bench/independent_series.py``, a clean-room generator the product
  never saw (out of distribution in the ways that matter: noise, lengths, sub-kinds).

For each: accuracy, ECE, and the share of wrong and of right answers flagged by the product's flag
(confidence OR views disagree OR unfamiliar), by a confidence-only flag (the same threshold) and by
each signal alone. Aims: >= 60% of wrong answers flagged, <= 10% of right answers.

    OMP_NUM_THREADS=1 .venv/bin/python bench/uncertainty.py [--epochs 8] [--image-size 64]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend import store  # noqa: E402
from backend.cli.train import build_config, train_run  # noqa: E402
from backend.config import data_dir  # noqa: E402
from backend.data.generate import generate_dataset  # noqa: E402
from backend.evaluation.calibration import expected_calibration_error  # noqa: E402
from backend.predict import Predictor  # noqa: E402
from bench.independent_series import write_dataset  # noqa: E402
from bench.report import load_average, publish  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_uncertainty.md"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-per-class", type=int, default=40)
    parser.add_argument("--val-per-class", type=int, default=15)
    parser.add_argument("--test-per-class", type=int, default=15)
    parser.add_argument("--independent-per-class", type=int, default=20)
    parser.add_argument("--style-views", type=int, default=4, help="CSV renderings in other styles (style TTA)")
    parser.add_argument("--tta", default="none", help="flip TTA mode on top (none, flip4, ...)")
    parser.add_argument("--train-style", default="team", choices=("team", "mixed"),
                        help="plot style of the generated training set (mixed: half team, half varied)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="datasets and the model, reused between runs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.workdir = args.workdir or data_dir() / "uncertainty"
    return args


def trained_checkpoint(args: argparse.Namespace) -> tuple[Path, Path, dict]:
    """The generated dataset and a checkpoint trained on it (both reused when the options match)."""
    spec = {k: getattr(args, k) for k in ("image_size", "epochs", "train_per_class", "val_per_class",
                                          "test_per_class", "seed", "train_style")}  # fmt: skip
    key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    folder, checkpoint, facts_file = (args.workdir / f"data-{key}", args.workdir / f"model-{key}.pt",
                                      args.workdir / f"model-{key}.json")  # fmt: skip
    if not (folder / "done").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        generate_dataset(folder / "set", train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                         test_per_class=args.test_per_class, seed=args.seed, style=args.train_style,
                         workers=2)  # fmt: skip
        (folder / "done").touch()
    if not (checkpoint.is_file() and facts_file.is_file()):
        started = time.perf_counter()
        config = build_config({"data": str(folder / "set"), "model": "visual_cnn", "image_size": args.image_size,
                               "epochs": args.epochs, "seed": args.seed, "device": "cpu", "precision": "fp32",
                               "name": "bench: uncertainty"})  # fmt: skip
        result = train_run(config)
        run = store.get_run(result.run_id)
        if result.status != "completed":
            raise SystemExit(f"training ended {result.status}: {run.error}")
        shutil.copyfile(run.checkpoint_path, checkpoint)
        facts_file.write_text(json.dumps({"seconds": time.perf_counter() - started, "best_epoch": run.best_epoch,
                                          "test": run.test_metrics or {}}))  # fmt: skip
    return folder / "set", checkpoint, json.loads(facts_file.read_text())


def predict_folder(predictor: Predictor, files: list[Path], args) -> pd.DataFrame:
    """Every CSV through the upload path; one row per answered file with its signals."""
    predictions = predictor.predict_files([(str(p), p) for p in files], args.tta, style_views=args.style_views)
    rows = []
    for p in predictions:
        if p.error:
            continue
        rows.append({"true": Path(p.filename).parent.name, "predicted": p.predicted, "confidence": p.confidence,
                     "agreement": p.tta_agreement, "spread": p.tta_spread, "distance": p.feature_distance,
                     "uncertain": p.uncertain, "reason": p.uncertain_reason,
                     **{f"prob_{c}": v for c, v in p.probabilities.items()}})  # fmt: skip
    return pd.DataFrame(rows)


def flag_table(table: pd.DataFrame, predictor: Predictor) -> list[dict]:
    """Share of wrong and of right answers flagged, per flag."""
    policy = predictor.policy
    right = (table["true"] == table["predicted"]).to_numpy()
    never = np.zeros(len(table), dtype=bool)
    confidence = table["confidence"] < policy.confidence_threshold if policy.confidence_threshold else never
    views = table["agreement"] < policy.agreement_threshold
    distance = table["distance"] > policy.distance_threshold if policy.distance_threshold else never
    flags = {
        "product flag (any signal)": table["uncertain"].to_numpy(),
        "confidence only (threshold from validation)": np.asarray(confidence),
        "views disagree only": np.asarray(views),
        "feature distance only": np.asarray(distance),
        "views or distance (no confidence)": np.asarray(views) | np.asarray(distance),
    }
    rows = []
    for name, flagged in flags.items():
        flagged = np.asarray(flagged, dtype=bool)
        rows.append({"flag": name, "wrong_flagged": flagged[~right].mean() if (~right).any() else float("nan"),
                     "right_flagged": flagged[right].mean() if right.any() else float("nan"),
                     "n_wrong": int((~right).sum()), "n_right": int(right.sum())})  # fmt: skip
    return rows


def sweep(table: pd.DataFrame, predictor: Predictor) -> list[dict]:
    """The product flag with other agreement thresholds (from the same per-file signals)."""
    policy, right = predictor.policy, (table["true"] == table["predicted"]).to_numpy()
    base = np.zeros(len(table), dtype=bool)
    if policy.confidence_threshold:
        base |= (table["confidence"] < policy.confidence_threshold).to_numpy()
    if policy.distance_threshold:
        base |= (table["distance"] > policy.distance_threshold).to_numpy()
    rows = []
    for threshold in (0.0, 0.4, 0.5, 0.6, 0.75, 0.9):
        flagged = base | (table["agreement"] < threshold).to_numpy()
        rows.append({"agreement": threshold, "wrong_flagged": flagged[~right].mean() if (~right).any() else np.nan,
                     "right_flagged": flagged[right].mean() if right.any() else np.nan})  # fmt: skip
    return rows


def summary(name: str, table: pd.DataFrame, predictor: Predictor) -> dict:
    names = predictor.class_names
    probs = table[[f"prob_{c}" for c in names]].to_numpy()
    y = [names.index(c) for c in table["true"]]
    right = table["true"] == table["predicted"]
    return {"set": name, "n": len(table), "accuracy": float(right.mean()),
            "mean_confidence": float(table["confidence"].mean()), "ece": expected_calibration_error(probs, y),
            "wrong_above_099": int(((~right) & (table["confidence"] > 0.99)).sum())}  # fmt: skip


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="awb-bench-uncertainty-"))
    os.environ["RUNS_DB_URL"] = f"sqlite:///{scratch / 'runs.db'}"
    os.environ.setdefault("ARTIFACTS_DIR", str(scratch / "artifacts"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    dataset, checkpoint, facts = trained_checkpoint(args)
    print(f"model ready after {time.perf_counter() - started:.0f} s", flush=True)
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", precision="fp32")
    independent = args.workdir / f"independent-{args.independent_per_class}-s{args.seed + 50}"
    if not (independent / "done").is_file():
        shutil.rmtree(independent, ignore_errors=True)
        write_dataset(independent, args.independent_per_class, args.seed + 50)
        (independent / "done").touch()
    sets = {"own test CSVs": sorted((dataset / "csv" / "test").glob("*/*.csv")),
            "independent generator CSVs": sorted(independent.glob("*/*.csv"))}  # fmt: skip
    summaries, flags, reasons, sweeps = [], {}, {}, {}
    for name, files in sets.items():
        t0 = time.perf_counter()
        table = predict_folder(predictor, files, args)
        table.to_csv(args.workdir / f"signals-{args.train_style}-{name.split()[0]}.csv", index=False)
        print(f"{name}: {len(table)} files in {time.perf_counter() - t0:.0f} s", flush=True)
        summaries.append(summary(name, table, predictor))
        flags[name] = flag_table(table, predictor)
        wrong = table[table["true"] != table["predicted"]]
        reasons[name] = wrong["reason"].str.split("; ").explode().str.split(" ").str[0].value_counts().to_dict()
        sweeps[name] = sweep(table, predictor)
    policy = predictor.policy
    lines = [
        "# Uncertainty on each prediction (`bench/uncertainty.py`)",
        "",
        f"visual_cnn at {args.image_size} px, {args.epochs} epochs, trained on the product's generator ({args.train_style} style, "
        f"{args.train_per_class} train / {args.val_per_class} val / {args.test_per_class} test per class, 9 classes, "
        f"seed {args.seed}; best epoch {facts.get('best_epoch')}, {facts.get('seconds', 0):.0f} s to train). Predicted "
        f"through the CSV path with TTA `{args.tta}` and {args.style_views} style views. Independent generator: "
        f"{args.independent_per_class} CSVs per class (`bench/independent_series.py`, seed {args.seed + 50}). "
        f"CPU, load average {load_average()}; {time.perf_counter() - started:.0f} s in all.",
        "",
        f"Thresholds from the checkpoint: temperature {predictor.temperature:.3f}, confidence "
        f"{policy.confidence_threshold:.3f} (chosen on validation to flag at most 10% of its right answers), "
        f"feature distance {policy.distance_threshold:.2f} (validation {100 * policy.distance_quantile:g}th "
        f"percentile), views agreeing below {policy.agreement_threshold:.2f} (fixed rule).",
        "",
        "| set | n | accuracy | mean confidence | ECE | wrong answers above 0.99 |",
        "|---|---|---|---|---|---|",
        *(f"| {s['set']} | {s['n']} | {s['accuracy']:.3f} | {s['mean_confidence']:.3f} | {s['ece']:.3f} | "
          f"{s['wrong_above_099']} |" for s in summaries),  # fmt: skip
        "",
    ]
    for name, rows in flags.items():
        lines += [f"**{name}** (aim: wrong flagged >= 60%, right flagged <= 10%)", "",
                  "| flag | wrong answers flagged | right answers flagged |", "|---|---|---|",
                  *(f"| {r['flag']} | {100 * r['wrong_flagged']:.0f}% of {r['n_wrong']} | "
                    f"{100 * r['right_flagged']:.0f}% of {r['n_right']} |" for r in rows),
                  "", f"Reasons on wrong answers: {reasons[name]}", "",
                  "Other view-agreement thresholds (with the stored confidence and distance thresholds):", "",
                  "| flag when agreement below | wrong flagged | right flagged |", "|---|---|---|",
                  *(f"| {r['agreement']:.2f} | {100 * r['wrong_flagged']:.0f}% | {100 * r['right_flagged']:.0f}% |"
                    for r in sweeps[name]), ""]  # fmt: skip
    publish("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
