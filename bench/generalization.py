"""Generalization: train on one configuration and evaluate on what that training never saw.

Each *cell* pairs a training set with a test set drawn from other seeds (no series is shared):

- ``own``: the training set's own test split (same generator options; this split also picks the
  best epoch, as in every run);
- ``subkinds``: trained with the last sub-kind of every class (``SUBKINDS[class][-1]``) left out,
  tested on only those left-out sub-kinds;
- ``team_to_varied`` / ``varied_to_team``: trained on one plot style only, tested on the other;
- ``varied``: the main training (``--train-style``) on varied-style plots (the same as
  ``team_to_varied`` when the main training is team style, so then it is not repeated);
- ``harder``: the main training on series at ``--harder`` difficulty (events smaller against noise);
- ``independent``: the main training on CSVs from ``bench/independent_series.py`` (a clean-room
  generator the team did not write), sent through ``Predictor.predict_files`` like an upload; labels
  from the folder names. The honest figure: nothing here is tuned to it.

Trainings go through ``train_run`` (the entry point of ``python -m backend train``) into a scratch run
store; every evaluation goes through ``backend.predict`` with the checkpoint's own class list.
Datasets are generated once per option set under ``--workdir``, and each training's best checkpoint
is kept there under ``models/`` keyed by its resolved config, so a later run with the same options
scores it again without retraining (delete ``models/`` after changing the training code).
Method, results and reading: ``docs/GENERALIZATION.md``.

    python bench/generalization.py                          # visual_cnn defaults, team style: ~4 min of training here
    python bench/generalization.py --label recipe --train-style mixed --augmentation plot \
        --option label_smoothing=0.1                        # the recipe of docs/GENERALIZATION.md
    python bench/generalization.py --model resnet50 --image-size 224 --epochs 30 \
        --train-per-class 200 --test-per-class 110 --train-style mixed --augmentation plot   # on a GPU
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend import store  # noqa: E402
from backend.config import data_dir  # noqa: E402
from backend.data import render as render_module  # noqa: E402
from backend.data import series as series_module  # noqa: E402
from backend.data.generate import generate_dataset  # noqa: E402
from backend.data.series import CLASSES, SUBKINDS  # noqa: E402
from backend.predict import Predictor, evaluate_folder  # noqa: E402
from backend.runs.lifecycle import build_config, train_run  # noqa: E402
from backend.training.metrics import classification_metrics, confusion, per_class_metrics  # noqa: E402
from bench.independent_series import write_dataset  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_generalization.md"
CELLS = ("own", "subkinds", "team_to_varied", "varied_to_team", "varied", "varied_csv", "harder", "independent")
HELD_OUT = {name: SUBKINDS[name][-1:] for name in CLASSES}  # deterministic: the last sub-kind of each class
KEPT = {name: SUBKINDS[name][:-1] for name in CLASSES}
GENERATOR_SOURCE = "".join(Path(module.__file__).read_text() for module in (series_module, render_module))


@dataclass(frozen=True)
class DataSpec:
    """Options of one generated dataset; ``mixed`` style = half team, half varied plots per class."""

    style: str
    seed: int
    train: int
    test: int
    difficulty: float = 1.0
    subkinds: str = "all"  # all | kept (last sub-kind left out) | held_out (only the last sub-kind)

    def describe(self) -> str:
        parts = [f"{self.style} style"]
        if self.subkinds != "all":
            parts.append("without the last sub-kinds" if self.subkinds == "kept" else "only the left-out sub-kinds")
        if self.difficulty != 1.0:
            parts.append(f"difficulty {self.difficulty:g}")
        return ", ".join(parts)

    def folder(self, workdir: Path) -> Path:
        """Keyed by the options and by the generator's and renderer's source, so a changed generator
        never reuses plots drawn by the old one."""
        payload = json.dumps(asdict(self), sort_keys=True) + GENERATOR_SOURCE
        key = hashlib.sha1(payload.encode()).hexdigest()[:10]
        return workdir / f"{self.style}-{self.subkinds}-d{self.difficulty:g}-s{self.seed}-{key}"


@dataclass
class CellResult:
    """One model scored on one test set."""

    cell: str
    trained_on: str
    tested_on: str
    n: int
    macro_f1: float
    accuracy: float
    own_f1: float  # the same model on its own test split
    train_acc: float  # training accuracy at the best epoch (augmented, as the run reports it)
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    class_names: list[str]
    errors: int = 0  # inputs that could not be read (CSV path)
    top_confusions: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class Trained:
    """A finished training: its checkpoint loaded for prediction, and the run's own figures."""

    predictor: Predictor
    spec: DataSpec
    config: dict  # the resolved TrainConfig
    train_acc: float  # at the best epoch
    own_f1: float  # best val macro-F1 on its own test split
    seconds: float
    device: str


