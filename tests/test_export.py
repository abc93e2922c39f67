"""Export: real runs of each model family to ONNX and TorchScript, reloaded and run on real test images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import onnxruntime
import pytest
import torch

from backend import store
from backend.config import REPO_ROOT
from backend.data.plotarea import PLOT_AREA_VERSION
from backend.data.transforms import to_tensor_batch
from backend.export import PARITY_TOLERANCE, ExportError, export_checkpoint, export_run, parity, parity_images
from backend.predict import run_checkpoint
from backend.training.checkpoint import load_checkpoint
from tests.fixtures.cli import run_cli

SIDECAR_FIELDS = {
    "format",
    "model_name",
    "run_id",
    "class_names",
    "image_size",
    "normalization",
    "preprocessing",
    "temperature",
    "torch_version",
    "input",
    "output",
    "parity",
}


def _reference(run_id: int, dataset) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's logits for the parity images, and the normalised batch they came from."""
    model, checkpoint = load_checkpoint(run_checkpoint(run_id))
    images, _ = parity_images(dataset, checkpoint["image_size"])
    norm = checkpoint["normalization"]
    batch = to_tensor_batch(images, norm["mean"], norm["std"])
    with torch.inference_mode():
        return model(batch)["logits"].numpy(), batch.numpy()


def _run_exported(fmt: str, path, batch: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == ["logits"]  # the VAE's decoder is not exported
        return session.run(None, {"images": batch})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path))
    with torch.inference_mode():
        return module(torch.from_numpy(batch)).numpy()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("model", ["visual_cnn", "vae_classifier", "resnet50"])
def test_export_matches_pytorch_and_records_it(completed_runs, tiny_dataset, tmp_path, model, fmt):
    run_id = completed_runs[model]
    out = tmp_path / f"{model}.{fmt}"
    sidecar = export_run(run_id, fmt, out)

    reference, batch = _reference(run_id, tiny_dataset)
    for rows in (batch, batch[:1]):  # the batch axis is dynamic: the full batch and a single image
        exported = _run_exported(fmt, out, rows)
        assert exported.shape == (len(rows), 9)
        assert np.abs(exported - reference[: len(rows)]).max() < PARITY_TOLERANCE
        assert np.array_equal(exported.argmax(1), reference[: len(rows)].argmax(1))

    on_disk = json.loads((tmp_path / f"{model}.{fmt}.json").read_text())
    assert on_disk == sidecar
    assert SIDECAR_FIELDS <= set(on_disk)
    assert on_disk["model_name"] == model and on_disk["run_id"] == run_id and on_disk["format"] == fmt
    assert on_disk["class_names"] == sorted(p.name for p in (tiny_dataset / "test").iterdir())
    assert on_disk["image_size"] == 32 and len(on_disk["normalization"]["mean"]) == 3
    assert on_disk["temperature"] == pytest.approx(store.get_run(run_id).temperature)  # fitted on validation
    check = on_disk["parity"]
    assert check["images"] == 27 and check["passed"] and check["top1_agrees"]  # 3 test images x 9 classes
    assert check["max_abs_logit_diff"] < PARITY_TOLERANCE
    assert ("opset" in on_disk) == (fmt == "onnx")
    steps = store.get_run(run_id).config  # the sidecar says how the run prepared its images
    assert (on_disk["crop"], on_disk["polarity"]) == (steps["crop"], steps["polarity"])
    assert ("cropped to the axes" in on_disk["preprocessing"]) == (steps["crop"] == "plot_area")
    assert ("is inverted" in on_disk["preprocessing"]) == (steps["polarity"] == "light")
    assert on_disk["resize"] == steps["resize"] == "bilinear" and "thickening" not in on_disk["preprocessing"]
    assert on_disk["plot_area_finder"] == PLOT_AREA_VERSION  # a new run: this build's finder, as it trained
    if steps["crop"] == "plot_area":
        assert f"finder version {PLOT_AREA_VERSION}" in on_disk["preprocessing"] and "line's extent" in on_disk["preprocessing"]


def test_export_records_the_checkpoint_temperature(completed_runs, tmp_path):
    checkpoint = torch.load(run_checkpoint(completed_runs["visual_cnn"]), weights_only=True)
    checkpoint["temperature"] = 1.7
    path = tmp_path / "calibrated.pt"
    torch.save(checkpoint, path)
    sidecar = export_checkpoint(path, "torchscript", tmp_path / "calibrated.torchscript")
    assert sidecar["temperature"] == 1.7


def test_parity_fails_on_a_changed_logit_or_top1():
    reference = np.array([[2.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    assert parity(reference, reference + 1e-5)["passed"]
    assert not parity(reference, reference + 2e-3)["passed"]
    swapped = reference.copy()
    swapped[0] = [1.0, 1.0005]
    result = parity(reference, swapped)
    assert not result["passed"] and not result["top1_agrees"]


def test_export_without_its_dataset_says_to_pass_data(completed_runs, tmp_path):
    checkpoint = run_checkpoint(completed_runs["visual_cnn"])
    with pytest.raises(ExportError, match="--data"):
        export_checkpoint(checkpoint, "onnx", tmp_path / "m.onnx", dataset=tmp_path / "nowhere")
    assert not any(tmp_path.glob("m.onnx*"))


def test_export_cli_writes_the_files_and_refuses_bad_input(completed_runs, tmp_path):
    """One real ``python -m backend export`` child (exit status, JSON on stdout, files on disk); the
    refusals go through the same CLI ``main`` in this process (tests/fixtures/cli.py)."""
    out = tmp_path / "cnn.onnx"
    done = subprocess.run(
        [sys.executable, "-m", "backend", "export", "--run", str(completed_runs["visual_cnn"]), "--format", "onnx",
         "--out", str(out), "--json"], cwd=REPO_ROOT, env=os.environ.copy(), capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["parity"]["passed"] and out.is_file()

    missing = run_cli("export", "--run", "9999", "--format", "onnx", "--out", str(tmp_path / "x.onnx"))
    assert missing.returncode == 2 and missing.stderr.strip() == "error: run 9999 not found"
    assert not any(tmp_path.glob("x.onnx*"))
    bad_format = run_cli("export", "--run", "1", "--format", "tflite", "--out", str(tmp_path / "x"))
    assert bad_format.returncode == 2 and "invalid choice" in bad_format.stderr


def test_the_predict_page_exports_onnx_and_offers_it(completed_runs, tiny_dataset, monkeypatch):
    from backend.export import run_export_path
    from tests.test_pages import open_page

    monkeypatch.setenv("DATA_DIR", str(tiny_dataset.parent))
    run_id = completed_runs["vae_classifier"]
    at = open_page("predict")
    at.selectbox(key="predict_run").set_value(run_id).run()
    keys = {button.proto.id for button in at.get("download_button")}
    assert any("download_checkpoint" in key for key in keys) and not any("download_onnx" in key for key in keys)
    at.button(key="export_onnx").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert run_export_path(run_id, "onnx").is_file()
    keys = {button.proto.id for button in at.get("download_button")}
    assert any("download_onnx" in key for key in keys) and any("download_onnx_sidecar" in key for key in keys)


def test_the_ink_resize_is_written_out_for_an_exporters_user():
    from backend.export import preprocessing_text

    steps = {"crop": "plot_area", "polarity": "light", "finder": 3, "resize": "ink"}
    text = preprocessing_text(steps)
    assert "thickening what is drawn by the squeeze factor" in text and "minimum filter" in text
    assert text.index("cropped") < text.index("thickening") < text.index("is inverted")  # the order applied
    assert "thickening" not in preprocessing_text({**steps, "resize": "bilinear"})
