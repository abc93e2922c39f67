"""The Data page's generator form: options in, ``generate_dataset`` out, progress shown as it runs.

Widgets (not an ``st.form``) so the fields follow the choices: a long-tail ratio appears only for
long-tail, a table of counts only for custom counts. The options map one to one onto
``backend.data.generate.generate_dataset`` (imbalance ``balanced``, ``longtail:RATIO`` or
``counts:a=N,...``), which validates them and says what to change; its message is shown as is.
"Replace" follows the generator's rule: only a folder generate wrote, holding nothing else, is
replaced (``backend/data/generate.py``); any other folder is refused with the reason.
After a dataset is made the page reruns with it selected and a note saying what was made.
"""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from backend.data.generate import generate_dataset
from backend.data.render import STYLES
from backend.data.series import CLASSES, FIVE_CLASS_PRESET
from dashboard import loaders

FLASH_KEY = "data_flash"
PENDING_KEY = "data_pending_selection"
CLASS_SETS = {"all nine": list(CLASSES), "five-class preset": list(FIVE_CLASS_PRESET), "choose": None}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def show_flash() -> None:
    """The note left by the last generation (shown once, after the rerun that selects the dataset)."""
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def apply_pending_selection() -> None:
    """Select the dataset just generated; must run before the dataset selectbox is drawn."""
    pending = st.session_state.pop(PENDING_KEY, None)
    if pending is not None:
        st.session_state["data_dataset"] = pending


def _imbalance(mode: str, classes: list[str]) -> str:
    """The imbalance spec for ``generate_dataset`` from the mode's own widgets."""
    if mode == "long-tail":
        ratio = st.number_input("Imbalance ratio (largest / smallest class)", value=10.0, step=1.0, key="gen_ratio",
                                help="counts decay geometrically in class order from N down to N / ratio")  # fmt: skip
        return f"longtail:{ratio:g}"
    if mode == "custom counts":
        st.caption("Training images per class (test images follow in the same proportion).")
        table = st.data_editor(
            pd.DataFrame({"class": classes, "train images": [40] * len(classes)}),
            hide_index=True, disabled=["class"], key=f"gen_counts_{'_'.join(classes)}",
            column_config={"train images": st.column_config.NumberColumn(min_value=1, step=1)},
        )  # fmt: skip
        return "counts:" + ",".join(f"{row['class']}={int(row['train images'])}" for _, row in table.iterrows())
    return "balanced"


def generate_section(expanded: bool) -> None:
    """The "Generate a synthetic dataset" expander."""
    with st.expander("Generate a synthetic dataset", expanded=expanded, icon=":material/add_chart:"):
        name_col, seed_col, style_col = st.columns([2, 1, 1])
        name = name_col.text_input("Name (a folder under the data folder)", value="synthetic", key="gen_name").strip()
        seed = seed_col.number_input("Seed", value=0, step=1, key="gen_seed")
        style = style_col.selectbox("Plot style", STYLES.names(), index=STYLES.names().index("team"), key="gen_style",
                                    help="team: 8x6 in at 100 DPI like the team's plots; varied: a random style per plot; mixed: half and half (best for training)")  # fmt: skip

        set_col, mode_col = st.columns(2)
        class_set = set_col.radio("Classes", list(CLASS_SETS), horizontal=True, key="gen_class_set")
        classes = CLASS_SETS[class_set]
        if classes is None:
            classes = sorted(
                set_col.multiselect("Pick classes", list(CLASSES), default=list(CLASSES), key="gen_classes")
            )
        mode = mode_col.radio(
            "Class balance", ["balanced", "long-tail", "custom counts"], horizontal=True, key="gen_mode"
        )

        train_col, test_col, difficulty_col = st.columns(3)
        train = train_col.number_input("Training images per class", value=40, step=10, key="gen_train",
                                       help="long-tail: the largest class; custom: classes left at their default")  # fmt: skip
        test = test_col.number_input("Test images per class", value=20, step=5, key="gen_test")
        difficulty = difficulty_col.number_input("Difficulty", value=1.0, step=0.25, key="gen_difficulty",
                                                 help="divides anomaly magnitudes against the noise: higher is harder")  # fmt: skip
        with mode_col:
            imbalance = _imbalance(mode, classes)
        replace = st.checkbox("Replace a generated dataset of the same name", key="gen_replace",
                              help="only a folder this product generated, holding nothing else, is replaced")  # fmt: skip

        if st.button("Generate", type="primary", icon=":material/play_arrow:", key="gen_submit"):
            _generate(name, replace, classes=classes, imbalance=imbalance, train=int(train), test=int(test),
                      seed=int(seed), style=style, difficulty=float(difficulty))  # fmt: skip


def _generate(name: str, replace: bool, *, classes, imbalance, train, test, seed, style, difficulty) -> None:
    """Check the name, run the generator with a progress bar, then select the new dataset."""
    if not NAME_PATTERN.match(name):
        st.error("Name must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit.")
        return
    out = loaders.data_root() / name
    if out.exists() and not replace:
        st.error(f"A dataset named {name} already exists. Pick another name or tick 'Replace'.")
        return
    bar = st.progress(0.0, text="Starting...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{done} of {total} plots drawn")

    try:
        manifest = generate_dataset(
            out, train_per_class=train, test_per_class=test, seed=seed, classes=classes, imbalance=imbalance,
            style=style, difficulty=difficulty, progress=progress,
        )  # fmt: skip
    except (ValueError, OSError) as e:
        bar.empty()
        st.error(f"Not generated: {e}", icon=":material/error:")
        return
    total = sum(sum(split.values()) for split in manifest["counts"].values())
    loaders.datasets.clear()
    st.session_state[PENDING_KEY] = str(out)
    st.session_state[FLASH_KEY] = (
        f"Generated {name}: {total:,} plots of {len(manifest['classes'])} classes ({imbalance})."
    )
    st.rerun()
