"""VAE + classifier, one change at a time: which of KL warm-up, the classifier's input, latent size,
encoder / decoder capacity, image size and the optimiser recipe help, on the standard set.

Every step trains one run through ``train_run`` (the entry point of ``python -m backend train``) on
one generated dataset (``bench/quality.py``'s standard set: team style, 200 train + 110 test plots
per class, validation carved from train), and reads its **test** figures once: macro-F1 with its 95%
bootstrap interval (the epoch was selected on validation) and the reconstruction's PSNR on test
(``recon_psnr``, dB: do the reconstructions still look like the plot?).

Steps run in the order of ``STEPS``; each is the *current recipe* plus one change. A change is kept
(it becomes part of the recipe for the steps after it) when its test macro-F1 beats the recipe's by
more than ``--keep-margin`` points and its PSNR does not fall by more than ``--psnr-drop`` dB; the
report says for each step whether it was kept. One seed per step: a step inside the recipe's
interval is read as noise, which the report says plainly.

    OMP_NUM_THREADS=2 python bench/vae_ab.py                        # every step, ~3-4 min each on 2 cores
    python bench/vae_ab.py --steps seed,onecycle --results r.json   # some steps; results accumulate in r.json

Two cores, two walks: copy a walk's JSON after step S, run ``--steps`` of later steps on the copy in
a second process (its recipe is the first walk's up to S), and report both with ``--also copy.json``;
each row names the steps it was added to, so a branch is never read as part of the other walk.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend import store  # noqa: E402
from backend.data.generate import generate_dataset  # noqa: E402
from backend.evaluation.stats import format_interval  # noqa: E402
from backend.runs.lifecycle import build_config, train_run  # noqa: E402
from bench.generalization import use_scratch_store  # noqa: E402
from bench.quality import STANDARD_TEST_PER_CLASS, STANDARD_TRAIN_PER_CLASS  # noqa: E402
from bench.report import load_average, publish  # noqa: E402

OUT = REPO / "docs" / "BENCHMARKS_vae.md"
RESULTS = REPO / "docs" / "BENCHMARKS_vae.json"

# The seed's recipe (the registered defaults before this bench): Adam 1e-4 with plateau, KL weight
# 1 from the first epoch, the classifier on the mean code, one conv per stage, latent 128.
SEED_RECIPE = {
    "optimizer": "adam", "lr": 1e-4, "scheduler": "plateau",
    "model_kwargs": {"latent_dim": 128, "recon_weight": 1.0, "kl_weight": 1.0, "class_weight": 1.0},
}  # fmt: skip

# (name, what changes, change as TrainConfig options; model_kwargs merge into the recipe's)
STEPS: tuple[tuple[str, str, dict], ...] = (
    ("seed", "the seed's recipe (Adam 1e-4, plateau, KL from epoch 1, classifier on the mean, latent 128)", {}),
    ("onecycle", "AdamW at 1e-3 with a one-cycle schedule (visual_cnn's optimiser recipe)",
     {"optimizer": "adamw", "lr": 1e-3, "scheduler": "onecycle"}),
    ("kl_warmup", "KL warm-up: the KL weight ramps from 0 over the first 5 epochs",
     {"model_kwargs": {"kl_warmup_epochs": 5}}),
    ("encoder_2", "two convolutions per encoder stage", {"model_kwargs": {"encoder_convs": 2}}),
    ("encoder_3", "three convolutions per encoder stage", {"model_kwargs": {"encoder_convs": 3}}),
    ("sample", "the classifier reads a sample of the code while training (the mean at prediction)",
     {"model_kwargs": {"classify_on": "sample"}}),
    ("latent_32", "latent size 32", {"model_kwargs": {"latent_dim": 32}}),
    ("decoder_2", "two convolutions per decoder stage", {"model_kwargs": {"decoder_convs": 2}}),
    ("size_96", "96 px images instead of 64", {"image_size": 96}),
    ("kl_small", "KL weight 0.1 (a looser prior on the code)", {"model_kwargs": {"kl_weight": 0.1}}),
    ("plot_aug", "the plot augmentation preset and label smoothing 0.1 (visual_cnn's quality recipe)",
     {"augmentation": "plot", "label_smoothing": 0.1}),
    ("class_weight_3", "the class loss weighted 3 against reconstruction and KL",
     {"model_kwargs": {"class_weight": 3.0}}),
    ("wide_48", "48 base channels instead of 32 (every stage 1.5x wider)", {"model_kwargs": {"base_channels": 48}}),
    ("ema", "an exponential moving average of the weights (decay 0.99, about two epochs) is what is evaluated",
     {"ema_decay": 0.99}),
    ("epochs_30", "30 epochs instead of 20 (the best epoch was the last one)", {"epochs": 30}),
    ("features", "the classifier reads the encoder's pooled features (the code's input), not the mean code",
     {"model_kwargs": {"classify_on": "features"}}),
    ("epochs_40", "40 epochs (the best epoch at 30 was the 27th)", {"epochs": 40}),
)  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default=",".join(name for name, _, _ in STEPS),
                        help="comma-separated step names, run in STEPS order (default: all)")  # fmt: skip
    parser.add_argument("--data", type=Path, default=None, help="the standard set (generated here when missing)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-margin", type=float, default=0.5, help="points of macro-F1 a change must add")
    parser.add_argument("--psnr-drop", type=float, default=1.0, help="dB of test PSNR a kept change may lose")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON of every step's figures (accumulates)")
    parser.add_argument("--also", type=Path, action="append", default=[],
                        help="another walk's results JSON to report beside this one (a branch from an earlier step)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def merged(recipe: dict, change: dict) -> dict:
    """``recipe`` with ``change`` on top; ``model_kwargs`` merge key by key."""
    out = {**recipe, **{k: v for k, v in change.items() if k != "model_kwargs"}}
    out["model_kwargs"] = {**recipe.get("model_kwargs", {}), **change.get("model_kwargs", {})}
    return out


def train_step(folder: Path, options: dict, args: argparse.Namespace) -> dict:
    """Train one run with ``options``; its test figures, read once."""
    config = build_config({"data": str(folder), "model": "vae_classifier", "image_size": args.image_size,
                           "epochs": args.epochs, "seed": args.seed, "device": "cpu", **options})  # fmt: skip
    started = time.perf_counter()
    result = train_run(config)
    seconds = time.perf_counter() - started
    run = store.get_run(result.run_id)
    if result.status != "completed":
        raise SystemExit(f"run ended {result.status}: {run.error}")
    test = run.test_metrics
    return {"macro_f1": test["macro_f1"], "macro_f1_ci": test["macro_f1_ci"], "accuracy": test["accuracy"],
            "recon_psnr": test.get("recon_psnr"), "best_epoch": run.best_epoch, "seconds": round(seconds),
            "num_params": run.num_params, "train_acc_at_best": run.train_acc_at_best,
            "config": {k: v for k, v in config.to_dict().items() if k not in {"data", "name"}}}  # fmt: skip


def decide(step: dict, recipe_result: dict, args: argparse.Namespace) -> bool:
    """Keep a change that adds more than ``keep_margin`` points without losing ``psnr_drop`` dB."""
    gain = 100 * (step["macro_f1"] - recipe_result["macro_f1"])
    psnr_loss = (recipe_result["recon_psnr"] or 0) - (step["recon_psnr"] or 0)
    return gain > args.keep_margin and psnr_loss <= args.psnr_drop


def walk(results: dict, args: argparse.Namespace, chosen: set[str] = frozenset(), folder: Path | None = None) -> dict:
    """Walk STEPS in order over ``results``, training the ``chosen`` steps on ``folder`` first: each step
    is compared with the recipe of every kept step before it. Records ``kept`` and ``on_top_of`` per
    step and the final ``_recipe``."""
    recipe, recipe_result, chain = dict(SEED_RECIPE), None, []
    for name, _, change in STEPS:
        options = merged(recipe, change)
        if name in chosen:
            print(f"step {name}: {json.dumps(options)}", flush=True)
            results[name] = {**train_step(folder, options, args), "load": load_average()}
            args.results.write_text(json.dumps(results, indent=1) + "\n")
        step = results.get(name)
        if step is None:
            continue
        step["on_top_of"] = list(chain)
        step["kept"] = recipe_result is None or decide(step, recipe_result, args)
        if step["kept"]:
            recipe, recipe_result = options, step
            chain.append(name)
    results["_recipe"] = recipe
    return results


def run_steps(args: argparse.Namespace, folder: Path, results: dict) -> dict:
    """Train the chosen steps in STEPS order; the recipe grows by every kept change."""
    chosen = set(filter(None, args.steps.split(",")))
    unknown = chosen - {name for name, _, _ in STEPS}
    if unknown:
        raise SystemExit(f"unknown steps: {', '.join(sorted(unknown))}")
    results = walk(results, args, chosen, folder)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    return results


def report(walks: list[dict], args: argparse.Namespace) -> str:
    """One table of every walk's steps (a step measured in two walks on the same base shows once)."""
    described = {name: what for name, what, _ in STEPS}
    lines = [
        "# VAE + classifier: one change at a time",
        "",
        "Written by `bench/vae_ab.py` (method in its docstring): the standard set (team style, 200 train",
        "+ 110 test plots per class, validation carved from train), one run per step through `train_run`,",
        f"{args.image_size} px unless the step changes it, {args.epochs} epochs, seed {args.seed}, on this 2-core CPU. Test",
        "macro-F1 with its 95% bootstrap interval (epoch selected on validation); PSNR = the reconstruction",
        "of each test plot against the plot, in [0, 1] pixels, averaged (dB, higher is better).",
        f"A change is kept when it adds more than {args.keep_margin} points and loses at most {args.psnr_drop} dB",
        "against the recipe it was added to (the steps named in the third column);",
        "one seed per step, so a step inside the recipe's interval may be noise either way.",
        "",
        "| step | change | on top of | test macro-F1 [95% CI] | accuracy | PSNR (dB) | best epoch | train s | kept |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    shown = set()
    for results in walks:
        for name, _, _ in STEPS:
            step = results.get(name)
            if step is None or (name, tuple(step["on_top_of"])) in shown:
                continue
            shown.add((name, tuple(step["on_top_of"])))
            psnr = "-" if step.get("recon_psnr") is None else f"{step['recon_psnr']:.1f}"
            base = ", ".join(step["on_top_of"][1:]) or ("-" if name == "seed" else "seed")
            lines.append(f"| {name} | {described[name]} | {base} | "
                         f"{format_interval(step['macro_f1'], step['macro_f1_ci'])} | {100 * step['accuracy']:.1f}% | "
                         f"{psnr} | {step['best_epoch']} | {step['seconds']} | {'yes' if step['kept'] else 'no'} |")  # fmt: skip
    lines.append("")
    for results in walks:
        lines.append(f"Recipe at the end of a walk: `{json.dumps(results['_recipe'])}`.")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    use_scratch_store()
    folder = args.data or Path(tempfile.mkdtemp(prefix="awb-bench-vae-")) / "standard"
    if not (folder / "manifest.json").is_file():
        print(f"generating the standard set into {folder} ...", flush=True)
        generate_dataset(folder, train_per_class=STANDARD_TRAIN_PER_CLASS,
                         test_per_class=STANDARD_TEST_PER_CLASS, seed=args.seed)
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    results = run_steps(args, folder, results)
    others = [walk(json.loads(path.read_text()), args) for path in args.also]
    publish(report([results, *others], args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
