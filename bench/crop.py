"""Plot-area crop: the PNG-versus-CSV gap on the same series, with and without the crop.

One small visual_cnn recipe is trained twice on the same generated mixed-style dataset (half team
style, half varied), once with ``crop=plot_area`` and once with ``crop=none``. Both are then scored,
through the product's own ``Predictor.predict_files``, on the *same* series from the clean-room
generator (``bench/independent_series.py``, normal difficulty) given three ways:

- ``csv``: the CSV file (the product draws it in team style, as for an upload);
- ``varied``: a PNG drawn by the product's varied renderer (``backend.data.render.varied_style``);
- ``other``: a PNG drawn by plain matplotlib in a family of styles the training never saw
  (:func:`other_tool_png`: other sizes and DPIs, themes outside the varied list, despined or
  boxed axes, inward ticks, dashed grids, step lines, scatter markers, date axes, legends outside,
  zero margins, right-hand y-axes).

The gap is ``macro-F1(csv) - macro-F1(png)`` with a paired stratified bootstrap interval
(``backend.evaluation.stats.paired_comparison``: the same series, two inputs). Aim: within 2 points.
Also times ``find_plot_area`` per image at the sizes the PNGs come in.

    OMP_NUM_THREADS=1 python bench/crop.py            # ~8 min on one core; writes docs/BENCHMARKS_crop.md
    python bench/crop.py --train-per-class 40 --epochs 3 --test-per-class 10 --no-write   # smoke run
    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/crop.py --run 2 --workdir W   # score a stored run

``--run N`` trains nothing: it scores run N of the store that ``RUNS_DB_URL`` names (with the crop
setting its checkpoint records) on the same three inputs and prints its section, for a model too
costly to train here twice (the product-sized visual_cnn takes over an hour on this CPU). Run N may
be a series run: it reads each PNG's line back into a series (``backend.data.digitize``), as the
product does for a PNG given to a series run. ``--run N --ensemble-run M`` scores the image + series
ensemble of the two runs (one of each kind) the same way.

    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/crop.py --run 3 --ensemble-run 4 --workdir W

``--run A --against B`` scores two stored runs on the same series and compares them item by item:
each input's macro-F1, B minus A with a paired bootstrap interval and McNemar's test, and the change
of each PNG family's gap from A to B (``backend.evaluation.stats.paired_gap_change``: one resample of
the series for all four predictions, so a run that is simply better or worse on this draw does not
read as a gap closed), and which other-tool styles B wins or loses on against A. Use it to A/B a
change aimed at the gap: two runs' gaps bootstrapped apart moved by 2-3 points between two trainings
of one recipe, as much as the aim itself. The four predictions per series are kept in the workdir
(``against_A_B_seedS.json``) to be read again without rescoring.

    RUNS_DB_URL=sqlite:///STORE/runs.db python bench/crop.py --run 1 --against 2 --workdir W

Each other-tool PNG's style is recorded beside it (``other/<class>/<i>.json``: :func:`other_tool_png`'s
traits) and every report ends with the gap broken down by those traits (:func:`style_breakdown`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.style  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from backend.data.plotarea import find_plot_area  # noqa: E402
from backend.data.render import encode_png, render_series, varied_style  # noqa: E402
from backend.data.series import CLASSES  # noqa: E402
from backend.evaluation.stats import (  # noqa: E402
    bootstrap_metrics,
    format_interval,
    paired_comparison,
    paired_gap_change,
)
from bench.independent_series import generate  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_crop.md"
# themes the varied renderer never uses (docs: backend/data/render.py _LIGHT_THEMES + dark_background)
OTHER_THEMES = ("seaborn-v0_8-white", "seaborn-v0_8-dark", "seaborn-v0_8-paper", "seaborn-v0_8-poster",
                "seaborn-v0_8-talk", "seaborn-v0_8-muted", "tableau-colorblind10", "seaborn-v0_8-colorblind",
                "seaborn-v0_8-pastel", "seaborn-v0_8-dark-palette")  # fmt: skip
OTHER_LINES = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#a65628", "#f781bf", "#666666", "#1b9e77", "#d95f02")
OTHER_DARK = (("#263238", "#80cbc4"), ("#1a1a2e", "#e94560"), ("#202020", "#f0e442"), ("#0b0c10", "#66fcf1"))


def other_tool_png(values: np.ndarray, stamps: list[str], rng: np.random.Generator,
                   traits: dict | None = None) -> np.ndarray:
    """Draw ``values`` with plain matplotlib in a style drawn from a family the product never trained on.

    ``traits``, when given, is filled with what was drawn (the keys of :data:`TRAITS`), so the gap can
    be broken down by style (:func:`style_breakdown`); the RNG is used the same way either way.
    """
    drawn = {} if traits is None else traits

    def coin(name: str, chance: float) -> bool:
        drawn[name] = bool(rng.random() < chance)
        return drawn[name]

    theme = str(rng.choice(OTHER_THEMES))
    dark = coin("dark", 0.25)
    width_in, dpi = float(rng.uniform(3.0, 11.0)), float(rng.choice((50, 64, 90, 110, 160, 200)))
    height_in = width_in * float(rng.uniform(0.35, 1.0))
    drawn.update(theme=theme, width_px=round(width_in * dpi))
    with matplotlib.style.context(theme):
        constrained = coin("constrained", 0.5)
        figure = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained" if constrained else None)
        canvas = FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        colour = str(rng.choice(OTHER_LINES))
        if dark:
            face, colour = OTHER_DARK[int(rng.integers(len(OTHER_DARK)))]
            figure.set_facecolor(face)
            axes.set_facecolor(face)
            for spine in axes.spines.values():
                spine.set_color("#bbbbbb")
            axes.tick_params(colors="#bbbbbb")
        x = np.arange(len(values))
        if coin("dates", 0.4):
            x = mdates.date2num(np.array([dt.datetime.fromisoformat(s) for s in stamps]))
            axes.xaxis.set_major_formatter(mdates.DateFormatter(str(rng.choice(("%Y-%m", "%b %d", "%d/%m/%y")))))
        kind = rng.random()
        if kind < 0.1:
            size = float(rng.uniform(1, 6))  # marker area, points squared
            axes.scatter(x, values, s=size, color=colour, label="value")
            drawn.update(kind="scatter", marker="")
            stroke_pt = float(np.sqrt(size))  # a marker's diameter
        else:
            width, marker = float(rng.uniform(0.5, 3.0)), str(rng.choice(("", "", "", ".", "o", "+")))
            axes.plot(x, values, color=colour, linewidth=width, label="value",
                      drawstyle="steps-mid" if kind < 0.2 else "default",
                      marker=marker, markersize=float(rng.uniform(1, 4)))  # fmt: skip
            drawn.update(kind="steps" if kind < 0.2 else "line", marker=marker)
            stroke_pt = width
        # the stroke's width in pixels once the whole image is squeezed to 128 px wide (scale-free)
        drawn["stroke_at_128px"] = round(stroke_pt / 72 / width_in * 128, 3)
        if coin("despined", 0.5):  # seaborn's despine: no top and right spines
            axes.spines["top"].set_visible(False)
            axes.spines["right"].set_visible(False)
        if coin("inward_ticks", 0.3):
            axes.tick_params(direction="in")
        if coin("grid", 0.4):
            axes.grid(True, linestyle=str(rng.choice(("--", ":", "-."))), alpha=float(rng.uniform(0.3, 0.8)))
        if coin("zero_margins", 0.3):
            axes.margins(x=0)
        if coin("right_y_axis", 0.2):
            axes.yaxis.tick_right()
        if coin("title", 0.3):
            axes.set_title(str(rng.choice(("Sensor reading", "KPI", "Load", "Latency (ms)", "Series"))))
        if coin("legend_outside", 0.2):
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        canvas.draw()
        box, height = axes.get_window_extent(), canvas.get_width_height()[1]  # display origin: bottom left
        drawn["axes_box"] = [round(box.x0, 1), round(height - box.y1, 1), round(box.x1, 1), round(height - box.y0, 1)]
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def timestamps(rng: np.random.Generator, n: int) -> list[str]:
    start = dt.datetime(2001, 1, 1) + dt.timedelta(days=int(rng.integers(0, 8000)))
    step = dt.timedelta(hours=1) if rng.random() < 0.5 else dt.timedelta(days=1)
    return [(start + i * step).isoformat() for i in range(n)]


def build_test_inputs(folder: Path, per_class: int, seed: int) -> list[tuple[str, int, dict[str, Path]]]:
    """The same clean-room series as a CSV, a varied PNG and an other-tool PNG; (class, index, files).

    ``files["traits"]`` is a JSON file of what the other-tool PNG shows (:func:`other_tool_png`).
    Files live under ``folder/seed-<seed>``: another seed is another draw, never the files of this one
    (before 2026-12-05 the folder held one draw, and a second seed in the same workdir scored the first).
    """
    folder = folder / f"seed-{seed}"
    items = []
    for ci, name in enumerate(CLASSES):
        for i in range(per_class):
            rng = np.random.default_rng([seed, ci, i])
            values = generate(name, rng)
            stamps = timestamps(rng, len(values))
            files = {kind: folder / kind / name / f"{i}.{'csv' if kind == 'csv' else 'png'}"
                     for kind in ("csv", "varied", "other")}  # fmt: skip
            files["traits"] = folder / "other" / name / f"{i}.json"
            items.append((name, i, files))
            if all(path.is_file() for path in files.values()):
                continue  # drawn by an earlier run with the same seed: the same series and styles
            for path in files.values():
                path.parent.mkdir(parents=True, exist_ok=True)
            files["csv"].write_text("timestamp,value\n" + "\n".join(f"{s},{v:.10g}" for s, v in zip(stamps, values, strict=True)))
            style = varied_style(rng)
            dates = np.array(stamps, dtype="datetime64[s]")
            files["varied"].write_bytes(encode_png(render_series(values, timestamps=dates, style=style)))
            traits: dict = {}
            files["other"].write_bytes(encode_png(other_tool_png(values, stamps, rng, traits)))
            files["traits"].write_text(json.dumps(traits))
    return items


# how the gap is broken down by style: trait -> bin edges for a number, None for a yes/no or a name
TRAITS: dict[str, tuple[float, ...] | None] = {
    "kind": None, "marker": None, "dark": None, "dates": None, "despined": None, "inward_ticks": None,
    "grid": None, "zero_margins": None, "right_y_axis": None, "title": None, "legend_outside": None,
    "constrained": None, "width_px": (0, 400, 800, 1400, 10_000), "stroke_at_128px": (0, 0.2, 0.4, 0.8, 100),
}  # fmt: skip


def _trait_value(trait: str, value) -> str:
    edges = TRAITS[trait]
    if edges is None:
        return "none" if value == "" else str(value).lower()
    for low, high in itertools.pairwise(edges):
        if low <= value < high:
            return f"{low:g}-{high:g}" if high != edges[-1] else f">= {low:g}"
    return f">= {edges[-1]:g}"


def style_breakdown(items, y_true: list[int], predicted: dict[str, list[int]], min_items: int = 10) -> list[dict]:
    """Per other-tool trait value: items, CSV and PNG accuracy on the same series, and how many the
    PNG lost (CSV right, PNG wrong) or won; worst PNG-minus-CSV first. Values on fewer than
    ``min_items`` series are left out (too few to read)."""
    csv_ok = np.array(predicted["csv"]) == np.array(y_true)
    png_ok = np.array(predicted["other"]) == np.array(y_true)
    rows = [{"trait": trait, "value": value, "n": int(chosen.sum()),
             "csv_acc": float(csv_ok[chosen].mean()), "png_acc": float(png_ok[chosen].mean()),
             "lost": int((csv_ok & ~png_ok)[chosen].sum()), "won": int((~csv_ok & png_ok)[chosen].sum())}
            for trait, value, chosen in trait_groups(items, min_items)]  # fmt: skip
    return sorted(rows, key=lambda row: (row["png_acc"] - row["csv_acc"], row["trait"]))


def trait_groups(items, min_items: int = 10):
    """(trait, value, boolean mask over ``items``) for every other-tool trait value drawn on at least
    ``min_items`` of the series (read from the ``traits`` JSON beside each other-tool PNG)."""
    traits = [json.loads(files["traits"].read_text()) for _, _, files in items]
    for trait in TRAITS:
        values = np.array([_trait_value(trait, t[trait]) for t in traits])
        for value in sorted(set(values)):
            chosen = values == value
            if chosen.sum() >= min_items:
                yield trait, value, chosen


def change_breakdown(items, y_true: list[int], a_other: list[int], b_other: list[int], min_items: int = 10) -> list[dict]:
    """Per other-tool trait value: how run B's answers on the other-tool PNGs differ from run A's on
    the same series (both accuracies, items only A or only B gets right); B's worst change first."""
    truth = np.array(y_true)
    a_ok, b_ok = np.array(a_other) == truth, np.array(b_other) == truth
    rows = [{"trait": trait, "value": value, "n": int(chosen.sum()), "a_acc": float(a_ok[chosen].mean()),
             "b_acc": float(b_ok[chosen].mean()), "only_a": int((a_ok & ~b_ok)[chosen].sum()),
             "only_b": int((~a_ok & b_ok)[chosen].sum())}
            for trait, value, chosen in trait_groups(items, min_items)]  # fmt: skip
    return sorted(rows, key=lambda row: (row["b_acc"] - row["a_acc"], row["trait"]))


