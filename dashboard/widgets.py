"""Small UI pieces several pages share: run pickers, status badges, galleries, run problems.

Everything that formats a run for a person lives here, so a run reads the same on every page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from backend import store
from dashboard.setup import page_file

STATUS_COLOURS = {
    "queued": "gray",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "orange",
    "lost": "violet",
}
STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/play_circle:",
    "completed": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "lost": ":material/help:",
}


def status_badge(status: str, count: int | None = None) -> None:
    """A coloured badge for a run status (with a count, for summaries)."""
    label = status if count is None else f"{status}: {count}"
    st.badge(label, icon=STATUS_ICONS.get(status), color=STATUS_COLOURS.get(status, "gray"))


def dataset_name(path: str | None) -> str:
    """The folder name of a dataset path (full paths are long and say little)."""
    return Path(path).name if path else "?"


def format_duration(seconds: float | None) -> str:
    """``95`` -> ``1m 35s``; empty for unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_f1(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def run_label(run: pd.Series | store.RunRecord | dict) -> str:
    """``#12 visual_cnn on demo (F1 0.954)``: how a run is named in every picker and legend.

    A run the team named (or renamed) shows its name first: ``#12 baseline · visual_cnn on demo (F1 0.954)``.
    """
    get = run.get if isinstance(run, dict | pd.Series) else lambda key, default=None: getattr(run, key, default)
    what = f"{get('model')} on {dataset_name(get('dataset'))}"
    name = str(get("name") or "").strip()
    label = f"#{int(get('id'))} {name} · {what}" if name and name != what else f"#{int(get('id'))} {what}"
    f1 = get("best_val_f1")
    if f1 is not None and not (isinstance(f1, float) and math.isnan(f1)):
        label += f" (F1 {f1:.3f})"
    elif get("status") != "completed":
        label += f" ({get('status')})"
    return label


def short_label(run: pd.Series | store.RunRecord | dict) -> str:
    """``#12 visual_cnn``: a run in chart legends and table headers, where space is short."""
    get = run.get if isinstance(run, dict | pd.Series) else lambda key, default=None: getattr(run, key, default)
    return f"#{int(get('id'))} {get('model')}"


def run_picker(
    runs: pd.DataFrame,
    *,
    key: str,
    label: str = "Run",
    statuses: Sequence[str] | None = None,
    prefer: Sequence[str] = (),
    help: str | None = None,
) -> int | None:
    """A selectbox over ``runs`` (newest first) that returns the chosen run id, or None if none fit.

    ``statuses`` keeps only runs of those statuses; ``prefer`` keeps them all but opens on the
    newest run whose status is in it (the newest run when none is), so a page that shows results
    opens on a run that has some while a newer one is still training or has failed.
    """
    if statuses is not None:
        runs = runs[runs["status"].isin(statuses)]
    if runs.empty:
        return None
    labels = {int(r["id"]): run_label(r) for _, r in runs.iterrows()}
    preferred = [i for i, status in enumerate(runs["status"]) if status in prefer]
    return st.selectbox(label, list(labels), index=preferred[0] if preferred else 0, format_func=labels.__getitem__,
                        key=key, help=help)  # fmt: skip


def run_problem(record: store.RunRecord) -> bool:
    """Say plainly why a run has no results to show; True when it has none (the caller stops)."""
    if record.status == "failed":
        st.error(f"Run #{record.id} failed: {record.error or 'no error message was recorded'}", icon=":material/error:")
        return True
    if record.status == "lost":
        st.warning(
            f"Run #{record.id} was lost: {record.error or 'its process ended without reporting'}",
            icon=":material/help:",
        )
        return True
    if record.status in store.ACTIVE:
        st.info(
            f"Run #{record.id} is {record.status}; its results appear here when it completes.",
            icon=":material/schedule:",
        )
        return True
    if record.status == "cancelled":
        st.info(f"Run #{record.id} was cancelled after epoch {record.current_epoch or 0}.", icon=":material/cancel:")
    return False


@st.dialog("Image", width="large")
def _larger(image: object, caption: str) -> None:
    """The image at the dialog's full width (a plot's tick labels are readable there)."""
    st.image(image, width="stretch")
    st.caption(caption)


def image_gallery(
    items: Sequence[tuple[object, str]], columns: int = 6, width: int | str = "stretch", *, key: str | None = None
) -> None:
    """Images (paths, bytes or arrays) with captions in a grid of ``columns``.

    A path's file name leads its caption. With ``key``, each image gets an "Open larger" button that
    shows it in a dialog (keys ``{key}_{i}``, so two galleries on a page need two keys).
    """
    for start in range(0, len(items), columns):
        cells = st.columns(columns)
        for offset, (cell, (image, caption)) in enumerate(zip(cells, items[start : start + columns], strict=False)):
            if isinstance(image, str | Path) and Path(image).name not in caption:
                caption = f"{Path(image).name} · {caption}" if caption else Path(image).name
            with cell:
                try:
                    st.image(image, caption=caption, width=width)
                except Exception as e:  # a deleted or unreadable file must not take the page down
                    st.caption(f"{caption}: cannot show image ({e})")
                    continue
                larger = key is not None and st.button(
                    "Open larger", key=f"{key}_{start + offset}", icon=":material/zoom_in:"
                )
                if larger:
                    _larger(image, caption)


def prediction_gallery(items: Sequence[dict], *, key: str, columns: int = 4) -> None:
    """Predicted files, each with its file name, the true class's probability and the top-3 classes.

    ``items``: dicts with ``image`` (a path, or None when the file cannot be shown), ``name`` (the path
    relative to the dataset), ``p_true``, ``true`` (class name) and ``top3`` (text). Fewer columns than
    ``image_gallery``: these are looked at closely. Each has "Open larger".
    """
    for start in range(0, len(items), columns):
        cells = st.columns(columns)
        for offset, (cell, item) in enumerate(zip(cells, items[start : start + columns], strict=False)):
            p_true = item.get("p_true")
            lines = [f"**{Path(item['name']).name}**"]
            if p_true is not None:
                lines.append(f"P({item['true']}) = {p_true:.1%}")
            if item.get("top3"):
                lines.append(f"top-3: {item['top3']}")
            with cell:
                if item["image"] is None:
                    st.caption(f"{item['name']}: {item.get('missing', 'file not available')}")
                    continue
                try:
                    st.image(str(item["image"]), width="stretch")
                except Exception as e:  # a deleted or unreadable file must not take the page down
                    st.caption(f"{item['name']}: cannot show image ({e})")
                    continue
                st.markdown("  \n".join(lines), help=item["name"])
                if st.button("Open larger", key=f"{key}_{start + offset}", icon=":material/zoom_in:"):
                    _larger(str(item["image"]), " · ".join(line.replace("**", "") for line in lines))


def csv_download(frame: pd.DataFrame, file_name: str, *, key: str, index: bool = True) -> None:
    """A "Download CSV" button for a table the page shows (what a team pastes into a write-up)."""
    st.download_button(
        "Download CSV",
        frame.to_csv(index=index).encode("utf-8"),
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
    )


def no_runs_yet(what: str = "Nothing to show") -> None:
    """The empty state of pages that need runs: say so and where to start one."""
    st.info(f"{what}: there are no training runs yet. Start one on the Train page.", icon=":material/info:")
    st.page_link(page_file("train"), label="Go to Train", icon=":material/model_training:")
