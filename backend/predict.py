"""Prediction: a trained checkpoint answers for new plot images and raw CSV series.

A ``Predictor`` loads one checkpoint once (``weights_only=True``) and is safe to share between
threads (the dashboard caches it with ``st.cache_resource``): after construction nothing on it
changes, and every call runs under ``torch.inference_mode``.

The path of a file to a class:

    image file -> load_image_rgb -> prepare_image (plot-area crop as trained, resize) -> normalise
    CSV file   -> read_series_csv -> render_series (team style) -> the same as an image
               -> TTA views of the whole batch, one forward pass -> softmax(logits / T) averaged over views

``T`` is the temperature fitted on validation at the end of training (1.0 for older checkpoints),
so ``confidence`` is calibrated. Every prediction also says how far to trust it
(``docs/UNCERTAINTY.md``): the share of views voting the top class (``tta_agreement``; a CSV adds
its series drawn in other plotting styles, "style TTA"), the spread of the top class's probability
across views, the distance to the training set in the model's penultimate feature space, and
``uncertain`` with a reason when a threshold from the checkpoint is crossed.

Images become model input through the same two functions as at training, and CSVs are drawn by the
renderer that drew the training plots, so a generated CSV and its PNG predict alike.
``evaluate_folder`` runs the same path over a labelled folder and scores it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from backend import store
from backend.data.dataset import file_sha256, scan_dataset
from backend.data.inputs import FILE_TIME_BUDGET_S, display_name, load_batches, one_line
from backend.data.plotarea import input_shape, prepare_image, preprocessing_of, size_text
from backend.data.render import STYLE_TTA_COUNT, render_series
from backend.data.transforms import to_pixels, to_tensor_batch, tta_view_count, tta_views
from backend.device import Runtime, make_runtime
from backend.errors import WorkbenchError
from backend.evaluation.calibration import expected_calibration_error
from backend.evaluation.ood import UncertaintyPolicy, feature_distance
from backend.evaluation.stats import bootstrap_metrics
from backend.runs.processes import this_host
from backend.training.checkpoint import CheckpointError, load_checkpoint
from backend.training.metrics import eval_report

# bf16 autocast is kept only if, on the probe plots, it picks the same classes as fp32 and no
# probability moves by more than this.
PRECISION_TOLERANCE = 0.02


class PredictError(WorkbenchError, ValueError):
    """A checkpoint, run or dataset that cannot be used, with a message a user can act on."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing pixel arrays with == has no single truth value
