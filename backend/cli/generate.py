"""``python -m backend generate``: write a synthetic dataset of plot images, CSVs and a manifest.

Example: ``python -m backend generate --out data/demo --train-per-class 40 --test-per-class 20 --seed 0``.
A bad option, or an ``--out`` folder generate did not write, prints one line to stderr and exits with
status 2. SIGTERM or Ctrl-C stops it, removes the half-built copy and leaves ``--out`` as it was.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from tqdm import tqdm

from backend.data.generate import generate_dataset
from backend.data.render import STYLES
from backend.data.series import CLASSES, FIVE_CLASS_PRESET, SUBKINDS

PRESETS = {"five": FIVE_CLASS_PRESET}


def _size(text: str) -> tuple[int, int]:
    """``WxH`` in pixels, e.g. ``224x224``."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        raise argparse.ArgumentTypeError(f"size must look like 224x224 (width x height in pixels); got {text!r}")
    return int(width), int(height)


def _subkind_spec(text: str) -> dict[str, list[str]]:
    """``class=a+b,class=c`` -> ``{class: [a, b], ...}``; the names are checked against ``SUBKINDS`` later."""
    spec: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, kinds = (s.strip() for s in part.partition("="))
        chosen = [k.strip() for k in kinds.split("+") if k.strip()]
        if not sep or not name or not chosen:
            raise argparse.ArgumentTypeError(
                f"sub-kinds must look like mean_shift=step_up+step_down,point_anomaly=several; got {part!r}")
        if name in spec:
            raise argparse.ArgumentTypeError(f"class {name} is named twice; join its sub-kinds with +")
        spec[name] = chosen
    if not spec:
        raise argparse.ArgumentTypeError("no sub-kinds given; e.g. mean_shift=step_up+step_down")
    return spec


def subkinds_without(excluded: dict[str, list[str]]) -> dict[str, list[str]]:
    """The sub-kinds left to each named class once ``excluded`` are taken away (held-out sub-kind sets).

    ValueError for an unknown class or sub-kind, or an exclusion that leaves a class nothing to draw.
    """
    kept = {}
    for name, kinds in excluded.items():
        if name not in SUBKINDS:
            raise ValueError(f"unknown class {name!r} in --exclude-subkinds; choose from: {', '.join(CLASSES)}")
        unknown = sorted(set(kinds) - set(SUBKINDS[name]))
        if unknown:
            raise ValueError(f"unknown sub-kind(s) {', '.join(unknown)} for {name}; "
                             f"choose from: {', '.join(SUBKINDS[name])}")
        kept[name] = [s for s in SUBKINDS[name] if s not in kinds]
        if not kept[name]:
            raise ValueError(f"--exclude-subkinds leaves {name} no sub-kind to draw; keep at least one of: "
                             f"{', '.join(SUBKINDS[name])}")
    return kept


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to write (new, empty, or a generated dataset to replace)")
    parser.add_argument("--train-per-class", type=int, required=True, help="training images per class")
    parser.add_argument("--test-per-class", type=int, required=True, help="test images per class")
    parser.add_argument("--val-per-class", type=int, default=0,
                        help="validation images per class, written to val/ (default 0: training holds out "
                             "a share of train instead)")
    parser.add_argument("--seed", type=int, required=True, help="same seed, same bytes")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--classes", help=f"comma-separated classes (default: all nine): {','.join(CLASSES)}")
    chosen.add_argument("--preset", choices=sorted(PRESETS),
                        help=f"a class subset; five = {','.join(FIVE_CLASS_PRESET)}")
    parser.add_argument("--imbalance", default="balanced",
                        help="balanced | longtail:RATIO | counts:class=N,class=N (default: balanced)")
    parser.add_argument("--length", type=int, help="samples per series (default: random, 100-5000)")
    parser.add_argument("--difficulty", type=float, default=1.0,
                        help="anomaly magnitude against noise: 1 is the default, higher is harder")
    parser.add_argument("--style", default="team", choices=STYLES.names(),
                        help="team: 8x6 in at 100 DPI like the team's plots; varied: a random plotting style per image; mixed: half and half (best for training)")
    restrict = parser.add_mutually_exclusive_group()
    restrict.add_argument("--subkinds", type=_subkind_spec, metavar="CLASS=A+B,...",
                          help="draw the named classes only from these sub-kinds, e.g. mean_shift=step_up+ramp_up")
    restrict.add_argument("--exclude-subkinds", type=_subkind_spec, metavar="CLASS=A+B,...",
                          help="leave these sub-kinds out of the named classes (held-out sub-kind experiments)")
    parser.add_argument("--size", type=_size, help="render at WxH pixels instead of the style's size, e.g. 224x224")
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")


def _classes(args: argparse.Namespace) -> list[str] | None:
    if args.preset:
        return list(PRESETS[args.preset])
    if args.classes:
        return [c.strip() for c in args.classes.split(",") if c.strip()]
    return None


def _exit_on_sigterm(signum: int, frame) -> None:
    """SIGTERM unwinds like Ctrl-C, so the half-built dataset is removed on the way out."""
    raise SystemExit(128 + signum)


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with tqdm(unit="plot", desc="generating", disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            subkinds = subkinds_without(args.exclude_subkinds) if args.exclude_subkinds else args.subkinds
            manifest = generate_dataset(
                args.out, train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                val_per_class=args.val_per_class, seed=args.seed, classes=_classes(args), imbalance=args.imbalance, length=args.length,
                difficulty=args.difficulty, style=args.style, size=args.size, subkinds=subkinds, workers=args.workers,
                progress=progress)
        except (ValueError, OSError) as e:
            bar.close()
            print(f"error: {e}", file=sys.stderr)
            return 2
    counts = {split: sum(per_class.values()) for split, per_class in manifest["counts"].items()}
    val = f", {counts['val']} val" if "val" in counts else ""
    print(f"wrote {counts['train']} train{val} and {counts['test']} test plots of {len(manifest['classes'])} classes "
          f"to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0
