"""``python -m backend export``: a run's model as ONNX or TorchScript, with a sidecar JSON.

Writes FILE and FILE.json (class names, image size, normalisation, preprocessing, temperature,
versions and the parity check against PyTorch on the run's test images). Prints the sidecar with
``--json``, otherwise one line. A failed parity check leaves nothing behind and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.cli.predict import USER_ERRORS
from backend.data.plotarea import size_text
from backend.export import EXPORT_FORMATS, ExportError, export_run, sidecar_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=int, required=True, metavar="N", help="export run N's best checkpoint")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS.names(), help="file format")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="model file to write (FILE.json beside it)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="dataset whose test images the parity check uses (default: the run's own)",
    )
    parser.add_argument("--json", action="store_true", help="print the sidecar JSON")


def main(args: argparse.Namespace) -> int:
    try:
        sidecar = export_run(args.run, args.format, args.out, dataset=args.data)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(sidecar, indent=1))
    else:
        check = sidecar["parity"]
        print(
            f"wrote {args.out} and {sidecar_path(args.out)}: {sidecar['model_name']}, "
            f"{len(sidecar['class_names'])} classes, {size_text(*sidecar['input']['shape'][2:])}; parity on {check['images']} "
            f"test images: max logit difference {check['max_abs_logit_diff']:.2e}, same top-1 on every image"
        )
    return 0
