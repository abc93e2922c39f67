"""Export a trained run's model to ONNX or TorchScript, with a sidecar JSON and a parity check.

The exported graph takes a float32 batch ``(N, 3, S, S)`` already normalised (the sidecar says how)
and returns the logits ``(N, num_classes)`` only: the VAE's decoder is not part of it. The batch
axis is dynamic. Before the file is put in place it is run (onnxruntime, or the reloaded TorchScript
module) against the PyTorch model on real test images of the run's dataset; the export fails unless
every logit agrees within ``PARITY_TOLERANCE`` and every image gets the same top-1 class. The figures
are kept in the sidecar ``FILE.json`` beside the model (``docs/EXPORT.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from backend import config, store
from backend.data.dataset import scan_dataset
from backend.data.images import load_image_rgb
from backend.data.plotarea import input_shape, prepare_image
from backend.data.transforms import to_tensor_batch
from backend.predict import run_checkpoint
from backend.registry import Registry
from backend.training.checkpoint import CheckpointError, load_checkpoint, to_plain
from backend.training.config import resolve_dataset

PARITY_TOLERANCE = 1e-3  # max absolute logit difference, fp32
PARITY_IMAGES = 32  # test images compared, spread over the classes
ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "images", "logits"
PREPROCESSING_STEPS = (
    "RGB uint8 plot image (a CSV series is first drawn by backend.data.render.render_series, team style) "
    "-> resized to image_size rows x round(image_size * aspect) columns (the sidecar's input shape), "
    "the plot's own aspect not kept (PIL bilinear, antialiased)",
    " -> float /255 -> (x - mean) / std per channel -> NCHW float32",
)

CROP_NOTE = (
    "first cropped to the axes' data area (backend.data.plotarea.crop_plot_area, plot-area finder "
    "version {finder}: inside the frame found from its long straight lines{fallback}) "
)
LINE_FALLBACK_NOTE = "; without a frame, the drawn line's extent widened by 5% a side"

INK_NOTE = (
    " after thickening what is drawn by the squeeze factor (a grey-level minimum filter, a maximum "
    "one when the median grey level is under 128, over round(H / rows) x round(W / columns) "
    "pixels: backend.data.plotarea.apply_resize)"
)

POLARITY_NOTE = (
    "; after resizing, an image whose median grey level (mean of R, G, B) is under 128 is inverted "
    "(255 - x: dark themes become light; backend.data.plotarea.apply_polarity)"
)


def preprocessing_text(preprocessing: dict) -> str:
    """How an exporter's user must prepare an image, in words, for a checkpoint's ``preprocessing``:
    the crop before the resize, the inversion after it, as ``backend.data.plotarea.prepare_image``."""
    resize, normalise = PREPROCESSING_STEPS
    finder = preprocessing["finder"]
    fallback = LINE_FALLBACK_NOTE if finder >= 3 else ""
    crop = "" if preprocessing["crop"] == "none" else CROP_NOTE.format(finder=finder, fallback=fallback)
    ink = INK_NOTE if preprocessing["resize"] == "ink" else ""
    polarity = POLARITY_NOTE if preprocessing["polarity"] == "light" else ""
    return crop + resize + ink + polarity + normalise


EXPORT_FORMATS: Registry = Registry("export format")


class ExportError(ValueError):
    """An export that cannot be made or that fails its parity check, with what to do about it."""


class LogitsOnly(nn.Module):
    """A workbench model seen as ``images -> logits``: what the exported graph computes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)["logits"]


@dataclass(frozen=True)
class ExportFormat:
    """How one format is written and how the written file is run again for the parity check."""

    write: Callable[[nn.Module, Tensor, Path], dict]  # -> versions/settings for the sidecar
    load: Callable[[Path], Callable[[np.ndarray], np.ndarray]]  # file -> (batch float32 -> logits)
    runtime: str  # what the parity check runs the file with


@EXPORT_FORMATS.register("onnx")
def _onnx() -> ExportFormat:
    import onnx
    import onnxruntime

    def write(module: nn.Module, example: Tensor, path: Path) -> dict:
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=ONNX_OPSET,
            dynamic_shapes={"images": {0: batch}},
            external_data=False,
            dynamo=True,
            verbose=False,
        )
        program.save(str(path), external_data=False)
        return {"opset": ONNX_OPSET, "onnx_version": onnx.__version__}

    def load(path: Path) -> Callable[[np.ndarray], np.ndarray]:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda batch: session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    return ExportFormat(write, load, f"onnxruntime {onnxruntime.__version__}")


