"""How unfamiliar an input is to a model: distance in its penultimate feature space (numpy only).

Temperature scaling calibrates the softmax on data like the training set; it cannot see an input
from elsewhere, where a model can be confidently wrong (issue 13: accuracy 0.81 at mean confidence
0.92 on a third-party generator). This signal does not trust the softmax: at the end of training,
class means and one shared, shrunk covariance are fitted on the TRAIN features (Lee et al. 2018,
"A simple unified framework for detecting out-of-distribution samples"); an input's score is its
smallest Mahalanobis distance to a class mean, and the flagging threshold is a high quantile of the
VALIDATION scores (so about 5% of familiar inputs are flagged at the 95th percentile).

Features wider than ``MAX_DIMS`` are first projected with a PCA fitted on train, which keeps the
statistics small: everything is stored in the checkpoint as plain lists (``weights_only`` loads it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DIMS = 128  # PCA projection size for wider features
SHRINKAGE = 0.1  # covariance shrunk this far toward its mean variance times the identity
DEFAULT_QUANTILE = 0.95


def fit_feature_density(features: np.ndarray, labels: np.ndarray, max_dims: int = MAX_DIMS) -> dict:
    """Class means and a shared shrunk precision matrix of ``features`` (N, D), as plain lists.

    Returns ``{"mean", "components", "class_means", "precision", "classes"}``: the PCA centre and
    rows (``components`` is empty when no projection was needed), one mean per class present in
    ``labels`` and the inverse of the pooled within-class covariance.
    """
    features = _as_matrix(features)
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(features) < 2:
        raise ValueError("fitting a feature density needs at least two training images")
    centre = features.mean(axis=0)
    components = _pca_components(features - centre, max_dims)
    projected = _project(features, centre, components)
    classes = np.unique(labels)
    means = np.stack([projected[labels == c].mean(axis=0) for c in classes])
    residuals = projected - means[np.searchsorted(classes, labels)]
    covariance = residuals.T @ residuals / max(len(projected) - len(classes), 1)
    precision = np.linalg.pinv(_shrunk(covariance), hermitian=True)
    return {
        "mean": centre.tolist(),
        "components": components.tolist(),
        "class_means": means.tolist(),
        "precision": precision.tolist(),
        "classes": classes.astype(int).tolist(),
    }


def feature_distance(stats: dict, features: np.ndarray) -> np.ndarray:
    """Smallest Mahalanobis distance of each row of ``features`` to a class mean, shape (N,)."""
    features = _as_matrix(features)
    centre = np.asarray(stats["mean"], dtype=np.float64)
    if features.shape[1] != len(centre):
        raise ValueError(f"features have {features.shape[1]} dimensions; these statistics were fitted on {len(centre)}")
    projected = _project(features, centre, np.asarray(stats["components"], dtype=np.float64))
    precision = np.asarray(stats["precision"], dtype=np.float64)
    diffs = projected[:, None, :] - np.asarray(stats["class_means"], dtype=np.float64)[None]  # (N, C, k)
    squared = np.einsum("nck,kl,ncl->nc", diffs, precision, diffs)
    return np.sqrt(np.clip(squared.min(axis=1), 0.0, None))


def distance_threshold(scores: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
    """The score above which an input counts as unfamiliar: ``quantile`` of familiar (validation) scores."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), e.g. 0.95; got {quantile}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("a distance threshold needs at least one validation score")
    return float(np.quantile(scores, quantile))


def _as_matrix(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (images, dimensions), got shape {features.shape}")
    return features


def _pca_components(centred: np.ndarray, max_dims: int) -> np.ndarray:
    """The top principal directions (k, D) when D > ``max_dims``, else an empty (0, D) array."""
    n, dims = centred.shape
    if dims <= max_dims:
        return np.empty((0, dims))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[: min(max_dims, n)]


def _project(features: np.ndarray, centre: np.ndarray, components: np.ndarray) -> np.ndarray:
    return features if components.size == 0 else (features - centre) @ components.T


def _shrunk(covariance: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf-style fixed shrinkage toward a scaled identity: invertible with few images."""
    dims = len(covariance)
    scale = max(float(np.trace(covariance)) / dims, 1e-12)
    return (1.0 - SHRINKAGE) * covariance + SHRINKAGE * scale * np.eye(dims)


# --- the per-prediction flag ---------------------------------------------------------------------

# Views (flip TTA and, for a CSV, its renderings in other styles) must vote the top class at least
# this often; fewer (most views vote otherwise) is "views disagree". A fixed rule, not fitted:
# validation has no style views. 0.5 and 0.75 flagged 60-71% of the right answers of a model trained
# on team-style plots only (docs/BENCHMARKS_uncertainty.md): its answers on other styles are noisy
# even when it is right, so only a clear majority against the answer flags.
AGREEMENT_THRESHOLD = 0.4


@dataclass(frozen=True)
class UncertaintyPolicy:
    """The thresholds one checkpoint's predictions are flagged by (``None``: that signal never flags).

    ``from_checkpoint`` reads what training stored (``checkpoint["uncertainty"]``): the confidence
    threshold and the feature-distance threshold were chosen on the validation split. A checkpoint
    written before they existed flags on view agreement only.
    """

    confidence_threshold: float | None = None
    distance_threshold: float | None = None
    distance_quantile: float = DEFAULT_QUANTILE
    agreement_threshold: float = AGREEMENT_THRESHOLD

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> UncertaintyPolicy:
        stored = checkpoint.get("uncertainty") or {}
        confidence, distance = stored.get("confidence_threshold"), stored.get("ood_threshold")
        return cls(
            confidence_threshold=None if confidence is None else float(confidence),
            distance_threshold=None if distance is None or not stored.get("ood") else float(distance),
            distance_quantile=float(stored.get("ood_quantile", DEFAULT_QUANTILE)),
            agreement_threshold=float(stored.get("agreement_threshold", AGREEMENT_THRESHOLD)),
        )

    def reasons(self, *, predicted: str, confidence: float, votes: int, n_views: int,
                distance: float | None) -> list[str]:  # fmt: skip
        """Why one prediction is uncertain, one phrase per signal that fired; empty when certain."""
        reasons = []
        if self.confidence_threshold is not None and confidence < self.confidence_threshold:
            reasons.append(f"confidence {confidence:.2f} below {self.confidence_threshold:.2f} (chosen on validation)")
        if n_views > 1 and votes / n_views < self.agreement_threshold:
            reasons.append(f"views disagree ({votes}/{n_views} vote {predicted})")
        if self.distance_threshold is not None and distance is not None and distance > self.distance_threshold:
            ratio = distance / self.distance_threshold if self.distance_threshold > 0 else float("inf")
            reasons.append(
                f"unfamiliar input: feature distance {ratio:.1f}x the validation "
                f"{100 * self.distance_quantile:g}th percentile"
            )
        return reasons
