"""Predict page extras: take the model out (``best.pt``, a parity-checked ONNX export) and Grad-CAM
overlays of the predicted files. Kept apart from the page script, which calls each in one line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st


def model_downloads(run_id: int, checkpoint: Path) -> None:
    """Download buttons for the run's ``best.pt`` and its ONNX export (made here on request)."""
    from backend.export import export_run, run_export_path, sidecar_path

    with st.expander("Download the model", icon=":material/download:"):
        st.download_button(
            "best.pt (PyTorch checkpoint)",
            data=checkpoint.read_bytes,  # read only when clicked: a ResNet50 checkpoint is 100 MB
            file_name=f"run{run_id}_best.pt",
            mime="application/octet-stream",
            on_click="ignore",
            icon=":material/download:",
            key="download_checkpoint",
        )
        onnx = run_export_path(run_id, "onnx")
        sidecar = sidecar_path(onnx)
        current = onnx.is_file() and sidecar.is_file() and onnx.stat().st_mtime >= checkpoint.stat().st_mtime
        if not current:
            st.caption("The ONNX export is checked against PyTorch on the run's test images before it is offered.")
            if st.button("Export to ONNX", key="export_onnx", icon=":material/output:"):
                try:
                    with st.spinner("Exporting and checking against PyTorch..."):
                        export_run(run_id, "onnx", onnx)
                except (ValueError, OSError) as e:
                    st.error(f"Export failed: {e}", icon=":material/error:")
                    return
                st.rerun()
            return
        st.caption(_parity_line(sidecar))
        left, right = st.columns(2)
        left.download_button(
            "model.onnx",
            data=onnx.read_bytes,
            file_name=f"run{run_id}.onnx",
            mime="application/octet-stream",
            on_click="ignore",
            icon=":material/download:",
            key="download_onnx",
        )
        right.download_button(
            "model.onnx.json (classes, preprocessing, parity)",
            data=sidecar.read_bytes,
            file_name=f"run{run_id}.onnx.json",
            mime="application/json",
            on_click="ignore",
            icon=":material/download:",
            key="download_onnx_sidecar",
        )


def _parity_line(sidecar: Path) -> str:
    import json

    check = json.loads(sidecar.read_text())["parity"]
    return (
        f"Checked with {check['runtime']} on {check['images']} test images: largest logit difference "
        f"{check['max_abs_logit_diff']:.1e} (tolerance {check['tolerance']:g}), same class on every image."
    )


def gradcam_overlays(predictor, predictions: Sequence) -> None:
    """A toggle that paints each predicted file's Grad-CAM (evidence for its predicted class) over it."""
    from backend.explain import explain_images

    if not st.toggle(
        "Show Grad-CAM",
        key="predict_gradcam",
        help="Where in each plot the model found the evidence for the class it predicted (docs/EXPLAIN.md).",
    ):
        return
    readable = [p for p in predictions if p.error is None]
    if not readable:
        return
    try:
        with st.spinner("Computing Grad-CAM..."):
            explanations = explain_images(predictor, [p.image for p in readable], [p.filename for p in readable])
    except ValueError as e:
        st.error(f"Grad-CAM is not available for this model: {e}", icon=":material/error:")
        return
    columns = st.columns(3)
    for position, explanation in enumerate(explanations):
        columns[position % 3].image(
            explanation.overlay(), caption=f"{explanation.filename}: evidence for {explanation.target}", width="stretch"
        )
