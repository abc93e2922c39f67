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

Every model family: ``--model`` is any registered model. An image model (visual_cnn, vae_classifier,
resnet50) is scored on the plots (``evaluate_folder``) and on CSV cells through its upload path; the
series model (``series_cnn``) trains on each plot's CSV and every cell is scored through its CSVs
(the style-only cells ``team_to_varied``, ``varied_to_team``, ``varied`` and ``varied_csv`` repeat other
cells for a model that reads numbers: skipped with a note). ``--ensemble`` trains ``--model`` and
series_cnn on the same data and scores, on the CSV cells and the same items, both members and their
ensemble (the mean of the two calibrated probability vectors, as ``predict --ensemble-run``). Every
figure carries its 95% stratified bootstrap interval (``bench/scoring.py``, seed fixed).

Trainings go through ``train_run`` (the entry point of ``python -m backend train``) into a scratch run
store; every evaluation goes through ``backend.predict`` with the checkpoint's own class list.
Datasets are generated once per option set under ``--workdir``, and each training's best checkpoint
is kept there under ``models/`` keyed by its resolved config, so a later run with the same options
scores it again without retraining (delete ``models/`` after changing the training code).
Method, results and reading: ``docs/GENERALIZATION.md``.

    python bench/generalization.py                          # visual_cnn defaults, team style: ~4 min of training here
    python bench/generalization.py --label recipe --train-style mixed --augmentation plot \
        --option label_smoothing=0.1                        # the recipe of docs/GENERALIZATION.md
    python bench/generalization.py --model series_cnn --train-style mixed   # the series model, on CSVs
    python bench/generalization.py --ensemble --train-style mixed     # visual_cnn, series_cnn and their ensemble
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
from backend.evaluation.stats import format_interval  # noqa: E402
from backend.models import model_input_kind  # noqa: E402
from backend.predict import evaluate_folder  # noqa: E402
from backend.predict_series import open_checkpoint  # noqa: E402
from backend.runs.lifecycle import build_config, train_run  # noqa: E402
from bench.independent_series import write_dataset  # noqa: E402
from bench.scoring import csv_files, figures, member_probabilities, with_ensemble  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_generalization.md"
CELLS = ("own", "subkinds", "team_to_varied", "varied_to_team", "varied", "varied_csv", "harder", "independent")
HELD_OUT = {name: SUBKINDS[name][-1:] for name in CLASSES}  # deterministic: the last sub-kind of each class
KEPT = {name: SUBKINDS[name][:-1] for name in CLASSES}
SERIES_MODEL = "series_cnn"
ENSEMBLE = "ensemble"
# Cells that only change the plot style: a series model reads the numbers, so for it they repeat other
# cells (the style cells' series are drawn like any other; varied_csv's series are own's distribution).
STYLE_CELLS = ("team_to_varied", "varied_to_team", "varied", "varied_csv")
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
    size: tuple[int, int] | None = None  # plot (width, height) in pixels; None = the generator's default

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
        options = {k: v for k, v in asdict(self).items() if not (k == "size" and v is None)}  # older keys kept
        payload = json.dumps(options, sort_keys=True) + GENERATOR_SOURCE
        key = hashlib.sha1(payload.encode()).hexdigest()[:10]
        return workdir / f"{self.style}-{self.subkinds}-d{self.difficulty:g}-s{self.seed}-{key}"


@dataclass
class CellResult:
    """One model (a family, or the ensemble of two) scored on one test set, with 95% bootstrap intervals."""

    cell: str
    model: str  # the model's registry name, or "ensemble"
    trained_on: str
    tested_on: str
    n: int
    macro_f1: float
    macro_f1_ci: list[float]
    accuracy: float
    accuracy_ci: list[float]
    own_f1: float | None  # the run's best validation macro-F1, which picked its epoch (None for the ensemble)
    train_acc: float | None  # training accuracy at the best epoch (augmented, as the run reports it)
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    class_names: list[str]
    errors: int = 0  # inputs that could not be read (CSV path)
    top_confusions: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class Trained:
    """A finished training: its checkpoint loaded for prediction, and the run's own figures.

    ``predictor`` is a ``backend.predict.Predictor`` (image model: draws CSVs) or a
    ``backend.predict_series.SeriesPredictor`` (series model: reads CSVs only)."""

    predictor: object
    spec: DataSpec
    config: dict  # the resolved TrainConfig
    train_acc: float  # at the best epoch
    own_f1: float  # best validation macro-F1 (the run's own held-out part of its training set)
    seconds: float
    device: str

    @property
    def model(self) -> str:
        return self.predictor.model_name

    @property
    def reads_series(self) -> bool:
        return getattr(self.predictor, "input_kind", "image") == "series"


