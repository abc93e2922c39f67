"""Class metrics: one run (or one of its evaluations) class by class, with the images behind each cell."""

import pandas as pd
import streamlit as st

from backend.data.dataset import balanced_class_weights, effective_number_weights, imbalance_ratio
from backend.evaluation.report import figure_text, figures_on_test, selection_label
from dashboard import charts, loaders, summaries, widgets
from dashboard.setup import setup_page

setup_page(
    "Class metrics",
    "How one run does on each class: where it is right, what it confuses, and how that follows the class sizes.",
)

url = loaders.store_url()
runs = loaders.all_runs(url)
if runs.empty:
    widgets.no_runs_yet("No class metrics")
    st.stop()

pick, target = st.columns([3, 2])
with pick:
    run_id = widgets.run_picker(runs, key="cm_run", prefer=("completed",))
record = loaders.run_record(run_id, url)
if widgets.run_problem(record):
    st.stop()

evaluations = loaders.evaluations(run_id, url)
targets = {None: f"own test split ({widgets.dataset_name(record.dataset)})"}
targets.update(
    {
        int(e["id"]): f"evaluation #{int(e['id'])} on {widgets.dataset_name(e['dataset'])} (TTA {e['tta']})"
        for _, e in evaluations.iterrows()
    }
)
with target:
    evaluation_id = st.selectbox("Measured on", list(targets), format_func=targets.__getitem__, key="cm_target")

per_class = loaders.class_metrics(run_id, evaluation_id, url)
matrix = loaders.confusion(run_id, evaluation_id, url)
if per_class.empty or matrix is None:
    st.info(f"Run #{run_id} has no per-class results stored for {targets[evaluation_id]}.", icon=":material/info:")
    st.stop()

if evaluation_id is None:
    figures = figures_on_test(record)
else:
    figures = evaluations.set_index("id").at[evaluation_id, "metrics"] or {}
headline = f"Macro-F1 {figure_text(figures, 'macro_f1')}, accuracy {figure_text(figures, 'accuracy')}"
if evaluation_id is None:
    headline += f" ({selection_label(record)})"
st.markdown(headline)

st.subheader("Per class")
st.dataframe(
    summaries.per_class_with_intervals(per_class, figures),
    hide_index=True,
    column_config={
        "class_name": "class",
        "precision": st.column_config.ProgressColumn("precision", format="%.3f", min_value=0, max_value=1),
        "recall": st.column_config.ProgressColumn("recall", format="%.3f", min_value=0, max_value=1),
        "f1": st.column_config.ProgressColumn("F1", format="%.3f", min_value=0, max_value=1),
        "support": st.column_config.NumberColumn("test images"),
        "f1_interval": "F1 [95% interval]",
    },
)

st.subheader("Confusion matrix")
class_names, counts = matrix
left, right = st.columns([3, 2], gap="large")
with right:
    normalised = st.toggle("Row-normalised (share of each true class)", key="cm_normalised")
    st.caption("Click a cell to see the images behind it; the outlined cell is the one shown below.")
with left:
    # The chart's selection decides the cell; it is read before drawing (from the widget's state) so
    # the outline follows the click. Before any click, the most confused cell is shown.
    chart_key = f"cm_chart_{'test' if evaluation_id is None else evaluation_id}"
    clicked = charts.clicked_cell(st.session_state.get(chart_key))
    if clicked is not None and not set(clicked) <= set(class_names):
        clicked = None  # a cell of another run's matrix
    true_class, predicted_class = clicked or summaries.most_confused_cell(class_names, counts)
    chart = charts.confusion_chart(
        class_names, counts, normalised=normalised, selected=(true_class, predicted_class), clickable=True
    )
    st.altair_chart(chart, width="content", on_select="rerun", selection_mode=charts.CELL_SELECTION, key=chart_key)
n_cell = int(counts[class_names.index(true_class), class_names.index(predicted_class)])
with right:
    st.markdown(f"**{n_cell}** image(s) of **{true_class}** predicted as **{predicted_class}**.")

if evaluation_id is None:
    root, lineage = record.dataset, loaders.dataset_check(record.dataset, record.dataset_fingerprint)
else:
    root, lineage = str(evaluations.set_index("id").at[evaluation_id, "dataset"]), None
