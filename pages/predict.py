"""Predict: upload plot images or CSV series, pick a run and a TTA mode, get a class for each file."""

import pandas as pd
import streamlit as st

from backend.data.dataset import IMAGE_EXTENSIONS
from backend.data.inputs import CSV_EXTENSIONS
from backend.data.transforms import TTA_MODES
from backend.predict import PredictError, Prediction
from dashboard import charts, loaders, model_panel, series_panel, widgets
from dashboard.setup import setup_page

setup_page(
    "Predict",
    "Upload plot images or raw CSV series (many at once). A CSV is drawn by the same renderer as the "
    "training plots, then classified like an image; a series run (series_cnn) reads the CSV's numbers "
    "directly (and a plot image's line, read back into a series), and can be paired with an image run as "
    "an ensemble. Each answer says how far to "
    "trust it: a file is marked uncertain, with the reason, when its calibrated confidence is low, its "
    "views disagree or it looks unlike the training set.",
)

url = loaders.store_url()
runs = loaders.all_runs(url)
completed = runs[runs["status"] == "completed"] if not runs.empty else runs
if completed.empty:
    widgets.no_runs_yet("Nothing to predict with")
    st.stop()

pick, mode = st.columns([3, 1])
with pick:
    run_id = widgets.run_picker(completed, key="predict_run", label="Model (a completed run)")
with mode:
    tta = st.segmented_control(
        "Test-time augmentation",
        sorted(TTA_MODES.names(), key=lambda name: name != "none"),
        default="none",
        key="predict_tta",
        required=True,
        help="flip4 averages the original, horizontal, vertical and both flips (one batch); "
        "for a series model: the series, reversed in time, negated, and both.",
    )

record = loaders.run_record(run_id, url)
checkpoint = loaders.checkpoint_path(record)
if checkpoint is None:
    st.warning(
        f"Run #{run_id} has no checkpoint on disk, so it cannot predict. Pick another run.", icon=":material/warning:"
    )
    st.stop()
model_panel.model_downloads(run_id, checkpoint)

files = st.file_uploader(
    "Images (PNG, JPG, BMP, WebP) or CSV series",
    type=[ext.lstrip(".") for ext in IMAGE_EXTENSIONS + CSV_EXTENSIONS],
    accept_multiple_files=True,
    key="predict_files",
)
if not files:
    st.info("Drop files above to classify them.", icon=":material/upload_file:")
    st.stop()

partner = series_panel.ensemble_partner(completed, run_id, url)  # series models: an image+series ensemble
try:
    if partner is None:
        predictor = loaders.predictor(run_id, str(checkpoint), loaders.mtime(checkpoint))
    else:
        predictor = series_panel.load_ensemble(run_id, partner, url)
except PredictError as e:
    st.error(f"Cannot load run #{run_id}{f' with run #{partner}' if partner else ''}: {e}", icon=":material/error:")
    st.stop()
st.caption(predictor.describe())


def result_row(prediction: Prediction) -> dict:
    """One results-table row: the answer, or the error in its place (``prob_<class>`` for the download)."""
    top = prediction.top(3)
    return {
        "file": prediction.filename,
        "predicted": prediction.predicted or "",
        "confidence": prediction.confidence if prediction.error is None else None,
        "uncertain": prediction.uncertain if prediction.error is None else None,
        "uncertain_reason": prediction.uncertain_reason,
        "runners-up": ", ".join(f"{name} ({p:.1%})" for name, p in top[1:]),
        "notes": "; ".join(prediction.notes),
        "error": prediction.error or "",
        "tta_agreement": prediction.tta_agreement,
        "tta_spread": prediction.tta_spread,
        "feature_distance": prediction.feature_distance,
        **{f"prob_{name}": p for name, p in prediction.probabilities.items()},
    }


DOWNLOAD_ONLY = ("tta_agreement", "tta_spread", "feature_distance")


def draw_table(rows: list[dict]) -> pd.DataFrame:
    """The results table as it stands (files not yet answered show as pending); returns every column."""
    everything = pd.DataFrame(rows)
    shown = [c for c in everything.columns if not c.startswith("prob_") and c not in DOWNLOAD_ONLY]
    table = everything[shown]
    failed = table["error"].ne("").any()
    table_slot.dataframe(
        table if failed else table.drop(columns="error"),  # the error column only when a file failed
        hide_index=True,
        column_config={
            "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0, max_value=1)
        },
    )
    return everything


st.subheader("Results")
caption = st.empty()
progress = st.progress(0.0, text=f"Predicting {len(files)} file(s)...")
table_slot = st.empty()
# Files are decoded in worker processes, each within a time budget, and answered as soon as each is
# known, so one slow or hostile file never holds back the table.
rows = [{"file": f.name, "predicted": "pending...", "confidence": None, "error": ""} for f in files]
draw_table(rows)
predictions = []
for position, prediction in enumerate(
    predictor.iter_files([(f.name, f.getvalue()) for f in files], tta=tta, **series_panel.predict_options(predictor))
):
    predictions.append(prediction)
    rows[position] = result_row(prediction)
    progress.progress((position + 1) / len(files), text=f"{position + 1} of {len(files)} file(s) answered")
    everything = draw_table(rows)
progress.empty()
ok = everything["error"] == ""
caption.caption(f"{int(ok.sum())} of {len(everything)} file(s) predicted with run #{run_id}, TTA {tta}.")
st.download_button(
    "Download results (CSV)",
    everything.to_csv(index=False).encode(),
    file_name=f"predictions_run{run_id}_{tta}.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
    key="predict_download",
)

st.subheader("Per file")
for position, prediction in enumerate(predictions):
    with st.container(border=True, key=f"prediction_{position}"):
        if prediction.error is not None:
            st.markdown(f"**{prediction.filename}**")
            st.error(prediction.error, icon=":material/error:")
            continue
        has_recon = prediction.reconstruction is not None
        cells = st.columns([3, 3, 2] if has_recon else [3, 3])
        cells[0].image(prediction.image, caption="classified image", width="stretch")
        with cells[1]:
            st.markdown(f"**{prediction.filename}**")
            if prediction.uncertain:  # no large headline for an answer not to be trusted
                st.badge("uncertain", icon=":material/help:", color="orange")
                st.markdown(f"Best guess: {prediction.predicted} ({prediction.confidence:.1%} calibrated confidence)")
                st.warning(f"Uncertain: {prediction.uncertain_reason}", icon=":material/help:")
            else:
                st.metric(
                    "Predicted",
                    prediction.predicted,
                    delta=f"{prediction.confidence:.1%} confidence",
                    delta_color="off",
                    delta_arrow="off",
                )
            if prediction.tta_agreement is not None and prediction.n_views > 1:
                st.caption(
                    f"{round(prediction.tta_agreement * prediction.n_views)}/{prediction.n_views} views vote "
                    f"{prediction.predicted} (probability spread {prediction.tta_spread:.2f})"
                )
            st.altair_chart(charts.probability_bars(prediction.probabilities), width="stretch")
            for note in prediction.notes:
                st.caption(note)
        if has_recon:
            cells[2].image(prediction.reconstruction, caption="VAE reconstruction", width="stretch")

if getattr(predictor, "input_kind", "image") == "image":  # Grad-CAM explains image models only
    model_panel.gradcam_overlays(predictor, predictions)
