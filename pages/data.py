"""Data: look at a dataset (class counts, imbalance, class weights, samples) and generate new ones."""

import pandas as pd
import streamlit as st

from backend.data.dataset import DatasetError
from dashboard import charts, data_form, loaders, widgets
from dashboard.setup import setup_page

setup_page(
    "Data",
    f"Datasets are folders under `{loaders.data_root()}`: `train/<class>/*.png` and `test/<class>/*.png`, or `<class>/*.png`.",
)

data_form.show_flash()
datasets = loaders.datasets(str(loaders.data_root()))
if not datasets:
    st.info(
        "No dataset yet. Generate a synthetic one below, or copy a folder of class sub-folders into the data folder.",
        icon=":material/info:",
    )
else:
    data_form.apply_pending_selection()
    root = st.selectbox("Dataset", datasets, format_func=widgets.dataset_name, key="data_dataset")
    try:
        summary = loaders.dataset_summary(root, loaders.dataset_stamp(root))
    except (DatasetError, OSError) as e:
        st.error(f"Cannot read dataset {widgets.dataset_name(root)}: {e}", icon=":material/error:")
        summary = None

    if summary is not None:
        classes, counts = summary["classes"], summary["counts"]
        ratios = summary["imbalance_ratio"]
        cols = st.columns(5)
        cols[0].metric("Classes", len(classes))
        cols[1].metric("Images", f"{summary['total_images']:,}")
        shown = [split for split in ("train", "val", "test") if split in counts]  # val only with a val/ folder
        cols[2].metric(" / ".join(split.capitalize() if i == 0 else split for i, split in enumerate(shown)),
                       " / ".join(f"{sum(counts[split].values()):,}" for split in shown),
                       help=("test split from the test/ folder" if summary["split"] == "folder" else "no test/ folder: a seeded stratified split")
                       + ("; validation from the val/ folder" if "val" in counts else "; validation: a seeded share of train, held out at training time"))  # fmt: skip
        for col, split in zip(cols[3:], ("train", "test"), strict=True):
            ratio = ratios.get(split)
            col.metric(
                f"Imbalance ratio, {split}",
                "undefined" if ratio is None else f"{ratio:.2f}",
                help="largest class over smallest class",
            )
        for note in summary["notes"]:
            st.caption(note)
        if summary["unreadable"]:
            st.warning(f"{len(summary['unreadable'])} file(s) cannot be read and are left out, e.g. "
                       f"{summary['unreadable'][0]['path']}: {summary['unreadable'][0]['reason']}")  # fmt: skip

        chart_col, weights_col = st.columns([3, 2], gap="large")
        with chart_col:
            st.subheader("Images per class")
            st.altair_chart(charts.class_counts_chart(counts), width="stretch")
        with weights_col:
            st.subheader("Class weights")
            weights = summary["class_weights"]
            st.dataframe(
                pd.DataFrame({"balanced": weights["balanced"], "effective number": weights["effective_number"]}),
                width="stretch",
                column_config={
                    "_index": "class",
                    "balanced": st.column_config.NumberColumn("balanced", format="%.3f", help="n / (k * n_c)"),
                    "effective number": st.column_config.NumberColumn(
                        "effective number",
                        format="%.3f",
                        help=f"(1 - beta) / (1 - beta^n_c), beta {weights['beta']}, mean 1",
                    ),
                },
            )
            st.caption("Weights a loss would give each class (computed on the training split).")

        st.subheader("Samples")
        shown = st.segmented_control(
            "Class", ["one of each", *classes], default="one of each", key="data_gallery_class", required=True
        )
        samples = loaders.dataset_samples(root, loaders.dataset_stamp(root), 6)
        if shown == "one of each":
            items = [(paths[0], name) for name, paths in samples.items() if paths]
        else:
            items = [(path, shown) for path in samples.get(shown, [])]
        widgets.image_gallery(
            items, columns=min(6, max(len(items), 3)) if shown != "one of each" else 5, key="data_gallery_larger"
        )

st.divider()
data_form.generate_section(expanded=not datasets)
