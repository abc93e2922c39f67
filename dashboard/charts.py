"""Altair chart builders shared by the pages: each takes plain data and returns a chart.

Pages pass DataFrames from the store and draw the result with ``st.altair_chart(chart)``; a chart
looks the same wherever it appears. Class names are long (``collective_anomaly``), so class axes
are angled and charts get a fixed height that fits nine of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

CLASS_AXIS = alt.Axis(labelAngle=-40, labelLimit=160, labelOverlap=False, title=None)
SPLIT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e", "val": "#2ca02c", "test": "#ff7f0e"}
CELL_SELECTION = "cell"  # the confusion matrix's click selection (st.altair_chart selection_mode)
RUN_COLOURS = "tableau10"  # distinct hues: runs are categories, not an ordered scale

# (title, train column or None, validation column); a missing column is simply not drawn.
CURVE_PANELS: tuple[tuple[str, str | None, str], ...] = (
    ("Loss", "train_loss", "val_loss"),
    ("Accuracy", "train_acc", "val_acc"),
    ("Macro-F1", "train_f1", "val_f1"),
    ("Reconstruction PSNR (dB)", None, "extra_quality_val_recon_psnr"),  # the VAE's, measured on validation only
)
QUALITY_PREFIX = "extra_quality_"  # a model's own evaluation figures (PSNR), not loss components


def _split_scale(splits: Sequence[str]) -> alt.Scale:
    """Training blue, held-out orange, in every chart; only the splits drawn appear in the legend."""
    return alt.Scale(domain=list(splits), range=[SPLIT_COLOURS[s] for s in splits])


def class_counts_chart(counts: Mapping[str, Mapping[str, int]], height: int = 340) -> alt.Chart:
    """Images per class, one bar per split side by side. ``counts`` is ``{split: {class: n}}``."""
    rows = [
        {"class": name, "split": split, "images": int(n)}
        for split, per_class in counts.items()
        for name, n in per_class.items()
    ]
    return (
        alt.Chart(pd.DataFrame(rows, columns=["class", "split", "images"]))
        .mark_bar()
        .encode(
            x=alt.X("class:N", axis=CLASS_AXIS, sort=None),
            xOffset=alt.XOffset("split:N", sort=list(counts)),
            y=alt.Y("images:Q", title="images"),
            color=alt.Color(
                "split:N", scale=_split_scale(list(counts)), legend=alt.Legend(orient="top", title=None)
            ),
            tooltip=["class", "split", "images"],
        )
        .properties(height=height)
    )


def curve_chart(history: pd.DataFrame, title: str, train_col: str | None, val_col: str, height: int = 300) -> alt.Chart:
    """One metric of one run over epochs, training against validation."""
    columns = {"train": train_col, "validation": val_col}
    present = [split for split, col in columns.items() if col and col in history and history[col].notna().any()]
    frames = [
        pd.DataFrame({"epoch": history["epoch"], "value": history[columns[split]], "split": split}) for split in present
    ]
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["epoch", "value", "split"])
    return (
        alt.Chart(data, title=title)
        .mark_line(point=alt.OverlayMarkDef(size=25))
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("split:N", scale=_split_scale(present), legend=alt.Legend(orient="top", title=None)),
            tooltip=["epoch", "split", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=height)
    )


def curve_panels(history: pd.DataFrame) -> list[alt.Chart]:
    """Loss, accuracy and macro-F1 charts for one run (the panels whose columns hold data)."""
    return [
        curve_chart(history, title, train, val)
        for title, train, val in CURVE_PANELS
        if any(c and c in history and history[c].notna().any() for c in (train, val))
    ]


def loss_components(history: pd.DataFrame) -> pd.DataFrame:
    """The ``extra_*`` loss components in long form: epoch, split, component, value.

    The trainer logs ``extra_<split>_<component>`` (``extra_train_recon``, ``extra_val_kl``...);
    a column without a split prefix counts as training; ``extra_quality_*`` figures are not losses.
    """
    columns = [c for c in history.columns
               if c.startswith("extra_") and not c.startswith(QUALITY_PREFIX) and history[c].notna().any()]  # fmt: skip
    if not columns:
        return pd.DataFrame(columns=["epoch", "split", "component", "value"])
    data = history[["epoch", *columns]].melt("epoch", var_name="column", value_name="value").dropna()
    names = data["column"].str.removeprefix("extra_")
    prefix = names.str.partition("_")
    has_split = prefix[0].isin(["train", "val"])
    data["split"] = prefix[0].where(has_split, "train").replace({"val": "validation"})
    data["component"] = prefix[2].where(has_split, names)
    return data[["epoch", "split", "component", "value"]]


def loss_components_chart(history: pd.DataFrame, height: int = 300) -> alt.Chart | None:
    """Each weighted loss component per epoch (solid training, dashed validation), or None when the
    model's loss has a single component (a plain classifier)."""
    data = loss_components(history)
    if data["component"].nunique() < 2:
        return None
    return (
        alt.Chart(data, title="Loss components (weighted)")
        .mark_line(point=alt.OverlayMarkDef(size=25))
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("component:N", legend=alt.Legend(orient="top", title=None)),
            strokeDash=alt.StrokeDash(
                "split:N",
                sort=["train", "validation"],
                legend=alt.Legend(orient="top", title=None, symbolType="stroke", symbolStrokeColor="#555"),
            ),
            tooltip=["epoch", "split", "component", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=height)
    )


