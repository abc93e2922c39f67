"""Compare two stored runs on the same test items (paired), never on different ones.

The rule: two runs are comparable only when their stored test predictions cover exactly the same
items (the same multiset of file-content hashes, sha256 of the bytes) with the same true classes, and
both runs have the same class names. Anything else is reported as ``comparable: false`` with the
reason and the overlap, and no difference is computed. Differences are **first-named minus
second-named** ("run 7 vs run 3: +1.8 points" means run 7 scores 1.8 macro-F1 points higher).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend import store
from backend.evaluation.stats import paired_comparison

DIFF_FIELDS = (
    "n_paired",
    "macro_f1_diff",
    "macro_f1_diff_ci",
    "accuracy_diff",
    "accuracy_diff_ci",
    "mcnemar_p",
    "discordant",
    "significant",
)


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions indexed by (item_hash, occurrence): identical files within one split stay distinct."""
    return frame.assign(occurrence=frame.groupby("item_hash").cumcount()).set_index(["item_hash", "occurrence"])


def _not_comparable(result: dict, reason: str) -> dict:
    return result | dict.fromkeys(DIFF_FIELDS) | {"comparable": False, "reason": reason, "significant": False}


def compare_runs(
    run_a: int, run_b: int, *, url: str | None = None, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """The paired comparison of two runs' stored test predictions (see ``paired_comparison``), plus
    comparable, reason, run_a, run_b, n_a, n_b, n_shared, selection_split_a/b and sentence."""
    record_a, record_b = store.get_run(run_a, url=url), store.get_run(run_b, url=url)
    frame_a, frame_b = store.predictions(run_a, url=url), store.predictions(run_b, url=url)
    result = {
        "run_a": run_a,
        "run_b": run_b,
        "n_a": len(frame_a),
        "n_b": len(frame_b),
        "n_shared": 0,
        "selection_split_a": record_a.selection_split or "test",
        "selection_split_b": record_b.selection_split or "test",
    }
    for run_id, frame in ((run_a, frame_a), (run_b, frame_b)):
        if frame.empty:
            return _finish(
                _not_comparable(
                    result,
                    f"run {run_id} has no stored per-item test predictions "
                    "(trained before they were stored, or not finished)",
                )
            )
    if list(record_a.class_names or []) != list(record_b.class_names or []):
        return _finish(_not_comparable(result, "the two runs have different class names"))
    keyed_a, keyed_b = _keyed(frame_a), _keyed(frame_b)
    shared = keyed_a.index.intersection(keyed_b.index)
    result["n_shared"] = len(shared)
    if len(shared) != len(keyed_a) or len(shared) != len(keyed_b):
        return _finish(
            _not_comparable(
                result,
                f"different test items: {len(shared)} shared, {len(keyed_a) - len(shared)} "
                f"only in run {run_a}, {len(keyed_b) - len(shared)} only in run {run_b}",
            )
        )
    keyed_b = keyed_b.loc[keyed_a.index]
    if not np.array_equal(keyed_a["true_index"].to_numpy(), keyed_b["true_index"].to_numpy()):
        return _finish(_not_comparable(result, "the same items carry different true classes in the two runs"))
    paired = paired_comparison(
        keyed_a["true_index"],
        keyed_a["pred_index"],
        keyed_b["pred_index"],
        record_a.class_names,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
    )
    return _finish(result | paired | {"comparable": True, "reason": None})


def _finish(result: dict) -> dict:
    return result | {"sentence": comparison_sentence(result)}


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def _p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def comparison_sentence(result: dict) -> str:
    """One line a person reads, e.g. "run 7 vs run 3: +1.8 points macro-F1 [-0.4, +4.0], McNemar
    p = 0.11: not a significant difference"; names the winner only when the difference is significant."""
    head = f"run {result['run_a']} vs run {result['run_b']}"
    if not result["comparable"]:
        return f"{head}: not comparable ({result['reason']})"
    lo, hi = result["macro_f1_diff_ci"]
    better = winner(result)
    verdict = "not a significant difference" if better is None else f"run {better} is significantly better"
    return (
        f"{head}: {_points(result['macro_f1_diff'])} points macro-F1 [{_points(lo)}, {_points(hi)}], "
        f"McNemar {_p_value(result['mcnemar_p'])}: {verdict}"
    )


def winner(result: dict) -> int | None:
    """The significantly better run of a comparison, or None (not comparable or not significant)."""
    if not result["comparable"] or not result["significant"]:
        return None
    return result["run_a"] if result["macro_f1_diff"] > 0 else result["run_b"]