# --- data ----------------------------------------------------------------------------------------


def build_dataset(spec: DataSpec, workdir: Path, workers: int | None) -> Path:
    """Make ``spec``'s folder once (reused when it exists) and return it.

    A ``kept`` set is the ``all`` set of the same options less the samples of the left-out sub-kinds
    (per the manifest), so the two trainings see the same series otherwise; a ``mixed`` set is the
    first half of each class of the team set and of the varied set of the same options. Both are made
    of hard links, not drawn again.
    """
    folder = spec.folder(workdir)
    if (folder / "spec.json").is_file() and (folder / "csv").is_dir():  # (older linked sets had no CSVs)
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
                         difficulty=spec.difficulty, style=spec.style, workers=workers, size=spec.size,
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
    """Hard-link (else copy) ``source/<split>/<class>/<name>`` to ``target/<split>/<class>/<prefix><name>``,
    and the plot's series ``source/csv/<split>/<class>/<id>.csv`` beside it under ``target/csv/`` (where
    series models and the CSV cells read it: ``backend.training.series_data.csv_for_png``)."""
    for name in relative:
        path = Path(name)
        pairs = [(source / path, target / path.parent / f"{prefix}{path.name}")]
        series = Path("csv", path.parent, path.stem + ".csv")
        if (source / series).is_file():
            pairs.append((source / series, target / series.parent / f"{prefix}{series.name}"))
        for origin, destination in pairs:
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(origin, destination)
            except OSError:
                shutil.copyfile(origin, destination)


def independent_csvs(workdir: Path, per_class: int, seed: int) -> Path:
    folder = workdir / f"independent-{per_class}-s{seed}"
    if not (folder / "done").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        write_dataset(folder, per_class, seed)
        (folder / "done").touch()
    return folder


# --- training and scoring ------------------------------------------------------------------------


def train(spec: DataSpec, folder: Path, args: argparse.Namespace, options: dict, model: str | None = None) -> Trained:
    """Train ``model`` (default ``--model``) on ``folder``, or load the same training (same data and
    resolved options) kept from a previous run of this bench under ``workdir/models``.

    ``--option`` values and ``--augmentation`` go to the ``--model`` training only; the series member
    of an ensemble trains with its own defaults and ``--series-epochs``."""
    model = model or args.model
    main = model == args.model
    values = {"data": str(folder), "model": model, "seed": args.seed, "name": f"generalization: {spec.describe()}",
              "epochs": args.epochs if main else args.series_epochs}  # fmt: skip
    if model_input_kind(model) == "image":
        values["image_size"] = args.image_size
    if main:
        values.update(({"augmentation": args.augmentation} if args.augmentation else {}), **options)
    config = build_config(values)
    key = hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    checkpoint, facts_file = args.workdir / "models" / f"{key}.pt", args.workdir / "models" / f"{key}.json"
    if not (checkpoint.is_file() and facts_file.is_file()):
        started = time.perf_counter()
        result = train_run(config)
        run = store.get_run(result.run_id)
        if result.status != "completed":
            raise SystemExit(f"training {model} on {spec.describe()} ended {result.status}: {run.error}")
        facts = {"train_acc": run.train_acc_at_best, "own_f1": run.best_val_f1, "device": run.device,
                 "seconds": time.perf_counter() - started, "best_epoch": run.best_epoch}  # fmt: skip
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.checkpoint_path, checkpoint)
        facts_file.write_text(json.dumps(facts))
    facts = json.loads(facts_file.read_text())
    print(f"  trained {model} on {spec.describe()}: val macro-F1 {facts['own_f1']:.3f} "
          f"(epoch {facts['best_epoch']}) in {facts['seconds']:.0f} s", flush=True)  # fmt: skip
    predictor = open_checkpoint(checkpoint)
    return Trained(predictor, spec, config.to_dict(), facts["train_acc"], facts["own_f1"], facts["seconds"],
                   facts["device"])  # fmt: skip


def score(cell: str, model: Trained | None, tested_on: str, y_true: Sequence[str], y_pred: Sequence[str],
          errors: int = 0, *, seed: int = 0, name: str | None = None, trained_on: str | None = None,
          class_names: Sequence[str] | None = None) -> CellResult:  # fmt: skip
    """A CellResult from class names (``model`` None: the ensemble, named by ``name``)."""
    names = list(class_names or model.predictor.class_names)
    return score_indices(cell, model, tested_on, [names.index(c) for c in y_true], [names.index(c) for c in y_pred],
                         names, errors, seed=seed, name=name, trained_on=trained_on)  # fmt: skip


