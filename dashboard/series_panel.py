"""Predict page helpers for series models: which runs read CSVs, and the image + series ensemble.

A run's input kind comes from its model's registry entry (``backend.models.model_input_kind``):
``series_cnn`` runs read CSV series, and plot images through their line read back into a series
(``backend.data.digitize``); image runs read images and CSVs (drawn as plots). When the store holds
completed runs of both kinds, the page offers a partner run of the other kind: the two then answer
each file with the mean of their calibrated probabilities (``EnsemblePredictor``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import loaders, widgets


def run_input_kind(model: str) -> str:
    """``"series"`` or ``"image"`` for a run's model name ("image" for a name no longer registered)."""
    from backend.models import model_input_kind

    try:
        return model_input_kind(str(model))
    except ValueError:
        return "image"


def ensemble_partner(completed: pd.DataFrame, run_id: int, url: str) -> int | None:
    """A selectbox of completed runs of the other input kind (None = no ensemble); None when there are none."""
    if completed.empty or "model" not in completed.columns:
        return None
    kinds = completed["model"].map(run_input_kind)
    this_kind = kinds[completed["id"] == run_id]
    if this_kind.empty:
        return None
    others = completed[kinds != this_kind.iloc[0]]
    if others.empty:
        return None
    labels = {None: "no ensemble", **{int(r["id"]): widgets.run_label(r) for _, r in others.iterrows()}}
    other = "series" if this_kind.iloc[0] == "image" else "image"
    return st.selectbox(
        f"Ensemble with a {other} run",
        list(labels),
        format_func=labels.__getitem__,
        key="predict_ensemble",
        help="Answer each file with the mean of the two runs' calibrated probabilities (docs/TRAINING.md). "
        "For a plot image the series run reads the plot's line back into a series (docs/DIGITIZE.md); "
        "when no line can be read, the image run answers alone and says so.",
    )


@st.cache_resource(max_entries=2, show_spinner="Loading the two models...")
def ensemble(run_a: int, run_b: int, stamp: tuple[float, float]):
    """A loaded ``EnsemblePredictor`` of two runs, shared by every session (read-only after loading)."""
    from backend.predict_series import open_ensemble

    return open_ensemble(int(run_a), int(run_b))


def load_ensemble(run_a: int, run_b: int, url: str):
    """``ensemble`` keyed by both checkpoints' modification times (a newer best.pt loads afresh)."""
    paths = [loaders.checkpoint_path(loaders.run_record(run, url)) for run in (run_a, run_b)]
    return ensemble(run_a, run_b, tuple(loaders.mtime(p) if p else 0.0 for p in paths))


def predict_options(predictor) -> dict:
    """Extra ``iter_files`` options: a series model draws each CSV so the page can show it."""
    from backend.predict_series import SeriesPredictor

    return {"draw": True} if isinstance(predictor, SeriesPredictor) else {}