def change_breakdown_lines(rows: list[dict], limit: int = 8) -> list[str]:
    """The ``limit`` trait values where B lost most and the ``limit`` where it gained most, as markdown."""
    chosen = rows if len(rows) <= 2 * limit else [*rows[:limit], *rows[-limit:]]
    lines = [f"Other-tool PNGs by style, run B against run A (the {limit} trait values B lost most on, then the "
             f"{limit} it gained most on):", "",
             "| trait | value | series | A accuracy | B accuracy | only A right / only B right |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {r['trait']} | {r['value']} | {r['n']} | {r['a_acc']:.3f} | {r['b_acc']:.3f} | {r['only_a']} / {r['only_b']} |"
              for r in chosen]  # fmt: skip
    return lines


def breakdown_lines(rows: list[dict], limit: int = 12) -> list[str]:
    """The worst ``limit`` rows of :func:`style_breakdown` as a markdown table."""
    lines = ["Other-tool PNGs by style (same series as CSVs; lost = right as CSV, wrong as PNG; worst first):", "",
             "| trait | value | series | CSV accuracy | PNG accuracy | lost | won |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {r['trait']} | {r['value']} | {r['n']} | {r['csv_acc']:.3f} | {r['png_acc']:.3f} | {r['lost']} | {r['won']} |"
              for r in rows[:limit]]  # fmt: skip
    return lines