class Prediction:
    """The answer for one input; ``error`` is set (and the rest empty) when the input failed."""

    filename: str
    predicted: str | None = None
    confidence: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)  # every class, checkpoint order
    image: np.ndarray | None = None  # (H, W, 3) uint8: what was classified (the drawn plot for a CSV)
    reconstruction: np.ndarray | None = None  # (S, S, 3) uint8: the VAE's reconstruction, else None
    notes: list[str] = field(default_factory=list)  # what was done to the input (NaNs dropped, ...)
    error: str | None = None
    tta_agreement: float | None = None  # share of views (flip TTA, style TTA) voting the top class
    tta_spread: float | None = None  # max - min of the top class's probability across those views
    n_views: int = 0
    feature_distance: float | None = None  # Mahalanobis distance to the training set; None: no statistics
    uncertain: bool = False
    uncertain_reason: str = ""  # "; "-joined reasons, empty when certain

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first."""
        return sorted(self.probabilities.items(), key=lambda item: item[1], reverse=True)[:k]

    def to_dict(self, top_k: int = 3) -> dict:
        """JSON-able summary (no pixels): what the CLI prints and the dashboard tabulates."""
        return {
            "filename": self.filename,
            "predicted": self.predicted,
            "confidence": self.confidence,
            "top": [{"class": name, "probability": p} for name, p in self.top(top_k)],
            "probabilities": self.probabilities,
            "tta_agreement": self.tta_agreement,
            "tta_spread": self.tta_spread,
            "n_views": self.n_views,
            "feature_distance": self.feature_distance,
            "uncertain": self.uncertain,
            "uncertain_reason": self.uncertain_reason,
            "notes": self.notes,
            "error": self.error,
        }


@dataclass
class EvaluationResult:
    """A checkpoint scored on a labelled folder; ``metrics()`` is what the store keeps."""

    dataset: str
    split: str  # "test" (the folder had train/ and test/) or "all" (a plain class-per-folder set)
    tta: str
    class_names: list[str]
    n_samples: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: list[dict]  # class_name, precision, recall, f1, support
    confusion: np.ndarray  # rows = true class, columns = predicted
    predictions: pd.DataFrame  # file, item_hash, true, predicted, confidence, prob_<class>...
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) for unreadable images
    intervals: dict = field(default_factory=dict)  # backend.evaluation.stats.bootstrap_metrics(...)
    ece: float | None = None  # expected calibration error (15 bins) of the predicted probabilities

    def metrics(self) -> dict:
        """What the store keeps: headline figures, their bootstrap intervals and the ECE."""
        intervals = {key: value for key, value in self.intervals.items() if key not in {"accuracy", "macro_f1", "n"}}
        return {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "n_samples": self.n_samples,
            "ece": self.ece,
            **intervals,
        }

    def prediction_rows(self) -> list[dict]:
        """Per-file rows for ``store.save_predictions`` (paths relative to the evaluated folder)."""
        names = self.class_names
        probs = _probability_matrix(self.predictions, names)
        return [
            {
                "item_hash": row.item_hash,
                "path": row.file,
                "true_index": names.index(row.true),
                "pred_index": names.index(row.predicted),
                "probs": p.tolist(),
                "confidence": float(row.confidence),
            }
            for row, p in zip(self.predictions.itertuples(index=False), probs, strict=True)
        ]

    def to_dict(self) -> dict:
        """JSON-able form (the predictions table is left out; it can be thousands of rows)."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "tta": self.tta,
            **self.metrics(),
            "class_names": self.class_names,
            "per_class": self.per_class,
            "confusion": self.confusion.tolist(),
            "skipped": [{"file": name, "error": why} for name, why in self.skipped],
        }


# --- the predictor -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _probe_plots() -> tuple[np.ndarray, ...]:
    """One generated team-style plot per synthetic class: what the bf16 check compares on."""
    from backend.data.series import CLASSES, generate_series

    rng = np.random.default_rng(0)
    return tuple(render_series(generate_series(name, rng).values) for name in CLASSES)


def precision_agrees(reference: np.ndarray, candidate: np.ndarray, tolerance: float = PRECISION_TOLERANCE) -> bool:
    """True when ``candidate`` probabilities pick the same class as ``reference`` for every row and
    no probability differs by more than ``tolerance``."""
    same_class = np.array_equal(reference.argmax(1), candidate.argmax(1))
    return bool(same_class and np.abs(reference - candidate).max() <= tolerance)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_checkpoint(run_id: int) -> Path:
    """The best checkpoint of run ``run_id``; ``PredictError`` for a missing run or one without a checkpoint."""
    try:
        run = store.get_run(int(run_id))
    except store.RunNotFound as e:
        raise PredictError(f"run {run_id} not found") from e
    if not run.checkpoint_path:
        status = f"{run.status}: {run.error}" if run.error else run.status
        raise PredictError(f"run {run_id} has no checkpoint yet (status: {status})")
    if not Path(run.checkpoint_path).is_file():
        if run.host and run.host != this_host():
            raise PredictError(
                f"run {run_id}'s checkpoint {run.checkpoint_path} was written on host {run.host} and is not "
                f"reachable on this host ({this_host()}): ARTIFACTS_DIR must be shared storage mounted at the "
                "same path on every host (docs/TEAM.md), or copy the run's folder here"
            )
        raise PredictError(f"run {run_id}'s checkpoint {run.checkpoint_path} is missing (moved or deleted?)")
    return Path(run.checkpoint_path)