# --- data ----------------------------------------------------------------------------------------


def build_dataset(spec: DataSpec, workdir: Path, workers: int | None) -> Path:
    """Make ``spec``'s folder once (reused when it exists) and return it.

    A ``kept`` set is the ``all`` set of the same options less the samples of the left-out sub-kinds
    (per the manifest), so the two trainings see the same series otherwise; a ``mixed`` set is the
    first half of each class of the team set and of the varied set of the same options. Both are made
    of hard links, not drawn again.
    """
    folder = spec.folder(workdir)
    if (folder / "spec.json").is_file():
        return folder
    started = time.perf_counter()
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if spec.style == "mixed":
        for style, seed in (("team", spec.seed), ("varied", spec.seed + 1)):
            half = build_dataset(replace(spec, style=style, seed=seed), workdir, workers)
            _link(half, staging, _first_half(half, larger=style == "team"), prefix=f"{style}-")
    elif spec.subkinds == "kept":
        full = build_dataset(replace(spec, subkinds="all"), workdir, workers)
        samples = json.loads((full / "manifest.json").read_text())["samples"]
        kept = [s for s in samples if s["subkind"] not in HELD_OUT[s["class"]]]
        empty = sorted({(s["split"], s["class"]) for s in samples} - {(s["split"], s["class"]) for s in kept})
        if empty:
            raise SystemExit(f"leaving the last sub-kinds out empties {', '.join('/'.join(e) for e in empty)} of "
                             f"{full.name}; raise --train-per-class / --test-per-class")  # fmt: skip
        _link(full, staging, [s["png"] for s in kept])
    else:
        generate_dataset(staging, train_per_class=spec.train, test_per_class=spec.test, seed=spec.seed,
                         difficulty=spec.difficulty, style=spec.style, workers=workers,
                         subkinds=HELD_OUT if spec.subkinds == "held_out" else None)  # fmt: skip
    (staging / "spec.json").write_text(json.dumps(asdict(spec), sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    print(f"  data: {spec.describe()} in {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def _first_half(root: Path, larger: bool) -> list[str]:
    """The first half of the plots of each split and class under ``root`` (relative paths); ``larger``
    takes the larger half of an odd count, so two complementary halves add up to the whole count."""
    chosen = []
    for split in ("train", "test"):
        for folder in sorted((root / split).iterdir()):
            files = sorted(folder.glob("*.png"))
            chosen += [str(p.relative_to(root)) for p in files[: (len(files) + larger) // 2]]
    return chosen


def _link(source: Path, target: Path, relative: Sequence[str], prefix: str = "") -> None:
    """Hard-link (else copy) ``source/<split>/<class>/<name>`` to ``target/<split>/<class>/<prefix><name>``."""
    for name in relative:
        path = Path(name)
        destination = target / path.parent / f"{prefix}{path.name}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / path, destination)
        except OSError:
            shutil.copyfile(source / path, destination)


def independent_csvs(workdir: Path, per_class: int, seed: int) -> Path:
    folder = workdir / f"independent-{per_class}-s{seed}"
    if not (folder / "done").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        write_dataset(folder, per_class, seed)
        (folder / "done").touch()
    return folder


# --- training and scoring ------------------------------------------------------------------------


def train(spec: DataSpec, folder: Path, args: argparse.Namespace, options: dict) -> Trained:
    """Train on ``folder``, or load the same training (same data and resolved options) kept from a
    previous run of this bench under ``workdir/models``."""
    config = build_config({"data": str(folder), "model": args.model, "image_size": args.image_size,
                           "epochs": args.epochs, "seed": args.seed, "name": f"generalization: {spec.describe()}",
                           **({"augmentation": args.augmentation} if args.augmentation else {}), **options})  # fmt: skip
    key = hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    checkpoint, facts_file = args.workdir / "models" / f"{key}.pt", args.workdir / "models" / f"{key}.json"
    if not (checkpoint.is_file() and facts_file.is_file()):
        started = time.perf_counter()
        result = train_run(config)
        run = store.get_run(result.run_id)
        if result.status != "completed":
            raise SystemExit(f"training on {spec.describe()} ended {result.status}: {run.error}")
        facts = {"train_acc": run.train_acc_at_best, "own_f1": run.best_val_f1, "device": run.device,
                 "seconds": time.perf_counter() - started, "best_epoch": run.best_epoch}  # fmt: skip
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.checkpoint_path, checkpoint)
        facts_file.write_text(json.dumps(facts))
    facts = json.loads(facts_file.read_text())
    print(f"  trained on {spec.describe()}: own-test macro-F1 {facts['own_f1']:.3f} (epoch {facts['best_epoch']}) "
          f"in {facts['seconds']:.0f} s", flush=True)  # fmt: skip
    return Trained(Predictor.from_checkpoint(checkpoint), spec, config.to_dict(), facts["train_acc"], facts["own_f1"],
                   facts["seconds"], facts["device"])  # fmt: skip


def score(cell: str, model: Trained, tested_on: str, y_true: Sequence[str], y_pred: Sequence[str],
          errors: int = 0) -> CellResult:  # fmt: skip
    """A CellResult from class names; labels are indices into the checkpoint's class list."""
    names = model.predictor.class_names
    true = [names.index(c) for c in y_true]
    pred = [names.index(c) for c in y_pred]
    scores = classification_metrics(true, pred, len(names))
    matrix = confusion(true, pred, len(names))
    return CellResult(
        cell=cell, trained_on=model.spec.describe(), tested_on=tested_on, n=len(true), macro_f1=scores["f1"],
        accuracy=scores["acc"], own_f1=model.own_f1, train_acc=model.train_acc,
        per_class_f1={row["class_name"]: row["f1"] for row in per_class_metrics(true, pred, names)},
        confusion=matrix, class_names=list(names), errors=errors, top_confusions=top_confusions(matrix, names),
    )  # fmt: skip


def score_images(cell: str, model: Trained, folder: Path, tested_on: str) -> CellResult:
    """Score a plot folder through ``evaluate_folder`` (its test split)."""
    result = evaluate_folder(model.predictor, folder)
    table = result.predictions
    return score(cell, model, tested_on, table["true"].tolist(), table["predicted"].tolist(), len(result.skipped))


def score_csvs(cell: str, model: Trained, folder: Path, tested_on: str) -> CellResult:
    """Score ``folder/<class>/*.csv`` through ``Predictor.predict_files`` (the upload path)."""
    files = sorted(folder.glob("*/*.csv"))
    predictions = model.predictor.predict_files([(str(p), p) for p in files])
    scored = [(Path(p.filename).parent.name, p.predicted) for p in predictions if p.error is None]
    y_true, y_pred = zip(*scored, strict=True)
    return score(cell, model, tested_on, y_true, y_pred, errors=len(files) - len(scored))


def top_confusions(matrix: list[list[int]], names: Sequence[str], k: int = 3) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells: (true class, predicted class, count)."""
    pairs = [(names[i], names[j], n) for i, row in enumerate(matrix) for j, n in enumerate(row) if i != j and n]
    return sorted(pairs, key=lambda pair: -pair[2])[:k]


# --- the plan ------------------------------------------------------------------------------------


def run_cells(args: argparse.Namespace, options: dict) -> tuple[list[CellResult], dict[str, Trained]]:
    """Train what the chosen cells need (each training set once) and score every cell."""
    s, n, m, style = args.seed, args.train_per_class, args.test_per_class, args.train_style
    # Training seeds: team s, varied s + 1 (mixed = halves of both). Test seeds s + 10, 20, ... (a mixed
    # test set also uses seed + 1): never a training seed, so no series is shared with a training set.
    own_seed = s + 1 if style == "varied" else s
    trainings = {
        "main": DataSpec(style, own_seed, n, m),
        "kept": DataSpec(style, own_seed, n, m, subkinds="kept"),
        "team": DataSpec("team", s, n, m),
        "varied": DataSpec("varied", s + 1, n, m),
    }
    tests = {
        "held_out": DataSpec(style, s + 10, 1, m, subkinds="held_out"),
        "varied": DataSpec("varied", s + 20, 1, m),
        "team": DataSpec("team", s + 30, 1, m),
        "harder": DataSpec(style, s + 40, 1, m, difficulty=args.harder),
    }
    plan = {  # cell -> (training, test set)
        "own": ("main", None),
        "subkinds": ("kept", "held_out"),
        "team_to_varied": ("team", "varied"),
        "varied_to_team": ("varied", "team"),
        "varied": ("main", "varied"),
        "varied_csv": ("main", "varied_csv"),  # the varied cell's series, as CSV uploads
        "harder": ("main", "harder"),
        "independent": ("main", "independent"),
    }
    repeated = style == "team" and "team_to_varied" in args.cells  # then "varied" is that same cell
    cells = [c for c in args.cells if not (c == "varied" and repeated)]
    workers = args.workers
    trained: dict[str, Trained] = {}
    results = []
    for cell in cells:
        key, test = plan[cell]
        if key in {"team", "varied"} and trainings[key] == trainings["main"]:
            key = "main"  # train once: the main training already is this style
        if key not in trained:
            spec = trainings[key]
            trained[key] = train(spec, build_dataset(spec, args.workdir, workers), args, options)
        model = trained[key]
        if test is None:
            result = score_images(cell, model, model.spec.folder(args.workdir), "its own test split")
        elif test == "independent":
            folder = independent_csvs(args.workdir, args.independent_per_class, s + 50)
            result = score_csvs(cell, model, folder, "independent generator's CSVs, CSV prediction path")
        elif test == "varied_csv":
            folder = build_dataset(tests["varied"], args.workdir, workers) / "csv" / "test"
            result = score_csvs(cell, model, folder, "the varied cell's series as CSVs, CSV prediction path")
        else:
            spec = tests[test]
            result = score_images(cell, model, build_dataset(spec, args.workdir, workers), spec.describe())
        print(f"  {cell}: macro-F1 {result.macro_f1:.3f} on {result.n} ({result.tested_on})", flush=True)
        results.append(result)
    return results, trained


# --- report --------------------------------------------------------------------------------------


RECIPE_FIELDS = ("model", "image_size", "epochs", "batch_size", "augmentation", "optimizer", "lr", "weight_decay",
                 "scheduler", "label_smoothing", "mixup_alpha", "cutmix_alpha", "ema_decay", "precision")


def report(args: argparse.Namespace, results: list[CellResult], trained: dict[str, Trained]) -> str:
    """The markdown section: recipe, cells table, per-class F1, most confused pairs."""
    config = next(iter(trained.values())).config
    recipe = ", ".join(f"{name}={config[name]}" for name in RECIPE_FIELDS)
    seconds = sum(t.seconds for t in trained.values())
    lines = [
        f"## {args.label}",
        "",
        f"- recipe (resolved TrainConfig): {recipe}; main training style: {args.train_style}",
        f"- data: {args.train_per_class} train + {args.test_per_class} test plots per class per training; "
        f"held-out test sets {args.test_per_class}/class; independent CSVs {args.independent_per_class}/class; "
        f"seed {args.seed}; harder = difficulty {args.harder:g}",
        f"- {len(trained)} trainings, {seconds / 60:.1f} min of training on {next(iter(trained.values())).device}",
        "",
        "| cell | trained on | tested on | n | macro-F1 | accuracy | own-test F1 | drop from own | train-test gap |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.cell} | {r.trained_on} | {r.tested_on} | {r.n}{f' ({r.errors} unreadable)' if r.errors else ''} | "
            f"**{r.macro_f1:.3f}** | {r.accuracy:.3f} | {r.own_f1:.3f} | {100 * (r.own_f1 - r.macro_f1):+.1f} | "
            f"{100 * (r.train_acc - r.accuracy):+.1f} |"
        )
    names = results[0].class_names
    lines += ["", "Per-class F1:", "", "| class | " + " | ".join(r.cell for r in results) + " |",
              "| --- |" + " --- |" * len(results)]  # fmt: skip
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{r.per_class_f1[name]:.2f}" for r in results) + " |")
    lines += ["", "Most confused (true -> predicted: count):", ""]
    for r in results:
        pairs = "; ".join(f"{t} -> {p}: {c}" for t, p, c in r.top_confusions) or "none"
        lines.append(f"- {r.cell}: {pairs}")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, label: str) -> None:
    """Replace the section headed ``## label`` in ``path`` (or append it), keeping the others."""
    header = (
        "# Generalization benchmark\n\nWritten by `bench/generalization.py`; method and reading in "
        "`docs/GENERALIZATION.md`. Drop from own = own-test macro-F1 minus the cell's, in points; train-test gap "
        "= training accuracy at the best epoch minus the cell's accuracy, in points.\n"
    )
    text = path.read_text() if path.is_file() else header
    head, *sections = text.split("\n## ")
    kept = [f"## {s}" for s in sections if s.split("\n", 1)[0].strip() != label]
    path.write_text("\n".join([head.rstrip("\n") + "\n", *[s.rstrip("\n") + "\n" for s in kept], section]))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="visual_cnn", help="visual_cnn on a CPU; resnet50 on a GPU")
    parser.add_argument("--image-size", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--augmentation", help="augmentation preset: none, light, medium, heavy, plot "
                        "(default: the model's default)")  # fmt: skip
    parser.add_argument("--train-style", default="team", choices=("team", "varied", "mixed"),
                        help="style of the main training set (mixed: half team, half varied per class)")  # fmt: skip
    parser.add_argument("--train-per-class", type=int, default=120)
    parser.add_argument("--test-per-class", type=int, default=40)
    parser.add_argument("--independent-per-class", type=int, default=40)
    parser.add_argument("--harder", type=float, default=1.75, help="difficulty of the harder test set")
    parser.add_argument("--cells", type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
                        default=list(CELLS), help=f"comma-separated subset of: {', '.join(CELLS)}")  # fmt: skip
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TrainConfig option, e.g. --option label_smoothing=0.1 (repeatable)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="generator and training seed")
    parser.add_argument("--workdir", type=Path, default=None, help="generated datasets, reused between runs "
                        "(default: DATA_DIR/generalization)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None, help="generation processes (default: all cores)")
    parser.add_argument("--label", default=None, help="section title in the output file (default: model and style)")
    parser.add_argument("--out", type=Path, default=OUT, help="markdown file whose section for --label is replaced")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cells) - set(CELLS))
    if unknown or not args.cells:
        parser.error(f"unknown cell(s) {', '.join(unknown) or '(none)'}; choose from: {', '.join(CELLS)}")
    bad = [o for o in args.option if "=" not in o]
    if bad:
        parser.error(f"--option takes KEY=VALUE, got {', '.join(bad)}")
    args.workdir = args.workdir or data_dir() / "generalization"
    args.label = args.label or f"{args.model} {args.image_size} px, {args.train_style} style"
    return args


def use_scratch_store() -> None:
    """Runs go to a scratch store and artifacts folder: the bench leaves no runs behind (paths are read
    from the environment when used, so this works after import)."""
    scratch = Path(tempfile.mkdtemp(prefix="awb-bench-generalization-"))
    os.environ["RUNS_DB_URL"] = f"sqlite:///{scratch / 'runs.db'}"
    os.environ.setdefault("ARTIFACTS_DIR", str(scratch / "artifacts"))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    use_scratch_store()
    options = dict(option.split("=", 1) for option in args.option)
    results, trained = run_cells(args, options)
    section = report(args, results, trained)
    print("\n" + section)
    write_section(args.out, section, args.label)
    (args.workdir / f"results-{hashlib.sha1(args.label.encode()).hexdigest()[:8]}.json").write_text(
        json.dumps({"label": args.label, "cells": [asdict(r) for r in results]}, indent=1)
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