@contextlib.contextmanager
def _quiet_jit():
    """torch.jit warns that it is deprecated on every call, and the tracer that shape checks become
    constants (the batch axis still stays free); neither is news to someone who asked for TorchScript."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


@EXPORT_FORMATS.register("torchscript")
def _torchscript() -> ExportFormat:
    def write(module: nn.Module, example: Tensor, path: Path) -> dict:
        with torch.inference_mode(), _quiet_jit():
            traced = torch.jit.trace(module, example, check_trace=False)
            torch.jit.save(traced, str(path))
        return {}

    def load(path: Path) -> Callable[[np.ndarray], np.ndarray]:
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(batch)).numpy()

        return run

    return ExportFormat(write, load, f"torch.jit {torch.__version__}")


def parity_images(
    dataset: Path | str, image_size: int, limit: int = PARITY_IMAGES, preprocessing: dict | None = None
) -> tuple[np.ndarray, list[str]]:
    """Up to ``limit`` test images of ``dataset`` (taken in turn from each class), resized: ``(N, S, S, 3)``
    uint8 and their paths relative to the dataset root."""
    try:
        info = scan_dataset(resolve_dataset(str(dataset)))
    except (ValueError, OSError) as e:  # ConfigError, DatasetError
        raise ExportError(
            f"the parity check needs the run's test images, but {dataset} cannot be read ({e}); "
            "pass --data DIR to name a dataset folder with the same classes"
        ) from e
    by_class: dict[int, list] = {}
    for sample in sorted(info.test, key=lambda s: str(s.path)):
        by_class.setdefault(sample.label, []).append(sample)
    queues = list(by_class.values())
    images, files = [], []
    for sample in (q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)):
        try:
            images.append(prepare_image(load_image_rgb(sample.path), image_size, preprocessing))
        except (ValueError, OSError):
            continue  # an unreadable image is no test of the export; the next one is
        files.append(str(sample.path.relative_to(info.root)))
        if len(files) == limit:
            break
    if not files:
        raise ExportError(f"{info.root} has no readable test images for the parity check; pass --data DIR")
    return np.stack(images), files


def parity(reference: np.ndarray, exported: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> dict:
    """How the exported model's logits compare with PyTorch's on the same batch."""
    diff = float(np.abs(reference.astype(np.float64) - exported.astype(np.float64)).max())
    top1 = bool(np.array_equal(reference.argmax(1), exported.argmax(1)))
    return {
        "max_abs_logit_diff": diff,
        "tolerance": tolerance,
        "top1_agrees": top1,
        "passed": bool(diff < tolerance and top1),
    }


def _atomic_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def export_checkpoint(
    checkpoint_path: Path | str,
    fmt: str,
    out: Path | str,
    *,
    dataset: Path | str | None = None,
    run_id: int | None = None,
) -> dict:
    """Export the checkpoint to ``out`` in format ``fmt`` and write ``out + ".json"``; return the sidecar.

    ``dataset`` (default: the one the checkpoint's config trained on) supplies the parity images.
    Nothing is left at ``out`` when the parity check fails.
    """
    exporter = EXPORT_FORMATS.get(fmt)()
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a folder; give the file to write, e.g. {out / ('model.' + fmt)}")
    try:
        model, checkpoint = load_checkpoint(checkpoint_path)
    except CheckpointError as e:
        raise ExportError(str(e)) from e
    if checkpoint.get("input_kind", "image") != "image":  # series models (docs/TRAINING.md): not exported yet
        raise ExportError(f"{checkpoint['model_name']} is a series model; export covers image models only")
    size = int(checkpoint["image_size"])
    height, width = input_shape(size, checkpoint["preprocessing"])
    mean, std = checkpoint["normalization"]["mean"], checkpoint["normalization"]["std"]
    dataset = dataset or checkpoint["config"].get("data")
    if not dataset:
        raise ExportError("the checkpoint does not say which dataset it trained on; pass --data DIR")
    images, files = parity_images(dataset, size, preprocessing=checkpoint["preprocessing"])
    batch = to_tensor_batch(images, mean, std)
    module = LogitsOnly(model.float().eval()).eval()
    with torch.inference_mode():
        reference = module(batch).numpy()

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        settings = exporter.write(module, batch[:2].clone(), tmp)
        check = parity(reference, exporter.load(tmp)(batch.numpy()))
        if not check["passed"]:
            raise ExportError(
                f"the exported {fmt} model disagrees with PyTorch on {len(files)} test images "
                f"(max logit difference {check['max_abs_logit_diff']:.2e}, tolerance {PARITY_TOLERANCE:g}; "
                f"same top-1 on every image: {check['top1_agrees']}); nothing was written"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sidecar = to_plain(
        {
            "format": fmt,
            "file": out.name,
            "model_name": checkpoint["model_name"],
            "run_id": run_id if run_id is not None else checkpoint.get("run_id"),
            "epoch": checkpoint["epoch"],
            "class_names": checkpoint["class_names"],
            "image_size": size,
            "normalization": {"mean": mean, "std": std},
            "preprocessing": preprocessing_text(checkpoint["preprocessing"]),
            "crop": checkpoint["preprocessing"]["crop"],
            "polarity": checkpoint["preprocessing"]["polarity"],
            "plot_area_finder": checkpoint["preprocessing"]["finder"],
            "resize": checkpoint["preprocessing"]["resize"],
            "aspect": checkpoint["preprocessing"]["aspect"],
            "input": {"name": INPUT_NAME, "shape": ["batch", 3, height, width], "dtype": "float32"},
            "output": {
                "name": OUTPUT_NAME,
                "shape": ["batch", len(checkpoint["class_names"])],
                "meaning": "logits; softmax(logits / temperature) gives the probabilities",
            },
            "temperature": checkpoint.get("temperature"),
            "torch_version": torch.__version__,
            **settings,
            "parity": {"runtime": exporter.runtime, "dataset": str(dataset), "images": len(files), **check},
        }
    )
    _atomic_json(sidecar_path(out), sidecar)
    return sidecar


def sidecar_path(model_file: Path | str) -> Path:
    """``FILE.json`` beside the exported ``FILE``."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.name + ".json")


def export_run(run_id: int, fmt: str, out: Path | str, *, dataset: Path | str | None = None) -> dict:
    """Export run ``run_id``'s best checkpoint; the parity images come from the run's dataset by default."""
    path = run_checkpoint(run_id)
    return export_checkpoint(path, fmt, out, dataset=dataset or store.get_run(int(run_id)).dataset, run_id=run_id)


def run_export_path(run_id: int, fmt: str) -> Path:
    """Where the dashboard keeps a run's export: ``artifacts/runs/<id>/export/model.<format>``."""
    EXPORT_FORMATS.get(fmt)
    return config.run_dir(int(run_id)) / "export" / f"model.{fmt}"