def overlay_chart(
    histories: pd.DataFrame, column: str, title: str, order: Sequence[str], height: int = 300
) -> alt.Chart:
    """One metric of several runs over epochs, a line per run (``histories`` has a ``run`` label column;
    ``order`` fixes the runs' colours and legend order, the same in every chart of a page)."""
    data = histories[["run", "epoch", column]].dropna()
    return (
        alt.Chart(data, title=title)
        .mark_line(point=alt.OverlayMarkDef(size=20))
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{column}:Q", title=None, scale=alt.Scale(zero=False)),
            color=_run_colour(order),
            tooltip=["run", "epoch", alt.Tooltip(f"{column}:Q", format=".4f")],
        )
        .properties(height=height)
    )


def _run_colour(order: Sequence[str]) -> alt.Color:
    return alt.Color(
        "run:N", scale=alt.Scale(domain=list(order), scheme=RUN_COLOURS), sort=list(order),
        legend=alt.Legend(orient="top", title=None, labelLimit=240),
    )  # fmt: skip


def grouped_f1_chart(per_class: pd.DataFrame, order: Sequence[str], height: int = 300) -> alt.Chart:
    """Per-class F1 of several runs side by side: ``per_class`` has columns class_name, run, f1."""
    return (
        alt.Chart(per_class)
        .mark_bar()
        .encode(
            x=alt.X("class_name:N", axis=CLASS_AXIS, sort=None),
            xOffset=alt.XOffset("run:N", sort=list(order)),
            y=alt.Y("f1:Q", title="F1", scale=alt.Scale(domain=[0, 1])),
            color=_run_colour(order),
            tooltip=["run", "class_name", alt.Tooltip("f1:Q", format=".3f")],
        )
        .properties(height=height)
    )


def confusion_frame(class_names: Sequence[str], matrix: np.ndarray) -> pd.DataFrame:
    """Long form of a confusion matrix: one row per cell with count and row-normalised share."""
    matrix = np.asarray(matrix, dtype=np.int64)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    true_idx, pred_idx = np.indices(matrix.shape)
    return pd.DataFrame(
        {
            "true": np.asarray(class_names)[true_idx.ravel()],
            "predicted": np.asarray(class_names)[pred_idx.ravel()],
            "count": matrix.ravel(),
            "share": share.ravel(),
        }
    )


def confusion_chart(
    class_names: Sequence[str],
    matrix: np.ndarray,
    *,
    normalised: bool = False,
    selected: tuple[str, str] | None = None,
    clickable: bool = False,
    cell: int = 44,
) -> alt.LayerChart:
    """Heatmap of a confusion matrix (rows true, columns predicted) with the value in each cell.

    ``normalised`` colours and labels by share of the true class (row-normalised); the ``selected``
    (true, predicted) cell gets an outline, so the gallery below it is visibly tied to a cell. No
    colour legend: every cell prints its value, and the chart must fit beside its controls.
    ``clickable`` adds a point selection named ``CELL_SELECTION`` on (true, predicted): drawn with
    ``st.altair_chart(chart, on_select="rerun", selection_mode=CELL_SELECTION)``, a click on a cell
    reruns the page with that cell in the chart's selection state (read it with ``clicked_cell``).
    """
    data = confusion_frame(class_names, matrix)
    field, fmt, title = ("share", ".0%", "share of true class") if normalised else ("count", "d", "images")
    order = list(class_names)
    base = alt.Chart(data).encode(
        x=alt.X(
            "predicted:N",
            sort=order,
            axis=alt.Axis(labelAngle=-40, labelLimit=160, labelOverlap=False, title="predicted"),
        ),
        y=alt.Y("true:N", sort=order, axis=alt.Axis(labelLimit=160, labelOverlap=False, title="true")),
    )
    cells = base.mark_rect(cursor="pointer").encode(
        color=alt.Color(f"{field}:Q", scale=alt.Scale(range=["#f7fbff", "#08519c"]), legend=None, title=title),
        tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".1%")],
    )
    if clickable:
        cells = cells.add_params(alt.selection_point(name=CELL_SELECTION, fields=["true", "predicted"], on="click"))
    # Light text on dark cells, dark text on light ones.
    threshold = float(data[field].max()) / 2 if len(data) else 0.0
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text(f"{field}:Q", format=fmt),
        color=alt.condition(alt.datum[field] > threshold, alt.value("white"), alt.value("#222")),
    )
    layers = [cells, text]
    if selected is not None:
        mark = data[(data["true"] == selected[0]) & (data["predicted"] == selected[1])]
        layers.append(
            alt.Chart(mark)
            .mark_rect(fill=None, stroke="#d62728", strokeWidth=3)
            .encode(x=alt.X("predicted:N", sort=order), y=alt.Y("true:N", sort=order))
        )
    return alt.layer(*layers).properties(width=alt.Step(cell), height=alt.Step(cell))