def train_both(data: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Train the recipe with each crop setting; the best checkpoint of each."""
    from backend import store
    from backend.runs.lifecycle import build_config, train_run

    checkpoints = {}
    for crop in ("plot_area", "none"):
        config = build_config({"data": str(data), "model": "visual_cnn", "image_size": args.image_size,
                               "epochs": args.epochs, "seed": args.seed, "crop": crop, "device": "cpu",
                               "name": f"crop bench: {crop}"})  # fmt: skip
        started = time.perf_counter()
        result = train_run(config)
        run = store.get_run(result.run_id)
        if result.status != "completed":
            raise SystemExit(f"training with crop={crop} ended {result.status}: {run.error}")
        print(f"  crop={crop}: val macro-F1 {run.best_val_f1:.3f} (epoch {run.best_epoch}), "
              f"test {run.test_metrics['macro_f1']:.3f}, {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        checkpoints[crop] = (Path(run.checkpoint_path), run)
    return checkpoints


def score(checkpoint: Path | None, items, names: list[str], predictor=None) -> dict[str, list[int]]:
    """Predicted class index of every item for each input kind, through the product's ``predict_files``
    (an image run reads PNGs as they are; a series run or an ensemble reads their line back as a series)."""
    from backend.predict_series import open_checkpoint

    predictor = predictor or open_checkpoint(checkpoint, device="cpu", precision="fp32")
    out = {}
    for kind in ("csv", "varied", "other"):
        files = [(str(files[kind]), files[kind]) for _, _, files in items]
        predictions = predictor.predict_files(files)
        failed = [p.filename for p in predictions if p.error]
        if failed:
            raise SystemExit(f"{len(failed)} {kind} inputs failed, e.g. {failed[0]}")
        out[kind] = [names.index(p.predicted) for p in predictions]
    return out


def crop_timing(items, limit: int = 60) -> dict[str, float]:
    """Median and 95th-percentile ms of find_plot_area on decoded PNGs of both families."""
    from backend.data.images import load_image_rgb

    times, sizes = [], []
    for _, _, files in items[:limit]:
        for kind in ("varied", "other"):
            image = load_image_rgb(files[kind])
            started = time.perf_counter()
            find_plot_area(image)
            times.append((time.perf_counter() - started) * 1e3)
            sizes.append(image.shape[0] * image.shape[1])
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)),
            "median_mpx": float(np.median(sizes)) / 1e6, "n": len(times)}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--val-per-class", type=int, default=0)
    parser.add_argument("--test-per-class", type=int, default=40, help="clean-room series per class")
    parser.add_argument("--own-test-per-class", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: a temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS_crop.md alone")
    parser.add_argument("--out", type=Path, default=OUT, help="markdown file to write (default docs/BENCHMARKS_crop.md)")
    parser.add_argument("--run", type=int, default=None, help="score this stored run instead of training (prints only)")
    parser.add_argument("--ensemble-run", type=int, default=None,
                        help="with --run: score the image + series ensemble of the two runs (one of each kind)")
    parser.add_argument("--against-ensemble", type=int, default=None, metavar="E",
                        help="with --run A: also score the ensemble of A and series run E on the same series, "
                             "compared item by item with A alone")
    parser.add_argument("--against", type=int, default=None,
                        help="with --run A: also score run B on the same series and compare the two item by item")
    args = parser.parse_args(argv)
    if args.against is not None and (args.run is None or args.ensemble_run is not None):
        parser.error("--against needs --run and cannot be combined with --ensemble-run")
    if args.against_ensemble is not None and (args.run is None or args.ensemble_run is not None or args.against):
        parser.error("--against-ensemble needs --run and cannot be combined with --ensemble-run or --against")
    started = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crop-bench-"))
    if args.run is not None:
        return score_stored_run(args, workdir, started)
    os.environ["RUNS_DB_URL"] = f"sqlite:///{workdir / 'runs.db'}"  # a scratch run store: no runs left behind
    os.environ["ARTIFACTS_DIR"] = str(workdir / "artifacts")
    from backend.data.generate import generate_dataset

    data = workdir / "train"
    if not (data / "manifest.json").is_file():
        generate_dataset(data, train_per_class=args.train_per_class, test_per_class=args.own_test_per_class,
                         seed=args.seed, style="mixed", workers=2)  # fmt: skip
    items = build_test_inputs(workdir / "clean_room", args.test_per_class, seed=1000 + args.seed)
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
    checkpoints = train_both(data, args)
    names = list(CLASSES)
    y_true = [names.index(name) for name, _, _ in items]
    rows, per_setting = [], {}
    for crop, (checkpoint, run) in checkpoints.items():
        predicted = score(checkpoint, items, names)
        per_setting[crop] = predicted
        own = run.test_metrics
        rows += [{"crop": crop, "own": own, **figures} for figures in gap_figures(y_true, predicted, names)]
    timing = crop_timing(items)
    seconds = time.perf_counter() - started
    text = report(rows, timing, args, seconds, per_setting, y_true, names, items)
    print(text)
    if not args.no_write:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


def gap_figures(y_true: list[int], predicted: dict[str, list[int]], names: list[str]) -> list[dict]:
    """For each PNG family: the paired CSV-minus-PNG comparison and both inputs' bootstrap metrics."""
    csv = bootstrap_metrics(y_true, predicted["csv"], names)
    return [{"png": kind, "csv": csv, "png_metrics": bootstrap_metrics(y_true, predicted[kind], names),
             "gap": paired_comparison(y_true, predicted["csv"], predicted[kind], names)}
            for kind in ("varied", "other")]  # fmt: skip


def stored_run(run_id: int):
    """A completed run with a checkpoint from the store ``RUNS_DB_URL`` names, or a clear exit."""
    from backend import store

    try:
        run = store.get_run(run_id)
    except store.RunNotFound:
        run = None
    if run is None or run.status != "completed" or not run.checkpoint_path:
        raise SystemExit(f"run {run_id} is not a completed run with a checkpoint in {os.environ.get('RUNS_DB_URL')}")
    return run


def score_stored_run(args: argparse.Namespace, workdir: Path, started: float) -> int:
    """``--run N``: the gap for one stored run (its own crop setting), printed as a markdown section."""
    if args.against is not None or args.against_ensemble is not None:
        return compare_stored_runs(args, workdir, started)
    run = stored_run(args.run)
    predictor = None if args.ensemble_run is None else stored_ensemble(args.run, args.ensemble_run)
    items = build_test_inputs(workdir / "clean_room", args.test_per_class, seed=1000 + args.seed)
    names = list(run.class_names)
    y_true = [names.index(name) for name, _, _ in items]
    predicted = score(Path(run.checkpoint_path), items, names, predictor)
    config, own = run.config, run.test_metrics
    what = (f"{config['model']} {config['image_size']} px, crop={config.get('crop', 'none')}"
            if config["model"] != "series_cnn" else f"{config['model']} (PNGs read back into series)")
    if predictor is not None:
        what = f"ensemble of runs {args.run} and {args.ensemble_run} ({predictor.model_name}; PNGs: the image as it is + its line as a series)"
    lines = [
        f"## Stored run {args.run}{f' + {args.ensemble_run}' if predictor is not None else ''}: {what}, "
        f"{config['epochs']} epochs",
        "",
        f"`python bench/crop.py --run {args.run}{f' --ensemble-run {args.ensemble_run}' if predictor is not None else ''} "
        f"--test-per-class {args.test_per_class} --seed {args.seed}` "
        f"({dt.date.today().isoformat()}, {(time.perf_counter() - started) / 60:.1f} min): trained on "
        f"`{config['data']}`, own test macro-F1 {format_interval(own['macro_f1'], own.get('macro_f1_ci'))}; "
        f"{args.test_per_class} clean-room series per class, each as CSV, varied-style PNG and other-tool PNG.",
        "",
        "| PNG family | CSV macro-F1 | PNG macro-F1 | gap CSV - PNG [95% CI] | McNemar p | aim met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in gap_figures(y_true, predicted, names):
        csv, png, gap = row["csv"], row["png_metrics"], row["gap"]
        met = "yes" if abs(gap["macro_f1_diff"]) <= 0.02 else "no"
        lines.append(
            f"| {row['png']} | {format_interval(csv['macro_f1'], csv['macro_f1_ci'])} | "
            f"{format_interval(png['macro_f1'], png['macro_f1_ci'])} | "
            f"{format_interval(gap['macro_f1_diff'], gap['macro_f1_diff_ci'])} | {gap['mcnemar_p']:.3f} | {met} |"
        )
    per_class = {kind: bootstrap_metrics(y_true, predicted[kind], names, n_resamples=10)["per_class_f1"]
                 for kind in ("csv", "varied", "other")}  # fmt: skip
    lines += ["", "| class | CSV | varied PNG | other-tool PNG |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | " + " | ".join(f"{per_class[k][name]:.2f}" for k in ("csv", "varied", "other")) + " |"
              for name in names]  # fmt: skip
    lines += ["", *breakdown_lines(style_breakdown(items, y_true, predicted))]
    print("\n".join(lines) + "\n")
    return 0


def stored_ensemble(image_run: int, series_run: int):
    """The Predict page's image + series ensemble of two stored runs, or a clear exit."""
    from backend.predict import PredictError
    from backend.predict_series import open_ensemble

    try:
        return open_ensemble(image_run, series_run, device="cpu", precision="fp32")
    except PredictError as e:
        raise SystemExit(str(e)) from e


def compare_stored_runs(args: argparse.Namespace, workdir: Path, started: float) -> int:
    """``--run A --against B``: both runs on the same series, compared item by item (B minus A).
    ``--run A --against-ensemble E``: B is the ensemble of A and series run E (A's answer with E's)."""
    from types import SimpleNamespace

    run_a = stored_run(args.run)
    names = list(run_a.class_names)
    items = build_test_inputs(workdir / "clean_room", args.test_per_class, seed=1000 + args.seed)
    y_true = [names.index(name) for name, _, _ in items]
    if args.against_ensemble is not None:
        ensemble = stored_ensemble(args.run, args.against_ensemble)
        run_b = SimpleNamespace(id=f"{args.run} + {args.against_ensemble}", test_metrics={},
                                name=f"ensemble of runs {args.run} and {args.against_ensemble}")  # fmt: skip
        b = score(None, items, names, ensemble)
    else:
        run_b = stored_run(args.against)
        if list(run_b.class_names) != names:
            raise SystemExit(f"runs {args.run} and {args.against} predict different classes; nothing to pair")
        b = score(Path(run_b.checkpoint_path), items, names)
    a = score(Path(run_a.checkpoint_path), items, names)
    other = args.against if args.against is not None else f"ensemble{args.against_ensemble}"
    kept = workdir / f"against_{args.run}_{other}_seed{args.seed}.json"  # to read again without rescoring
    kept.write_text(json.dumps({"class_names": names, "y_true": y_true, "a": a, "b": b,
                                "items": [[name, i] for name, i, _ in items]}, default=int))  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    print(comparison_section(args, run_a, run_b, y_true, a, b, names, minutes, items))
    return 0


def comparison_section(args, run_a, run_b, y_true, a: dict, b: dict, names: list[str], minutes: float,
                       items=None) -> str:  # fmt: skip
    """The markdown for ``--against``: each input's scores and each PNG family's gap, A against B;
    given the scored ``items``, also B against A on the other-tool PNGs by style trait."""
    def own(run) -> str:
        metrics = run.test_metrics or {}
        return format_interval(metrics.get("macro_f1"), metrics.get("macro_f1_ci"))

    against = (f"--against-ensemble {args.against_ensemble}" if getattr(args, "against_ensemble", None) is not None
               else f"--against {run_b.id}")  # fmt: skip
    lines = [
        f"## Runs {run_a.id} and {run_b.id} on the same series",
        "",
        f"`python bench/crop.py --run {run_a.id} {against} --test-per-class {args.test_per_class} "
        f"--seed {args.seed}` ({dt.date.today().isoformat()}, {minutes:.1f} min): {len(y_true)} clean-room "
        f"series, each as CSV, varied-style PNG and other-tool PNG. Run A = {run_a.id} ({run_a.name}, own test "
        f"{own(run_a)}), run B = {run_b.id} ({run_b.name}, own test {own(run_b)}).",
        "",
        "| input | A macro-F1 | B macro-F1 | B - A [95% CI] | only A right / only B right | McNemar p |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in ("csv", "varied", "other"):
        pair = paired_comparison(y_true, b[kind], a[kind], names)
        lines.append(f"| {kind} | {pair['macro_f1_b']:.3f} | {pair['macro_f1_a']:.3f} | "
                     f"{format_interval(pair['macro_f1_diff'], pair['macro_f1_diff_ci'])} | "
                     f"{pair['discordant'][1]} / {pair['discordant'][0]} | {pair['mcnemar_p']:.3f} |")  # fmt: skip
    lines += ["", "| PNG family | gap A (CSV - PNG) | gap B | change B - A [95% CI] | closed by B |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for kind in ("varied", "other"):
        change = paired_gap_change(y_true, a["csv"], a[kind], b["csv"], b[kind], names)
        verdict = "yes" if change["significant"] and change["change"] < 0 else (
            "wider" if change["significant"] else "not shown")
        lines.append(f"| {kind} | {change['gap_a']:+.3f} | {change['gap_b']:+.3f} | "
                     f"{format_interval(change['change'], change['change_ci'])} | {verdict} |")
    if items is not None:
        lines += ["", *change_breakdown_lines(change_breakdown(items, y_true, a["other"], b["other"]))]
    return "\n".join(lines) + "\n"


def report(rows, timing, args, seconds, per_setting, y_true, names, items) -> str:
    import torch

    lines = [
        "# Plot-area crop: PNG versus CSV on the same series",
        "",
        f"`OMP_NUM_THREADS=1 python bench/crop.py {' '.join(sys.argv[1:])}` ({dt.date.today().isoformat()}, CPU, torch {torch.__version__}, "
        f"{seconds / 60:.1f} min in all). visual_cnn (product defaults: 5 blocks, 2x2 head, AdamW, one-cycle), "
        f"{args.image_size} px, {args.epochs} epochs, trained on {args.train_per_class} mixed-style plots per class "
        f"(half team, half varied; val split 15% of train), seed {args.seed}; trained twice, `crop=plot_area` and "
        "`crop=none`, nothing else different. Scored on "
        f"{args.test_per_class} series per class ({args.test_per_class * len(names)} in all) from the clean-room "
        "generator (`bench/independent_series.py`, normal difficulty), each given as its CSV (drawn by the product "
        "in team style), as a PNG from the product's varied renderer, and as a PNG from plain matplotlib in styles "
        "never trained on (`other_tool_png`: other themes, sizes, DPIs, despined axes, inward ticks, step lines, "
        "scatter, date axes, right-hand y-axes, legends outside). Gap = macro-F1(CSV) - macro-F1(PNG) on the same "
        "series, paired stratified bootstrap 95% interval (1,000 resamples). Aim: |gap| <= 0.02.",
        "",
        "| crop | own test macro-F1 [95% CI] | CSV macro-F1 | PNG family | PNG macro-F1 | gap CSV - PNG [95% CI] | McNemar p | aim met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        own, gap = row["own"], row["gap"]
        met = "yes" if abs(gap["macro_f1_diff"]) <= 0.02 else "no"
        lines.append(
            f"| {row['crop']} | {format_interval(own['macro_f1'], own.get('macro_f1_ci'))} | "
            f"{format_interval(row['csv']['macro_f1'], row['csv']['macro_f1_ci'])} | {row['png']} | "
            f"{format_interval(row['png_metrics']['macro_f1'], row['png_metrics']['macro_f1_ci'])} | "
            f"{format_interval(gap['macro_f1_diff'], gap['macro_f1_diff_ci'])} | {gap['mcnemar_p']:.3f} | {met} |"
        )
    lines += ["", "Per-class F1 on the other-tool PNGs (crop / none) and on the CSVs (crop / none):", "",
              "| class | other PNG, crop | other PNG, none | CSV, crop | CSV, none |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    per_class = {}
    for crop, predicted in per_setting.items():
        for kind in ("other", "csv"):
            per_class[(crop, kind)] = bootstrap_metrics(y_true, predicted[kind], names, n_resamples=10)["per_class_f1"]
    for name in names:
        lines.append(f"| {name} | {per_class[('plot_area', 'other')][name]:.2f} | {per_class[('none', 'other')][name]:.2f} | "
                     f"{per_class[('plot_area', 'csv')][name]:.2f} | {per_class[('none', 'csv')][name]:.2f} |")  # fmt: skip
    lines += ["", *breakdown_lines(style_breakdown(items, y_true, per_setting["plot_area"]))]
    lines += [
        "",
        f"`find_plot_area` on {timing['n']} decoded test PNGs (median {timing['median_mpx']:.2f} Mpx): median "
        f"{timing['median_ms']:.2f} ms, 95th percentile {timing['p95_ms']:.2f} ms per image (before resizing).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