def score_indices(cell: str, model: Trained | None, tested_on: str, true: Sequence[int], pred: Sequence[int],
                  names: Sequence[str], errors: int = 0, *, seed: int = 0, name: str | None = None,
                  trained_on: str | None = None) -> CellResult:  # fmt: skip
    """A CellResult with 95% bootstrap intervals (``bench.scoring.figures``, seed fixed)."""
    f = figures(true, pred, names, seed)
    return CellResult(
        cell=cell, model=name or model.model, trained_on=trained_on or model.spec.describe(), tested_on=tested_on,
        n=f["n"], macro_f1=f["macro_f1"], macro_f1_ci=f["macro_f1_ci"], accuracy=f["accuracy"],
        accuracy_ci=f["accuracy_ci"], own_f1=model.own_f1 if model else None,
        train_acc=model.train_acc if model else None, per_class_f1=f["per_class_f1"], confusion=f["confusion"],
        class_names=list(names), errors=errors, top_confusions=f["top_confusions"],
    )  # fmt: skip


def score_images(cell: str, model: Trained, folder: Path, tested_on: str, seed: int = 0) -> CellResult:
    """Score a plot folder through ``evaluate_folder`` (its test split)."""
    result = evaluate_folder(model.predictor, folder)
    table = result.predictions
    return score(cell, model, tested_on, table["true"].tolist(), table["predicted"].tolist(), len(result.skipped),
                 seed=seed)  # fmt: skip


def score_csvs(cell: str, model: Trained, folder: Path, tested_on: str, seed: int = 0) -> CellResult:
    """Score ``folder/<class>/*.csv`` through the model's ``predict_files`` (the upload path)."""
    return score_members(cell, {model.model: model}, folder, tested_on, seed)[0]


def score_members(cell: str, members: dict[str, Trained], folder: Path, tested_on: str, seed: int = 0,
                  ensemble: bool = False) -> list[CellResult]:  # fmt: skip
    """Score ``folder/<class>/*.csv`` through every member's upload path, on the items all of them read;
    ``ensemble``: also the mean of the image and series members' calibrated probabilities."""
    names = next(iter(members.values())).predictor.class_names
    files = csv_files(folder)
    y_true, probabilities, errors = member_probabilities({m: t.predictor for m, t in members.items()}, files, names)
    if ensemble:
        image = next(m for m, t in members.items() if not t.reads_series)
        series = next(m for m, t in members.items() if t.reads_series)
        probabilities = with_ensemble(probabilities, image, series)
    trained_on = next(iter(members.values())).spec.describe()
    return [score_indices(cell, members.get(m), tested_on, y_true, p.argmax(axis=1).tolist(), names, errors,
                          seed=seed, name=m, trained_on=trained_on) for m, p in probabilities.items()]  # fmt: skip


# --- the plan ------------------------------------------------------------------------------------


def family_notes(args: argparse.Namespace) -> dict[str, str]:
    """Cells skipped for this family, each with its one-line reason."""
    if args.model != SERIES_MODEL and not args.ensemble:
        return {}
    who = "a series model" if args.model == SERIES_MODEL else "the ensemble (scored on CSVs only)"
    notes = {c: f"only the plot style changes, and {who} reads the numbers: the same series as other cells"
             for c in STYLE_CELLS[:3]}  # fmt: skip
    notes["varied_csv"] = (f"for {who} these CSVs are series of the own cell's distribution, drawn by nobody: "
                           "the own cell's figure")  # fmt: skip
    return {c: note for c, note in notes.items() if c in args.cells}


