"""``python -m backend evaluate``: score a trained run on a labelled folder it may never have seen.

Prints accuracy, macro precision/recall/F1, a per-class table and the confusion matrix (or, with
``--json``, one JSON object), and stores the evaluation with the run so the dashboard shows it
beside the run's own test metrics. A bare ``--checkpoint`` has no run to store it with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from backend.cli.predict import USER_ERRORS, add_predictor_arguments, load_predictor
from backend.predict import EvaluationResult, evaluate_folder, store_evaluation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_predictor_arguments(parser)
    parser.add_argument(
        "--data", type=Path, required=True,
        help="labelled folder: <dir>/{train,test}/<class>/* (its test split is used) or <dir>/<class>/* (all of it)",
    )  # fmt: skip
    parser.add_argument("--no-store", action="store_true", help="print only; do not store the evaluation with the run")


def format_report(result: EvaluationResult) -> str:
    """The evaluation as text: headline metrics, per-class table, confusion matrix, skipped files."""
    per_class = pd.DataFrame(result.per_class).set_index("class_name")
    # Columns numbered like the rows: nine class names across would not fit a terminal.
    labels = [f"{i} {name}" for i, name in enumerate(result.class_names)]
    matrix = pd.DataFrame(result.confusion, index=labels, columns=range(len(labels)))
    lines = [
        f"{result.dataset} ({result.split} split): {result.n_samples} images, TTA {result.tta}",
        f"accuracy {result.accuracy:.4f}   macro precision {result.macro_precision:.4f}   "
        f"macro recall {result.macro_recall:.4f}   macro F1 {result.macro_f1:.4f}",
        "",
        per_class.to_string(float_format="{:.4f}".format),
        "",
        "confusion matrix (rows: true class, columns: predicted class by number)",
        matrix.to_string(),
    ]
    if result.skipped:
        lines += ["", f"skipped {len(result.skipped)} unreadable image(s):"]
        lines += [f"  {name}: {why}" for name, why in result.skipped]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        predictor = load_predictor(args)
        if getattr(predictor, "input_kind", "image") == "series":
            raise ValueError(f"{predictor.model_name} is a series model and evaluate scores a folder of images; "
                             "its test figures are stored with its run (compare it with image runs on Compare)")  # fmt: skip
        result = evaluate_folder(predictor, args.data, args.tta, batch_size=args.batch_size)
        stored = predictor.run_id is not None and not args.no_store
        evaluation_id = store_evaluation(result, predictor.run_id) if stored else None
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"run_id": predictor.run_id, "evaluation_id": evaluation_id, **result.to_dict()}))
        return 0
    print(f"{predictor.describe()}\n{format_report(result)}\n")
    if evaluation_id is not None:
        print(f"stored as evaluation {evaluation_id} of run {predictor.run_id}")
    elif predictor.run_id is None:
        print("not stored: a bare checkpoint has no run (use --run N to keep the result)")
    else:
        print("not stored (--no-store)")
    return 0