stored = loaders.predictions(run_id, evaluation_id, url)
if stored.empty and evaluation_id is None:  # a run from before per-file predictions were stored
    csv = loaders.test_predictions(run_id, loaders.mtime(loaders.test_predictions_path(run_id)))
    if csv is not None:
        stored = summaries.predictions_from_csv(csv, class_names)
if lineage is not None and not lineage.usable:
    st.warning(f"Run #{run_id}: {lineage.message}.", icon=":material/difference:")
elif stored.empty:
    st.caption(
        "No per-file predictions are stored for this result (runs and evaluations from before they were kept), "
        "so the images behind a cell cannot be shown."
    )
else:
    cell = summaries.cell_items(stored, class_names, true_class, predicted_class)
    shown = cell.head(12)
    files = loaders.resolve_files(root, tuple(shown["path"]), tuple(shown["item_hash"]))
    changed = sum(f is None for f in files)
    widgets.prediction_gallery(
        [
            {"image": file, "name": row.path, "p_true": row.p_true, "true": true_class, "top3": row.top3,
             "missing": "missing or changed since it was predicted"}
            for row, file in zip(shown.itertuples(index=False), files, strict=True)
        ],
        key=f"cm_larger_{'test' if evaluation_id is None else evaluation_id}",
    )  # fmt: skip
    if len(cell) > len(shown):
        st.caption(f"Showing {len(shown)} of {len(cell)}, most confident first.")
    if changed:
        st.warning(
            f"{changed} of these file(s) under {root} are missing or no longer the files that were predicted on "
            "(the dataset was changed); they are not shown.",
            icon=":material/difference:",
        )

st.subheader("Calibration")
table = summaries.reliability(loaders.predictions(run_id, evaluation_id, url))
ece, before = figures.get("ece"), figures.get("ece_uncalibrated")
if table is None and ece is None:
    st.caption("No calibration data stored for this result (runs and evaluations from before it was kept).")
else:
    numbers, diagram = st.columns([1, 3], gap="large")
    if ece is not None:
        numbers.metric("ECE (15 bins)", f"{ece:.3f}", help="mean gap between confidence and share right")
    if before is not None:
        numbers.metric("ECE before temperature", f"{before:.3f}")
    if evaluation_id is None and record.temperature is not None:
        numbers.metric("Temperature", f"{record.temperature:.2f}", help="fitted on validation; above 1 softens")
    if table is not None:
        diagram.altair_chart(charts.reliability_chart(table), width="stretch")
        diagram.caption("Bars on the dashed diagonal: a confidence of 0.8 is right 80% of the time.")

st.subheader("Class sizes and weights")
class_counts = record.class_counts or {}
train_counts = class_counts.get("train") or {}
if not train_counts:
    st.caption("This run did not record its class counts.")
else:
    chart_col, table_col = st.columns([3, 2], gap="large")
    chart_col.altair_chart(charts.class_counts_chart(class_counts), width="stretch")
    ratios = {split: imbalance_ratio(c) for split, c in class_counts.items() if c}
    with table_col:
        for column, (split, ratio) in zip(st.columns(len(ratios)), ratios.items(), strict=True):
            column.metric(f"Imbalance ratio, {split}", f"{ratio:.2f}", help="largest class over smallest class")
        config = record.config or {}
        used = config.get("class_weighting", "none")
        weights = pd.DataFrame(
            {
                "balanced": balanced_class_weights(train_counts),
                "effective number": effective_number_weights(train_counts, float(config.get("beta", 0.9999))),
            }
        )
        st.dataframe(
            weights,
            width="stretch",
            column_config={
                "_index": "class",
                "balanced": st.column_config.NumberColumn("balanced", format="%.3f"),
                "effective number": st.column_config.NumberColumn("effective number", format="%.3f"),
            },
        )
        setup = ", ".join(f"{key.replace('_', ' ')}: {config[key]}" for key in ("loss", "sampler") if key in config)
        st.caption(f"Class weighting used by this run: **{used}**" + (f" ({setup})." if setup else "."))

    st.subheader("F1 against class frequency")
    scatter = summaries.f1_against_frequency(per_class, train_counts)
    if scatter["train_images"].nunique() > 1:
        st.altair_chart(charts.f1_vs_frequency_chart(scatter), width="stretch")
    else:
        st.caption(
            f"Every class had {int(scatter['train_images'].iloc[0])} training images, so F1 cannot follow class "
            "frequency on this run; train on a long-tail dataset to see the effect."
        )
