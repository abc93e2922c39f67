"""``python -m backend compare A B [--json]``: is run A really better than run B on the same test items?

Prints one sentence (the paired macro-F1 difference with its interval, McNemar's p and the verdict)
and the details; ``--json`` prints the whole comparison as one object. Runs whose stored test items
differ are reported as not comparable (exit 0: that is an answer, not an error). See docs/COMPARISON.md.
"""

from __future__ import annotations

import argparse
import json

from backend import store
from backend.evaluation.compare import compare_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", type=int, help="first run id (differences are A minus B)")
    parser.add_argument("run_b", type=int, help="second run id")
    parser.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def format_details(result: dict) -> list[str]:
    """The lines under the sentence: what was paired, each run's score, the disagreements."""
    a, b = result["run_a"], result["run_b"]
    lines = [f"test items: {result['n_a']} in run {a}, {result['n_b']} in run {b}, {result['n_shared']} shared"]
    if result["comparable"]:
        lo, hi = result["accuracy_diff_ci"]
        only_a, only_b = result["discordant"]
        lines += [
            f"macro-F1: run {a} {result['macro_f1_a']:.3f}, run {b} {result['macro_f1_b']:.3f}",
            f"accuracy: {result['accuracy_diff'] * 100:+.1f} points [{lo * 100:+.1f}, {hi * 100:+.1f}]",
            f"items only run {a} got right: {only_a}; only run {b}: {only_b}",
        ]
    for run_id, split in ((a, result["selection_split_a"]), (b, result["selection_split_b"])):
        if split == "test":
            lines.append(f"run {run_id} was selected on test: its test figures are optimistic")
    return lines


def main(args: argparse.Namespace) -> int:
    if args.resamples < 1:
        print("error: --resamples must be a positive number (1000 or more for a 95% interval)")
        return 2
    try:
        result = compare_runs(args.run_a, args.run_b, n_resamples=args.resamples, seed=args.seed)
    except store.RunNotFound as e:
        print(f"error: {e}")
        return 1
    if args.json:
        print(json.dumps(result))
        return 0
    print("\n".join([result["sentence"], *format_details(result)]))
    return 0
