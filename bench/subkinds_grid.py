"""Draw docs/samples_subkinds.png: four samples of each periodic collective and in-range contextual
sub-kind (difficulty 1, 1, 1.5, 2), with the anomaly window the manifest records shaded.

    python bench/subkinds_grid.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.data.series import generate_series  # noqa: E402

OUT = REPO / "docs" / "samples_subkinds.png"
NEW = [("collective_anomaly", k) for k in ("cycle_frequency", "cycle_damped", "cycle_shape", "cycle_level")] + [
    ("contextual_anomaly", k) for k in ("inner_dip", "inner_peak")
]
DIFFICULTIES = (1.0, 1.0, 1.5, 2.0)
DETAILS = ("shape", "factor", "shift", "mix")


def main() -> None:
    figure = Figure(figsize=(4 * len(DIFFICULTIES), 2.2 * len(NEW)), dpi=80, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(NEW), len(DIFFICULTIES))
    for row, (class_name, subkind) in enumerate(NEW):
        for col, difficulty in enumerate(DIFFICULTIES):
            series = generate_series(class_name, np.random.default_rng(1000 * row + col), subkinds=[subkind],
                                     difficulty=difficulty)  # fmt: skip
            ax = axes[row, col]
            ax.plot(series.values, linewidth=0.8)
            location = series.params["location"]
            ax.axvspan(location["start"], location["end"] - 1, color="orange", alpha=0.25)
            extra = ", ".join(
                f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}"
                for key, value in series.params.items() if key in DETAILS
            )  # fmt: skip
            ax.set_title(f"{subkind}, difficulty {difficulty:g}, n={len(series.values)} {extra}", fontsize=8)
            ax.tick_params(labelsize=6)
    figure.savefig(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
