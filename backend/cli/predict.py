"""``python -m backend predict``: classify images and CSV series with a trained run.

One line (or, with ``--json``, one JSON object) per file, in the order given, each printed as soon as
that file is known (files are decoded in worker processes, ``--file-timeout`` seconds each). A file
that fails prints its error in its place and the others still run; the exit status is non-zero only when every
file failed. ``add_predictor_arguments`` and ``load_predictor`` are shared with ``evaluate``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.data.inputs import FILE_TIME_BUDGET_S
from backend.data.render import STYLE_TTA_COUNT
from backend.data.transforms import TTA_MODES
from backend.device import PRECISIONS
from backend.predict import Prediction
from backend.store import StoreError

# What a command reports as one line on stderr instead of a traceback: bad runs, checkpoints,
# datasets and options are ValueErrors (PredictError, DatasetError, ...); unreadable paths OSErrors.
USER_ERRORS = (ValueError, OSError, StoreError)


def add_predictor_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose and run a checkpoint: ``--run | --checkpoint``, TTA, device, output."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=int, metavar="N", help="use run N's best checkpoint")
    source.add_argument("--checkpoint", type=Path, metavar="PATH", help="use this checkpoint file")
    parser.add_argument("--tta", default="none", choices=TTA_MODES.names(), help="test-time augmentation mode")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="auto: bf16 autocast where supported, kept only if it gives fp32's answers",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32, help="files per forward pass")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def load_predictor(args: argparse.Namespace):
    """The run's or checkpoint's predictor (an image ``Predictor`` or a ``SeriesPredictor``, by the
    checkpoint's input kind); with ``--ensemble-run`` the image + series ensemble."""
    from backend.predict_series import open_checkpoint, open_ensemble, open_run

    ensemble = getattr(args, "ensemble_run", None)
    if ensemble is not None:
        if args.run is None:
            raise ValueError("--ensemble-run needs --run (an ensemble is made of two runs)")
        return open_ensemble(args.run, ensemble, device=args.device, precision=args.precision)
    if args.run is not None:
        return open_run(args.run, device=args.device, precision=args.precision)
    return open_checkpoint(args.checkpoint, device=args.device, precision=args.precision)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_predictor_arguments(parser)
    parser.add_argument("--column", help="CSV column to use (default: the first numeric one)")
    parser.add_argument(
        "--ensemble-run", type=int, metavar="M",
        help="with --run N: answer CSVs with the mean of the calibrated probabilities of runs N and M "
             "(one image run, one series run, either order); images are refused",
    )  # fmt: skip
    parser.add_argument(
        "--style-views", type=int, default=STYLE_TTA_COUNT, metavar="N",
        help="also draw each CSV in N other plotting styles; their votes count in tta_agreement (0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--file-timeout", type=float, default=FILE_TIME_BUDGET_S, metavar="SECONDS",
        help="seconds allowed to read and decode one file; a file over it is an error, the others go on",
    )  # fmt: skip
    parser.add_argument("files", nargs="+", type=Path, help="images (.png .jpg .jpeg .bmp .webp) or CSV series")


def format_prediction(prediction: Prediction) -> str:
    """``file: class (confidence)  top-3: a 0.91, b 0.05, c 0.02  UNCERTAIN: why  [notes]``, or ``file: error: why``."""
    if prediction.error:
        return f"{prediction.filename}: error: {prediction.error}"
    top = ", ".join(f"{name} {p:.3f}" for name, p in prediction.top(3))
    notes = f"  [{'; '.join(prediction.notes)}]" if prediction.notes else ""
    flag = f"  UNCERTAIN: {prediction.uncertain_reason}" if prediction.uncertain else ""
    return f"{prediction.filename}: {prediction.predicted} ({prediction.confidence:.3f})  top-3: {top}{flag}{notes}"


def main(args: argparse.Namespace) -> int:
    files = [(str(path), path) for path in args.files]
    failed = 0
    if args.style_views < 0:
        print(f"error: --style-views must be 0 or more, got {args.style_views}", file=sys.stderr)
        return 2
    try:
        predictor = load_predictor(args)
        predictions = predictor.iter_files(
            files, args.tta, batch_size=args.batch_size, column=args.column, time_budget=args.file_timeout,
            style_views=args.style_views,
        )  # fmt: skip
        for prediction in predictions:
            print(json.dumps(prediction.to_dict()) if args.json else format_prediction(prediction), flush=True)
            failed += prediction.error is not None
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if failed == len(files) else 0