def clicked_cell(event) -> tuple[str, str] | None:
    """The (true, predicted) cell a click selected in a ``confusion_chart(clickable=True)``, or None.

    ``event`` is what ``st.altair_chart(on_select="rerun")`` returned (or the chart's session-state
    value, a plain dict): ``{"selection": {CELL_SELECTION: [{"true": ..., "predicted": ...}]}}``.
    """
    try:
        points = event["selection"][CELL_SELECTION]
    except (KeyError, TypeError):
        return None
    if not isinstance(points, list | tuple) or not points:
        return None
    point = points[0]
    if not isinstance(point, dict) or "true" not in point or "predicted" not in point:
        return None
    return str(point["true"]), str(point["predicted"])


def f1_vs_frequency_chart(data: pd.DataFrame, height: int = 300) -> alt.LayerChart:
    """Per-class F1 against training images per class (columns class_name, train_images, f1)."""
    base = alt.Chart(data).encode(
        x=alt.X(
            "train_images:Q",
            title="training images of the class",
            scale=alt.Scale(zero=False, padding=20),
            axis=alt.Axis(format="d"),
        ),
        y=alt.Y("f1:Q", title="test F1", scale=alt.Scale(zero=False, padding=15)),
        tooltip=["class_name", "train_images", alt.Tooltip("f1:Q", format=".3f")],
    )
    points = base.mark_circle(size=90)
    labels = base.mark_text(align="left", dx=7, fontSize=11).encode(text="class_name:N")
    return alt.layer(points, labels).properties(height=height)


def probability_bars(probabilities: Mapping[str, float], top: int = 3, height: int = 110) -> alt.Chart:
    """The ``top`` class probabilities of one prediction as horizontal bars."""
    ranked = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)[:top]
    data = pd.DataFrame(ranked, columns=["class", "probability"])
    base = alt.Chart(data).encode(
        y=alt.Y("class:N", sort=None, axis=alt.Axis(title=None, labelLimit=160, labelOverlap=False)),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", title=None)),
    )
    bars = base.mark_bar(color="#1f77b4")
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("probability:Q", format=".1%"))
    return alt.layer(bars, text).properties(height=height)


def reliability_chart(table: pd.DataFrame, height: int = 300) -> alt.LayerChart:
    """Reliability diagram: accuracy per confidence bin (bars) against the diagonal of perfect
    calibration. ``table`` is ``backend.evaluation.calibration.reliability_table``; empty bins are left out."""
    filled = table[table["count"] > 0]
    scale = alt.Scale(domain=[0, 1])
    bars = (
        alt.Chart(filled)
        .mark_bar(opacity=0.8)
        .encode(
            x=alt.X("lower:Q", title="confidence (calibrated)", scale=scale),
            x2="upper:Q",
            y=alt.Y("accuracy:Q", title="share right", scale=scale),
            tooltip=[
                alt.Tooltip("lower:Q", format=".2f"),
                alt.Tooltip("upper:Q", format=".2f"),
                "count:Q",
                alt.Tooltip("confidence:Q", format=".3f", title="mean confidence"),
                alt.Tooltip("accuracy:Q", format=".3f", title="share right"),
            ],
        )
    )
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(color="grey", strokeDash=[4, 4])
    return alt.layer(bars, diagonal.encode(x="x:Q", y="y:Q")).properties(height=height)
