"""Compare: several runs side by side: paired tests, curves, the metrics table with intervals and
overfitting, config diff, per-class F1."""

from itertools import combinations

import pandas as pd
import streamlit as st

from backend import store
from backend.evaluation.compare import winner
from backend.evaluation.report import figure_text, figures_on_test, selection_split
from backend.lineage import datasets_differ
from dashboard import charts, loaders, organise, summaries, widgets
from dashboard.setup import setup_page

setup_page(
    "Compare runs",
    "Pick runs of any models and datasets. A run is called better only when a paired test on the same test "
    "items says so; test figures carry 95% intervals.",
)

url = loaders.store_url()
runs = loaders.all_runs(url)
started = runs[runs["current_epoch"].notna()] if not runs.empty else runs
if started.empty:
    widgets.no_runs_yet("Nothing to compare")
    st.stop()

candidates = organise.run_filter(started, key="compare_filter")
if candidates.empty:
    st.info("No run matches the filter.", icon=":material/filter_alt_off:")
    st.stop()
labels = {int(r["id"]): widgets.run_label(r) for _, r in candidates.iterrows()}
# Runs chosen before the filter changed stay choosable, so a selection is never silently dropped.
for run_id in st.session_state.get("compare_runs", []):
    match = started[started["id"] == run_id]
    if run_id not in labels and not match.empty:
        labels[run_id] = widgets.run_label(match.iloc[0])
default = summaries.best_run_per_model(candidates)["id"].astype(int).tolist()[:4] or list(labels)[:2]
chosen = st.multiselect("Runs", list(labels), default=default, format_func=labels.__getitem__, key="compare_runs")
if not chosen:
    st.info("Choose at least one run.", icon=":material/info:")
    st.stop()

records: list[store.RunRecord] = []
for run_id in chosen:
    try:
        records.append(loaders.run_record(run_id, url))
    except store.RunNotFound:
        st.warning(f"Run #{run_id} no longer exists (deleted).")
short = {r.id: widgets.short_label(r) for r in records}
names = list(short.values())
for record in records:
    if record.status in {"failed", "lost"}:
        st.warning(
            f"{labels[record.id]} {record.status}: {record.error or 'no message recorded'}", icon=":material/warning:"
        )

st.subheader("Paired comparisons")
if len(records) < 2:
    st.caption("Pick two or more runs to test whether one is really better than another.")
for first, second in combinations(records, 2):
    result = loaders.comparison(first.id, second.id, url)
    if not result["comparable"]:
        st.warning(result["sentence"], icon=":material/block:")
    elif winner(result) is not None:
        st.success(result["sentence"], icon=":material/trophy:")
    else:
        st.info(result["sentence"], icon=":material/balance:")
differ = [
    (first, second, why)
    for first, second in combinations(records, 2)
    if (why := datasets_differ((first.dataset, first.dataset_fingerprint), (second.dataset, second.dataset_fingerprint)))
]
for first, second, why in differ:
    st.warning(f"{short[first.id]} and {short[second.id]}: {why}.", icon=":material/difference:")
if len(records) >= 2:
    st.caption(
        "Differences are the first run minus the second, in macro-F1 points with a 95% paired bootstrap interval; "
        "a winner is named only when McNemar's exact test (p < 0.05) and the interval (excluding 0) agree. "
        "Runs are compared only on identical test items (matched by file content). See docs/COMPARISON.md."
    )

st.subheader("Training curves")
history = loaders.runs_history(tuple(r.id for r in records), url)
if history.empty:
    st.caption("No epochs recorded yet.")
else:
    history = history.assign(run=history["run_id"].map(short))
    panels = [
        ("val_f1", "Validation macro-F1"),
        ("val_acc", "Validation accuracy"),
        ("train_loss", "Training loss"),
        ("val_loss", "Validation loss"),
    ]
    for row in (panels[:2], panels[2:]):
        for cell, (column, title) in zip(st.columns(2), row, strict=True):
            cell.altair_chart(charts.overlay_chart(history, column, title, names), width="stretch")

st.subheader("Test metrics of the selected checkpoint")
metrics_table = summaries.comparison_table(records, names).T  # one row per run: a click on a header sorts runs
metrics_table.index.name = "run"
st.dataframe(metrics_table, width="stretch")
widgets.csv_download(metrics_table, "compare_test_metrics.csv", key="compare_metrics_csv")
on_test = [short[r.id] for r in records if selection_split(r) == "test"]
if on_test:
    st.caption(
        f"Selected on test: {', '.join(on_test)} picked their best epoch on the test split (stored before "
        "validation selection), so their test figures are optimistic and carry no interval."
    )
st.caption(
    f"Train-test gap = training accuracy at the selected epoch minus test accuracy: mild below "
    f"{summaries.MILD_GAP_POINTS:.0f} points, moderate up to {summaries.SEVERE_GAP_POINTS:.0f}, severe above. "
    "Neither the gap nor the training time says which run is better. Click a column header to sort."
)

st.subheader("Configuration differences")
if len(records) < 2:
    st.caption("Pick two or more runs to see how their options differ.")
else:
    diff = summaries.config_diff([r.config for r in records], names)
    if diff.empty:
        st.caption("The runs share every option.")
    else:
        st.dataframe(diff, width="stretch")
        if (diff == summaries.NOT_RECORDED).any().any():
            st.caption(
                f"{summaries.NOT_RECORDED}: the run was stored before that option existed and ran with "
                "that build's behaviour, which need not be today's default."
            )
        widgets.csv_download(diff, "compare_config_diff.csv", key="compare_config_csv")

st.subheader("Per-class F1")
per_class = []
for record in records:
    frame = loaders.class_metrics(record.id, None, url)
    if not frame.empty:
        per_class.append(frame.assign(run=short[record.id]))
if per_class:
    st.altair_chart(charts.grouped_f1_chart(pd.concat(per_class, ignore_index=True), names), width="stretch")
else:
    st.caption("None of these runs has per-class test metrics yet (they are stored when a run completes).")

evaluations = []
for record in records:
    frame = loaders.evaluations(record.id, url)
    if not frame.empty:
        own = figure_text(figures_on_test(record), "macro_f1")
        evaluations.append(frame.assign(run=short[record.id], own_test_f1=own))
if evaluations:
    st.subheader("Evaluations on other datasets")
    table = pd.concat(evaluations, ignore_index=True)
    table["dataset"] = table["dataset"].map(widgets.dataset_name)
    table["macro_f1"] = [figure_text(metrics or {}, "macro_f1") for metrics in table["metrics"]]
    columns = [
        c
        for c in ("run", "dataset", "tta", "accuracy", "macro_f1", "own_test_f1", "n_samples", "created_at")
        if c in table
    ]
    st.dataframe(
        table[columns],
        hide_index=True,
        column_config={
            "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
            "macro_f1": "macro-F1 [95% interval]",
            "own_test_f1": "own test macro-F1",
            "created_at": st.column_config.DatetimeColumn("evaluated", format="distance"),
        },
    )
    widgets.csv_download(table[columns], "compare_evaluations.csv", key="compare_evaluations_csv", index=False)
