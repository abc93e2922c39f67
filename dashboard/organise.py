"""Runs a team organises: one filter widget for every page that lists runs, and a panel to rename a
run, write its notes (markdown), tag it, and clone it into the Train form.

The filter works on ``loaders.all_runs`` (whose ``tags`` column the store fills); the panel writes
through ``backend.store`` (``rename_run``, ``set_notes``, ``tag_run``), exactly what the CLI's
``runs rename``, ``runs note`` and ``runs tag`` call, so both see the same runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from backend import store
from dashboard import loaders, widgets
from dashboard.setup import page_file


def filter_runs(
    runs: pd.DataFrame,
    *,
    tags: Sequence[str] = (),
    models: Sequence[str] = (),
    datasets: Sequence[str] = (),
    statuses: Sequence[str] = (),
) -> pd.DataFrame:
    """The runs matching every filter given (an empty filter matches all); a run matches ``tags``
    when it carries any of them."""
    keep = pd.Series(True, index=runs.index)
    if tags:
        wanted = set(tags)
        keep &= runs["tags"].map(lambda have: bool(wanted & set(have or ())))
    for column, values in (("model", models), ("dataset", datasets), ("status", statuses)):
        if values:
            keep &= runs[column].isin(list(values))
    return runs[keep]


def run_filter(runs: pd.DataFrame, *, key: str) -> pd.DataFrame:
    """Four multiselects (tags, models, datasets, statuses) over ``runs``; returns the runs that match.
    Labels are plural, so they never clash with a page's own "Model" or "Dataset" picker.

    ``key`` prefixes the widgets' keys (``{key}_tags``, ``{key}_model``, ``{key}_dataset``,
    ``{key}_status``), one per page, so each page keeps its own filter.
    """
    if runs.empty:
        return runs
    all_tags = sorted({tag for have in runs.get("tags", pd.Series(dtype=object)) for tag in (have or ())})
    present = set(runs["status"])
    with st.container(horizontal=True, key=f"{key}_filters"):
        tags = st.multiselect("Tags", all_tags, key=f"{key}_tags", placeholder="any tag")
        models = st.multiselect("Models", sorted(runs["model"].unique()), key=f"{key}_model", placeholder="any model")
        datasets = st.multiselect(
            "Datasets", sorted(runs["dataset"].unique()), format_func=widgets.dataset_name, key=f"{key}_dataset",
            placeholder="any dataset",
        )  # fmt: skip
        statuses = st.multiselect(
            "Statuses", [s for s in store.STATUSES if s in present], key=f"{key}_status", placeholder="any status"
        )
    shown = filter_runs(runs, tags=tags, models=models, datasets=datasets, statuses=statuses)
    if len(shown) < len(runs):
        st.caption(f"{len(shown)} of {len(runs)} runs match the filter.")
    return shown


def organise_panel(runs: pd.DataFrame, url: str, *, key: str = "organise") -> None:
    """Rename, notes, tags and "clone into the form" for one run picked from ``runs``."""
    run_id = widgets.run_picker(runs, key=f"{key}_run", label="Run to organise")
    if run_id is None:
        st.caption("No run matches the filter.")
        return
    try:
        record = loaders.run_record(run_id, url)
    except store.RunNotFound:
        st.warning(f"Run #{run_id} no longer exists (deleted).")
        return
    current_tags = store.run_tags(run_id, url=url)
    known_tags = sorted(set(store.all_tags(url=url)) | set(current_tags))
    with st.container(border=True, key=f"{key}_box"):
        name = st.text_input("Name", value=record.name, key=f"{key}_name_{run_id}", max_chars=store.MAX_NAME_LENGTH)
        tags = st.multiselect(
            "Tags of this run", known_tags, default=current_tags, accept_new_options=True, key=f"{key}_tags_{run_id}",
            help="type a new tag and press Enter; letters, digits and - _ . : /",
        )  # fmt: skip
        notes = st.text_area(
            "Notes (markdown)", value=record.notes or "", key=f"{key}_notes_{run_id}", height=120,
            max_chars=store.MAX_NOTES_LENGTH,
        )  # fmt: skip
        save, clone = st.columns(2)
        if save.button("Save", type="primary", key=f"{key}_save", icon=":material/save:"):
            _save(run_id, name, tags, notes, current_tags, url)
        if clone.button("Clone into the form", key=f"{key}_clone", icon=":material/content_copy:"):
            from dashboard import train_form  # here, not above: it imports the model registry (torch)

            train_form.request_clone({**(record.config or {}), "model": record.model})
            st.switch_page(page_file("train"))
        if record.notes:
            with st.expander("Notes as the team reads them", expanded=True):
                st.markdown(record.notes)


def _save(run_id: int, name: str, tags: list[str], notes: str, current: list[str], url: str) -> None:
    """Write what changed; a refused value is a message, and nothing is half-saved."""
    try:
        cleaned = [store.check_tag(t) for t in tags]
        store.check_name(name)
        if len((notes or "").strip()) > store.MAX_NOTES_LENGTH:
            raise store.StoreError(f"notes are at most {store.MAX_NOTES_LENGTH} characters")
        store.rename_run(run_id, name, url=url)
        store.set_notes(run_id, notes, url=url)
        store.tag_run(run_id, add=set(cleaned) - set(current), remove=set(current) - set(cleaned), url=url)
    except store.StoreError as e:
        st.error(f"Not saved: {e}", icon=":material/error:")
        return
    loaders.clear_run_caches()
    st.success(f"Run #{run_id} saved.", icon=":material/check:")