def run_cells(args: argparse.Namespace, options: dict) -> tuple[list[CellResult], dict[str, Trained], dict[str, str]]:
    """Train what the chosen cells need (each training set once per model) and score every cell.

    Returns the results (one per cell and model: with ``--ensemble`` the image model, series_cnn and
    their ensemble), the trainings (key ``"<training>/<model>"``) and the skipped cells' notes."""
    s, n, m, style = args.seed, args.train_per_class, args.test_per_class, args.train_style
    # Training seeds: team s, varied s + 1 (mixed = halves of both). Test seeds s + 10, 20, ... (a mixed
    # test set also uses seed + 1): never a training seed, so no series is shared with a training set.
    own_seed = s + 1 if style == "varied" else s
    size = args.plot_size
    trainings = {
        "main": DataSpec(style, own_seed, n, m, size=size),
        "kept": DataSpec(style, own_seed, n, m, subkinds="kept", size=size),
        "team": DataSpec("team", s, n, m, size=size),
        "varied": DataSpec("varied", s + 1, n, m, size=size),
    }
    tests = {
        "held_out": DataSpec(style, s + 10, 1, m, subkinds="held_out", size=size),
        "varied": DataSpec("varied", s + 20, 1, m, size=size),
        "team": DataSpec("team", s + 30, 1, m, size=size),
        "harder": DataSpec(style, s + 40, 1, m, difficulty=args.harder, size=size),
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
    notes = family_notes(args)
    repeated = style == "team" and "team_to_varied" in args.cells  # then "varied" is that same cell
    cells = [c for c in args.cells if not (c == "varied" and repeated) and c not in notes]
    models = [args.model, SERIES_MODEL] if args.ensemble else [args.model]
    on_csvs = args.ensemble or model_input_kind(args.model) == "series"
    workers = args.workers
    trained: dict[str, Trained] = {}
    results = []
    for cell in cells:
        key, test = plan[cell]
        if key in {"team", "varied"} and trainings[key] == trainings["main"]:
            key = "main"  # train once: the main training already is this style
        spec = trainings[key]
        members = {}
        for model in models:
            if f"{key}/{model}" not in trained:
                trained[f"{key}/{model}"] = train(
                    spec, build_dataset(spec, args.workdir, workers), args, options, model
                )
            members[model] = trained[f"{key}/{model}"]
        if test == "independent":
            folder = independent_csvs(args.workdir, args.independent_per_class, s + 50)
            tested_on = "independent generator's CSVs, CSV prediction path"
        elif test == "varied_csv":
            folder = build_dataset(tests["varied"], args.workdir, workers) / "csv" / "test"
            tested_on = "the varied cell's series as CSVs, CSV prediction path"
        else:
            data = spec if test is None else tests[test]
            folder = build_dataset(data, args.workdir, workers)
            tested_on = "its own test split" if test is None else data.describe()
            if on_csvs:
                folder, tested_on = folder / "csv" / "test", f"{tested_on}, as CSVs"
            else:
                results.append(score_images(cell, members[args.model], folder, tested_on, s))
                print(f"  {cell}: macro-F1 {results[-1].macro_f1:.3f} on {results[-1].n} ({tested_on})", flush=True)
                continue
        for result in score_members(cell, members, folder, tested_on, s, ensemble=args.ensemble):
            print(f"  {cell}, {result.model}: macro-F1 {result.macro_f1:.3f} on {result.n} ({tested_on})", flush=True)
            results.append(result)
    return results, trained, notes


# --- report --------------------------------------------------------------------------------------


RECIPE_FIELDS = ("model", "image_size", "crop", "epochs", "batch_size", "augmentation", "optimizer", "lr",
                 "weight_decay", "scheduler", "label_smoothing", "mixup_alpha", "cutmix_alpha", "ema_decay",
                 "precision", "model_kwargs")  # fmt: skip


def _figure(value: float | None, scale: float = 1.0, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{scale * value:+.1f}" if signed else f"{value:.3f}"


def report(args: argparse.Namespace, results: list[CellResult], trained: dict[str, Trained],
           notes: dict[str, str] | None = None) -> str:  # fmt: skip
    """The markdown section: resolved recipes, cells table with intervals, per-class F1, confusions."""
    recipes = {}
    for t in trained.values():
        recipes.setdefault(t.model, t.config)
    seconds = sum(t.seconds for t in trained.values())
    lines = [f"## {args.label}", ""]
    for model, config in recipes.items():
        unused = {"image_size", "crop"} if model_input_kind(model) == "series" else set()  # a series model reads CSVs
        recipe = ", ".join(f"{name}={config[name]}" for name in RECIPE_FIELDS if name in config and name not in unused)
        lines.append(f"- {model}, resolved TrainConfig: {recipe}")
    lines += [
        f"- main training style: {args.train_style}; data: {args.train_per_class} train + {args.test_per_class} "
        f"test plots per class per training; held-out test sets {args.test_per_class}/class; independent CSVs "
        f"{args.independent_per_class}/class; seed {args.seed}; harder = difficulty {args.harder:g}",
        f"- {len(trained)} trainings, {seconds / 60:.1f} min of training on {next(iter(trained.values())).device}",
    ]
    if args.ensemble:
        lines.append("- ensemble = mean of the two members' calibrated probabilities (as `predict --ensemble-run`), "
                     "every row of a cell on the same CSVs")  # fmt: skip
    lines += [f"- {cell}: skipped ({note})" for cell, note in (notes or {}).items()]
    lines += [
        "",
        "Macro-F1 with its 95% stratified bootstrap interval (1,000 resamples, seed fixed). Val F1 = the run's "
        "best validation macro-F1 (it picks the epoch); drop from own = the same model's own-cell macro-F1 minus "
        "the cell's, in points; train-test gap = training accuracy at the best epoch minus the cell's accuracy.",
        "",
        "| cell | model | trained on | tested on | n | macro-F1 [95% CI] | accuracy | val F1 (picks the epoch) "
        "| drop from own | train-test gap |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    own = {r.model: r.macro_f1 for r in results if r.cell == "own"}
    for r in results:
        drop = own[r.model] - r.macro_f1 if r.model in own else None
        gap = None if r.train_acc is None else r.train_acc - r.accuracy
        lines.append(
            f"| {r.cell} | {r.model} | {r.trained_on} | {r.tested_on} | "
            f"{r.n}{f' ({r.errors} unreadable)' if r.errors else ''} | **{format_interval(r.macro_f1, r.macro_f1_ci)}** "
            f"| {r.accuracy:.3f} | {_figure(r.own_f1)} | {_figure(drop, 100, True)} | {_figure(gap, 100, True)} |"
        )
    several = len({r.model for r in results}) > 1
    heads = [f"{r.cell} ({r.model})" if several else r.cell for r in results]
    names = results[0].class_names
    lines += ["", "Per-class F1:", "", "| class | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(results)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{r.per_class_f1[name]:.2f}" for r in results) + " |")
    lines += ["", "Most confused (true -> predicted: count):", ""]
    for head, r in zip(heads, results, strict=True):
        pairs = "; ".join(f"{t} -> {p}: {c}" for t, p, c in r.top_confusions) or "none"
        lines.append(f"- {head}: {pairs}")
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


def _plot_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--plot-size takes WIDTHxHEIGHT, e.g. 96x72, got {text!r}") from None
    return width, height


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="visual_cnn", help="any registered model: visual_cnn, vae_classifier or "
                        "series_cnn on a CPU; resnet50 on a GPU")  # fmt: skip
    parser.add_argument("--ensemble", action="store_true", help="also train series_cnn on the same data and score "
                        "--model (an image model), series_cnn and their ensemble on the CSV cells")  # fmt: skip
    parser.add_argument("--series-epochs", type=int, default=None, help="epochs of the ensemble's series_cnn "
                        "(default: --epochs)")  # fmt: skip
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
    parser.add_argument("--plot-size", type=_plot_size, default=None, metavar="WxH",
                        help="pixel size of the generated plots (default: the generator's); small for quick tests")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="generated datasets, reused between runs "
                        "(default: DATA_DIR/generalization)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None, help="generation processes (default: all cores)")
    parser.add_argument("--label", default=None, help="section title in the output file (default: model and style)")
    parser.add_argument("--out", type=Path, default=OUT, help="markdown file whose section for --label is replaced")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cells) - set(CELLS))
    if unknown or not args.cells:
        parser.error(f"unknown cell(s) {', '.join(unknown) or '(none)'}; choose from: {', '.join(CELLS)}")
    try:
        kind = model_input_kind(args.model)
    except ValueError as e:
        parser.error(str(e))
    if args.ensemble and kind != "image":
        parser.error(f"--ensemble pairs an image model with {SERIES_MODEL}; --model {args.model} is not an image model")
    if args.ensemble and args.option:
        parser.error("--option applies to one model; with --ensemble it is not allowed (say it for --model alone)")
    args.series_epochs = args.series_epochs or args.epochs
    bad = [o for o in args.option if "=" not in o]
    if bad:
        parser.error(f"--option takes KEY=VALUE, got {', '.join(bad)}")
    args.workdir = args.workdir or data_dir() / "generalization"
    family = f"{args.model} + {SERIES_MODEL} ensemble" if args.ensemble else args.model
    args.label = args.label or f"{family} {args.image_size} px, {args.train_style} style"
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
    results, trained, notes = run_cells(args, options)
    section = report(args, results, trained, notes)
    print("\n" + section)
    write_section(args.out, section, args.label)
    (args.workdir / f"results-{hashlib.sha1(args.label.encode()).hexdigest()[:8]}.json").write_text(
        json.dumps({"label": args.label, "cells": [asdict(r) for r in results], "skipped": notes}, indent=1)
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