class CheckpointLoader:
    """``from_checkpoint`` / ``from_run`` for a predictor built as ``cls(model, checkpoint, runtime, run_id=)``
    (the image ``Predictor`` and ``backend.predict_series.SeriesPredictor``)."""

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str = "auto", precision: str = "auto", *,
                        run_id: int | None = None):  # fmt: skip
        """Load a checkpoint file (``best.pt`` / ``last.pt``); ``PredictError`` if it isn't one."""
        try:
            model, checkpoint = load_checkpoint(path)
        except CheckpointError as e:
            raise PredictError(one_line(e)) from e
        return cls(model, checkpoint, make_runtime(device, precision), run_id=run_id)

    @classmethod
    def from_run(cls, run_id: int, device: str = "auto", precision: str = "auto"):
        """Load a run's best checkpoint; ``PredictError`` for a missing run or one without a checkpoint."""
        return cls.from_checkpoint(run_checkpoint(run_id), device, precision, run_id=int(run_id))


class Predictor(CheckpointLoader):
    """One loaded checkpoint that predicts images and CSV series, optionally with TTA.

    Attributes: ``class_names``, ``model_name``, ``image_size``, ``input_shape`` ((height, width) of
    the model's input: ``image_size`` square unless the run trained at another aspect), ``run_id`` (None when loaded from a
    bare checkpoint file), ``runtime`` (device and precision actually used).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        checkpoint: dict,
        runtime: Runtime,
        *,
        run_id: int | None = None,
        check_precision: bool = True,
    ):
        """``check_precision=False`` keeps ``runtime``'s autocast unchecked (benchmarks of untrained
        weights, whose near-uniform probabilities would always fail the bf16 check)."""
        if checkpoint.get("input_kind", "image") != "image":  # series models: backend/predict_series.py
            raise PredictError(f"{checkpoint['model_name']} is a series model: it reads CSV series, not images; "
                               "this needs an image run (backend.predict_series.open_run loads either)")  # fmt: skip
        self.class_names: list[str] = list(checkpoint["class_names"])
        self.model_name: str = checkpoint["model_name"]
        self.image_size: int = int(checkpoint["image_size"])
        self.mean = tuple(float(v) for v in checkpoint["normalization"]["mean"])
        self.std = tuple(float(v) for v in checkpoint["normalization"]["std"])
        self.preprocessing = preprocessing_of(checkpoint)  # {"crop": ...}: as the run trained
        self.input_shape: tuple[int, int] = input_shape(self.image_size, self.preprocessing)  # (height, width)
        self.run_id = run_id
        self.temperature = float(checkpoint.get("temperature") or 1.0)
        self.policy = UncertaintyPolicy.from_checkpoint(checkpoint)
        self.feature_stats: dict | None = (checkpoint.get("uncertainty") or {}).get("ood") or None
        model = model.to(runtime.device).eval()
        self.model = model.to(memory_format=torch.channels_last) if runtime.channels_last else model
        # a model with a decoder (the VAE) can decode only the images as given, not every TTA view
        self.decodes_first = "decode_first" in inspect.signature(model.forward).parameters
        self.runtime = self._checked_runtime(runtime) if check_precision else runtime

    def describe(self) -> str:
        source = f"run {self.run_id}" if self.run_id is not None else "checkpoint"
        return (
            f"{source}: {self.model_name}, {len(self.class_names)} classes, {size_text(*self.input_shape)}, "
            f"{self.runtime.describe()}"
        )

    def _checked_runtime(self, runtime: Runtime) -> Runtime:
        """Keep reduced-precision autocast only if it gives fp32's answers on the probe plots."""
        if runtime.dtype is None:
            return runtime
        fp32 = dataclasses.replace(runtime, dtype=None)
        probe = np.stack([self.prepare(image) for image in _probe_plots()])
        reference, _ = self._forward(probe, "none", fp32)
        candidate, _ = self._forward(probe, "none", runtime)
        return runtime if precision_agrees(reference, candidate) else fp32

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One decoded (H, W, 3) uint8 image -> the model's input: cropped as the run trained, resized.
        Every image path goes through here."""
        return prepare_image(image, self.image_size, self.preprocessing)

    def _forward(self, images: np.ndarray, tta: str, runtime: Runtime) -> tuple[np.ndarray, np.ndarray | None]:
        """All TTA views of the batch in one forward pass; calibrated softmax averaged over the views."""
        views, _, recon = self._forward_views(images, tta, runtime)
        return views.mean(axis=0), recon

    def _forward_views(
        self, images: np.ndarray, tta: str, runtime: Runtime
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """One forward pass over every TTA view of the batch: per-view calibrated probabilities
        (V, N, C), the penultimate features of the images as given (N, D; None if the model has
        none) and the VAE's reconstructions (or None)."""
        n_views, n = tta_view_count(tta), len(images)
        with torch.inference_mode():
            batch = to_tensor_batch(images, self.mean, self.std, runtime.device, runtime.channels_last)
            with runtime.autocast():
                decode = {"decode_first": n} if self.decodes_first else {}  # view 0 is the image as given
                outputs = self.model(tta_views(batch, tta), **decode)
            logits = outputs["logits"].float() / self.temperature
            probabilities = logits.softmax(dim=1).reshape(n_views, n, -1)
            features = outputs.get("features")
            features = None if features is None else features[:n].float().cpu().numpy()
            recon = outputs.get("recon")
            recon = None if recon is None else self._to_uint8(recon[:n])
        return probabilities.cpu().numpy(), features, recon

    def _to_uint8(self, normalised: torch.Tensor) -> np.ndarray:
        """Undo the checkpoint's normalisation: (N, 3, H, W) -> (N, H, W, 3) uint8."""
        pixels = to_pixels(normalised, self.mean, self.std).mul(255).round()
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def predict_batch(self, images: np.ndarray, tta: str = "none") -> tuple[np.ndarray, np.ndarray | None]:
        """Model-sized images (N, H, W, 3) uint8 (``input_shape``) -> (probabilities (N, C),
        reconstructions or None)."""
        expected = (*self.input_shape, 3)
        if images.ndim != 4 or images.shape[1:] != expected or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (N, {', '.join(map(str, expected))}), got {images.shape}")
        return self._forward(images, tta, self.runtime)

    def _predictions(
        self,
        names: Sequence[str],
        images: Sequence[np.ndarray],
        notes: Sequence[list[str]],
        tta: str,
        style_views: Sequence[Sequence[np.ndarray]] | None = None,
        doubts: Sequence[Sequence[str]] | None = None,
    ) -> list[Prediction]:
        """One batch of decoded images (any size) -> Predictions, each keeping its image and notes.

        ``style_views[i]`` are image i's other renderings (a CSV drawn in other styles): they vote
        in ``tta_agreement`` and ``tta_spread`` but leave the answer and its confidence alone, so a
        CSV still predicts as its team-style PNG does. ``doubts[i]`` are what the file itself says
        against any answer (``LoadedInput.doubts``: axes with no series line): each makes the answer
        uncertain, after the model's own signals."""
        prepared = np.stack([self.prepare(image) for image in images])
        views, features, recon = self._forward_views(prepared, tta, self.runtime)
        probabilities = views.mean(axis=0)
        extra = [list(v) for v in style_views] if style_views is not None else [[] for _ in images]
        if any(extra):
            flat = np.stack([self.prepare(view) for item in extra for view in item])
            extra_probs, _, _ = self._forward_views(flat, "none", self.runtime)
            offsets = np.cumsum([0] + [len(item) for item in extra])
            extra = [extra_probs[0, offsets[i] : offsets[i + 1]] for i in range(len(images))]
        distances = None
        if self.feature_stats is not None and features is not None:
            distances = feature_distance(self.feature_stats, features)
        results = []
        for i, (name, image) in enumerate(zip(names, images, strict=True)):
            best = int(probabilities[i].argmax())
            per_view = np.concatenate([views[:, i], np.asarray(extra[i]).reshape(-1, views.shape[2])])
            votes = int((per_view.argmax(axis=1) == best).sum())
            confidence = float(probabilities[i, best])
            distance = None if distances is None else float(distances[i])
            reasons = self.policy.reasons(predicted=self.class_names[best], confidence=confidence, votes=votes,
                                          n_views=len(per_view), distance=distance)  # fmt: skip
            reasons += list(doubts[i]) if doubts is not None else []
            results.append(
                Prediction(
                    filename=name,
                    predicted=self.class_names[best],
                    confidence=confidence,
                    probabilities={c: float(p) for c, p in zip(self.class_names, probabilities[i], strict=True)},
                    image=image,
                    reconstruction=None if recon is None else recon[i],
                    notes=list(notes[i]),
                    tta_agreement=votes / len(per_view),
                    tta_spread=float(np.ptp(per_view[:, best])),
                    n_views=len(per_view),
                    feature_distance=distance,
                    uncertain=bool(reasons),
                    uncertain_reason="; ".join(reasons),
                )
            )
        return results

    def predict_images(
        self,
        images: Sequence[np.ndarray],
        tta: str = "none",
        *,
        filenames: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> list[Prediction]:
        """Predict (H, W, 3) uint8 RGB images of any size, ``batch_size`` at a time."""
        names = list(filenames) if filenames is not None else [f"image {i}" for i in range(len(images))]
        if len(names) != len(images):
            raise ValueError(f"{len(images)} images but {len(names)} filenames")
        results = []
        for chunk in _chunks(list(zip(names, images, strict=True)), batch_size):
            chunk_names, chunk_images = zip(*chunk, strict=True)
            results += self._predictions(chunk_names, chunk_images, [[]] * len(chunk), tta)
        return results

    def iter_files(
        self,
        files: Iterable[tuple[str, Path | str | bytes]],
        tta: str = "none",
        *,
        batch_size: int = 32,
        column: str | None = None,
        time_budget: float = FILE_TIME_BUDGET_S,
        style_views: int = STYLE_TTA_COUNT,
    ) -> Iterator[Prediction]:
        """Predict ``(filename, bytes or path)`` pairs, yielding in input order as soon as each is known.

        Files are read and decoded in worker processes (``backend.data.inputs.load_batches``), each
        within ``time_budget`` seconds; the model then predicts, in one forward pass, the next file
        together with the later ones already decoded (at most ``batch_size``), so batching never
        holds an answer back. A file that cannot be read, or runs past its budget, yields a
        ``Prediction`` with ``error`` set; the rest go on. A CSV is also drawn in ``style_views``
        other plotting styles, whose votes count in its ``tta_agreement`` (0 turns style TTA off)."""
        tta_view_count(tta)  # an unknown mode fails here, before any file is read
        batches = load_batches(files, column=column, time_budget=time_budget, max_batch=batch_size,
                               style_views=style_views)  # fmt: skip
        for batch in batches:
            good = [item for item in batch if item.error is None]
            names, images, notes, views, doubts = (
                [getattr(i, key) for i in good] for key in ("filename", "image", "notes", "views", "doubts")
            )
            predicted = iter(self._predictions(names, images, notes, tta, views, doubts) if good else [])
            for item in batch:
                yield Prediction(filename=item.filename, error=item.error) if item.error else next(predicted)

    def predict_files(
        self,
        files: Iterable[tuple[str, Path | str | bytes]],
        tta: str = "none",
        *,
        batch_size: int = 32,
        column: str | None = None,
        time_budget: float = FILE_TIME_BUDGET_S,
        style_views: int = STYLE_TTA_COUNT,
    ) -> list[Prediction]:
        """``iter_files`` collected into a list."""
        return list(self.iter_files(files, tta, batch_size=batch_size, column=column, time_budget=time_budget,
                                    style_views=style_views))  # fmt: skip

    def predict_file(
        self,
        source: Path | str | bytes,
        *,
        filename: str | None = None,
        tta: str = "none",
        column: str | None = None,
        style_views: int = STYLE_TTA_COUNT,
    ) -> Prediction:
        """Predict one image or CSV file (a path or its bytes); a bad file gives ``error``, not an exception."""
        name = display_name(source, filename)
        return self.predict_files([(name, source)], tta, column=column, style_views=style_views)[0]


# --- evaluation ----------------------------------------------------------------------------------


def check_classes(found: Sequence[str], expected: Sequence[str]) -> None:
    """``PredictError`` unless a dataset has exactly the checkpoint's classes."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if not missing and not extra:
        return
    parts = [f"missing: {', '.join(missing)}" if missing else "", f"extra: {', '.join(extra)}" if extra else ""]
    raise PredictError("the dataset's classes do not match the checkpoint's (" + "; ".join(p for p in parts if p) + ")")


def evaluate_folder(
    predictor: Predictor, data_dir: Path | str, tta: str = "none", *, batch_size: int = 32
) -> EvaluationResult:
    """Score a checkpoint on a labelled folder: ``<root>/{train,test}/<class>/*`` (its test split is
    used) or ``<root>/<class>/*`` (every image is used: none of it was seen in training).

    Images go through the prediction path (so TTA and decoding are exactly as for uploads). An image
    that cannot be read is listed in ``skipped``, not scored.
    """
    info = scan_dataset(data_dir)
    root = info.root
    check_classes(info.classes, predictor.class_names)
    split, samples = ("test", info.test) if info.split == "folder" else ("all", info.train + info.test)
    samples = sorted(samples, key=lambda s: str(s.path))
    by_name = {str(s.path): s for s in samples}
    rows, skipped = [], []
    files = [(name, Path(name)) for name in by_name]
    for prediction in predictor.iter_files(files, tta, batch_size=batch_size):
        relative = str(Path(prediction.filename).relative_to(root))
        if prediction.error:
            skipped.append((relative, prediction.error))
            continue
        true = info.classes[by_name[prediction.filename].label]
        probabilities = {f"prob_{c}": p for c, p in prediction.probabilities.items()}
        rows.append(
            {"file": relative, "item_hash": file_sha256(Path(prediction.filename)), "true": true,
             "predicted": prediction.predicted, "confidence": prediction.confidence, **probabilities}
        )  # fmt: skip
    if not rows:
        raise PredictError(f"no readable images to evaluate in {root}")
    table = pd.DataFrame(rows)
    names = predictor.class_names
    y_true = [names.index(c) for c in table["true"]]
    y_pred = [names.index(c) for c in table["predicted"]]
    report = eval_report(y_true, y_pred, names)
    return EvaluationResult(
        dataset=str(root),
        split=split,
        tta=tta,
        class_names=report.class_names,
        n_samples=len(table),
        accuracy=report.metrics["acc"],
        macro_precision=report.metrics["precision"],
        macro_recall=report.metrics["recall"],
        macro_f1=report.metrics["f1"],
        per_class=report.per_class,
        confusion=np.asarray(report.matrix, dtype=np.int64),
        predictions=table,
        skipped=skipped,
        intervals=bootstrap_metrics(y_true, y_pred, names),
        ece=expected_calibration_error(_probability_matrix(table, names), y_true),
    )


def _probability_matrix(table: pd.DataFrame, class_names: list[str]) -> np.ndarray:
    """The ``prob_<class>`` columns of a predictions table as an (items x classes) array."""
    return table[[f"prob_{c}" for c in class_names]].to_numpy(dtype=float)


def store_evaluation(result: EvaluationResult, run_id: int) -> int:
    """Keep an evaluation with its run (per-class metrics, confusion and per-file predictions); returns its id."""
    evaluation_id = store.save_evaluation(
        run_id,
        dataset=result.dataset,
        metrics=result.metrics(),
        per_class=result.per_class,
        matrix=result.confusion,
        class_names=result.class_names,
        tta=result.tta,
    )
    store.save_predictions(run_id, result.prediction_rows(), evaluation_id=evaluation_id, split=result.split)
    return evaluation_id
