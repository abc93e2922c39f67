"""Home: what is here at a glance: device, datasets, runs by status, best run per model, recent activity."""

import streamlit as st

from dashboard import loaders, organise, summaries, widgets
from dashboard.setup import page_file, setup_page

setup_page(
    "Anomaly Workbench",
    "Train, compare and use models that tell nine kinds of time-series anomaly apart from plot images.",
)

url = loaders.store_url()
runs = loaders.all_runs(url)
counts = loaders.status_counts(url)
datasets = loaders.datasets(str(loaders.data_root()))
gpus = loaders.machine_gpus()

device, data_col, runs_col, active_col = st.columns(4)
device.metric(
    "This machine",
    gpus[0] if gpus else "CPU",
    help="GPUs reported by nvidia-smi; training uses the first one (CUDA) when present.",
)
data_col.metric("Datasets", len(datasets), help=f"Dataset folders under {loaders.data_root()}")
runs_col.metric("Runs", len(runs))
active_col.metric(
    "Training now",
    counts["running"],
    delta=f"{counts['queued']} queued" if counts["queued"] else None,
    delta_color="off",
)
if not runs.empty and runs["device"].notna().any():
    st.caption(f"Newest run trained on: {runs['device'].dropna().iloc[0]}")

shown = organise.run_filter(runs, key="home_filter") if not runs.empty else runs

left, right = st.columns([2, 3], gap="large")
with left:
    st.subheader("Runs by status")
    if runs.empty:
        widgets.no_runs_yet("No runs")
    else:
        with st.container(horizontal=True):
            for status, n in counts.items():
                if n:
                    widgets.status_badge(status, n)

    st.subheader("Datasets")
    if not datasets:
        st.info(f"No dataset under {loaders.data_root()}. Generate one on the Data page.", icon=":material/info:")
        st.page_link(page_file("data"), label="Go to Data", icon=":material/dataset:")
    else:
        st.markdown("\n".join(f"- `{widgets.dataset_name(path)}`" for path in datasets))

with right:
    st.subheader("Best run per model family, per dataset")
    best = summaries.best_run_per_model(shown) if not shown.empty else shown
    if best.empty:
        st.caption("No completed run yet.")
    else:
        columns = ["dataset", "model", "test_macro_f1", "test_accuracy", "selected_on", "id", "finished_at"]
        st.dataframe(
            best[columns].assign(dataset=best["dataset"].map(widgets.dataset_name)),
            hide_index=True,
            column_config={
                "model": "model",
                "test_macro_f1": "test macro-F1 [95% interval]",
                "test_accuracy": "test accuracy [95% interval]",
                "selected_on": "selected on",
                "id": st.column_config.NumberColumn("run", format="#%d"),
                "finished_at": st.column_config.DatetimeColumn("finished", format="distance"),
            },
        )
        st.caption(
            "Best = highest macro-F1 on the split the run selected on (validation; test for runs stored before). "
            "Runs selected on test have optimistic figures and no interval. Two runs are better or worse only "
            "by a paired test: see Compare."
        )

    st.subheader("Recent activity")
    if shown.empty:
        st.caption("Nothing yet." if runs.empty else "No run matches the filter.")
    else:
        recent = shown.head(8)
        st.dataframe(
            recent[["id", "status", "model", "dataset", "best_val_f1", "created_at", "duration_s"]].assign(
                dataset=recent["dataset"].map(widgets.dataset_name),
                duration_s=recent["duration_s"].map(widgets.format_duration),
            ),
            hide_index=True,
            column_config={
                "id": st.column_config.NumberColumn("run", format="#%d"),
                "best_val_f1": st.column_config.NumberColumn("best F1", format="%.3f"),
                "created_at": st.column_config.DatetimeColumn("created", format="distance"),
                "duration_s": "duration",
            },
        )

if not runs.empty:
    st.subheader("Organise runs")
    st.caption("Name a run, tag it, write down what the team learned from it, or start a new run from its options.")
    organise.organise_panel(shown, url, key="home_organise")
