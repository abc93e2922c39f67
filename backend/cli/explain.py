"""``python -m backend explain``: Grad-CAM overlays for images and CSV series, or the per-class
"inside the anomaly" table of a generated dataset.

``explain --run N FILES... --out DIR`` writes ``DIR/<file name>.gradcam.png`` per input (the map of
the predicted class over the plot) and prints one line per file; a file that fails prints its error
and the others go on (exit 1 only if every file failed). ``explain --run N --attention DATA`` prints,
per class, the share of Grad-CAM mass inside the anomaly's columns beside a uniform map's share.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.cli.predict import USER_ERRORS
from backend.data.render import encode_png
from backend.explain import attention_report, explain_files
from backend.predict import Predictor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=int, required=True, metavar="N", help="explain run N's best checkpoint")
    parser.add_argument("files", nargs="*", type=Path, help="images or CSV series to explain")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder for the overlay PNGs (with FILES)")
    parser.add_argument("--column", help="CSV column to use (default: the first numeric one)")
    parser.add_argument(
        "--attention",
        type=Path,
        metavar="DATA",
        help="generated dataset: per-class share of Grad-CAM inside the anomaly",
    )
    parser.add_argument("--split", default="test", help="split of DATA to measure (default: test)")
    parser.add_argument("--per-class", type=int, metavar="K", help="measure at most K samples per class")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _check(args: argparse.Namespace) -> str | None:
    if args.attention is None and not args.files:
        return "give FILES with --out DIR, or --attention DATA"
    if args.files and args.out is None:
        return "give --out DIR: the folder the overlay PNGs go to"
    if args.per_class is not None and args.per_class < 1:
        return f"--per-class must be at least 1, got {args.per_class}"
    return None


def main(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    failed = 0
    try:
        predictor = Predictor.from_run(args.run, device=args.device, precision="fp32")
        if args.files:
            args.out.mkdir(parents=True, exist_ok=True)
            for item in explain_files(predictor, [(str(p), p) for p in args.files], column=args.column):
                written = None
                if item.error is None:
                    written = args.out / f"{Path(item.filename).name}.gradcam.png"
                    written.write_bytes(encode_png(item.overlay()))
                failed += item.error is not None
                row = {
                    "filename": item.filename,
                    "overlay": str(written) if written else None,
                    "target": item.target,
                    "error": item.error,
                }
                text = (
                    f"{item.filename}: error: {item.error}"
                    if item.error
                    else f"{item.filename}: {item.target} -> {written}"
                )
                print(json.dumps(row) if args.json else text, flush=True)
        if args.attention is not None:
            table = attention_report(predictor, args.attention, split=args.split, per_class=args.per_class)
            print(table.to_json(orient="records") if args.json else table.to_string(index=False, float_format="%.3f"))
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if args.files and failed == len(args.files) else 0
