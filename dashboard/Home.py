"""Entry point of the dashboard: ``streamlit run dashboard/Home.py``.

A thin router: it makes ``backend`` and ``dashboard`` importable, sets the page config once, declares
the pages in ``pages/`` (top level, so Streamlit's automatic ``dashboard/pages/`` discovery stays out
of it) and runs the one the browser asked for. Server options live in ``dashboard/.streamlit/config.toml``.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import streamlit as st  # noqa: E402

from dashboard.setup import page_file, run_guarded  # noqa: E402

st.set_page_config(page_title="Anomaly Workbench", page_icon=":material/insights:", layout="wide")

navigation = st.navigation(
    {
        "Overview": [
            st.Page(page_file("home"), title="Home", icon=":material/home:", default=True),
        ],
        "Build": [
            st.Page(page_file("data"), title="Data", icon=":material/dataset:"),
            st.Page(page_file("train"), title="Train", icon=":material/model_training:"),
        ],
        "Review": [
            st.Page(page_file("compare"), title="Compare", icon=":material/compare_arrows:"),
            st.Page(page_file("class_metrics"), title="Class metrics", icon=":material/grid_on:"),
        ],
        "Use": [
            st.Page(page_file("predict"), title="Predict", icon=":material/online_prediction:"),
        ],
    }
)
run_guarded(navigation.run)
