"""The Train page's live panel: a fragment that redraws itself every few seconds, not the whole page.

It shows every queued or running run, and the runs this browser session launched after they end
(so a user sees "completed" rather than a card vanishing). The table of all runs below is a second,
slower fragment with its own delete action.
"""

from __future__ import annotations

import streamlit as st

from backend import runs, store
from backend.errors import WorkbenchError
from dashboard import charts, loaders, organise, summaries, widgets
from dashboard.setup import guarded

REFRESH = "3s"
TABLE_REFRESH = "10s"
DELETE_ERRORS_KEY = "train_delete_errors"
LAUNCHED_KEY = "train_launched"  # run ids launched from this session, newest last
SHOW_LAUNCHED = 3  # finished runs of this session kept on the panel
LOG_LINES = 8


def remember_launch(run_id: int) -> None:
    """Keep a run launched from this session on the live panel after it finishes."""
    st.session_state.setdefault(LAUNCHED_KEY, []).append(int(run_id))


@st.fragment(run_every=REFRESH)
def active_runs_panel() -> None:
    """Cards for active runs and this session's recent launches, refreshed every ``REFRESH``."""
    with guarded("the live panel"):
        if runs.maybe_reap():  # rate limited: `lost` shows within seconds with no one listing runs
            loaders.clear_run_caches()
        url = loaders.store_url()
        table = loaders.all_runs(url)
        active = [int(i) for i in table.loc[table["status"].isin(store.ACTIVE), "id"]] if not table.empty else []
        existing = set(table["id"].astype(int)) if not table.empty else set()
        launched = [i for i in st.session_state.get(LAUNCHED_KEY, []) if i in existing and i not in active]
        shown = sorted(active, reverse=True) + sorted(launched, reverse=True)[:SHOW_LAUNCHED]

        if not shown:
            st.caption("No run is training or queued. Launch one above.")
            return
        for run_id in shown:
            try:
                record = loaders.run_record(run_id, url)
            except store.RunNotFound:
                continue
            run_card(record, loaders.run_history(run_id, url))


def run_card(record: store.RunRecord, history) -> None:
    """Status, progress with ETA, curves, loss components, log tail and a cancel button for one run."""
    with st.container(border=True, key=f"run_card_{record.id}"):
        title, status, action = st.columns([6, 2, 2], vertical_alignment="center")
        default_name = f"{record.model} on {widgets.dataset_name(record.dataset)}"
        title.markdown(
            f"**{widgets.run_label(record)}**" + ("" if record.name == default_name else f"  \n{record.name}")
            + f"  \n{_where(record)}"
        )
        with status:
            widgets.status_badge(record.status)
        if record.status in store.ACTIVE and action.button(
            "Cancel", key=f"cancel_{record.id}", icon=":material/stop_circle:"
        ):
            cancel(record.id)

        _progress(record, history)
        if record.status in {"failed", "lost"}:
            st.error(record.error or f"run {record.status} without a message", icon=":material/error:")
        if not history.empty:
            panels = charts.curve_panels(history)
            components = charts.loss_components_chart(history)
            if components is not None:
                panels.append(components)
            for start in range(0, len(panels), 2):
                for cell, chart in zip(st.columns(2), panels[start : start + 2], strict=False):
                    cell.altair_chart(chart, width="stretch")
        tail = loaders.log_tail(record.id, LOG_LINES)
        if tail:
            st.caption("Log (last lines)")
            st.code(tail, language=None, wrap_lines=True, height=220)


def _where(record: store.RunRecord) -> str:
    """Where the run trains: ``Ray job on gpu-1`` or ``local on ws-2`` (the host once known)."""
    where = "Ray job" if record.executor == "ray" else "local"
    host = f" on {record.host}" if record.host else ""
    return f":gray[{where}{host}]"


def _progress(record: store.RunRecord, history) -> None:
    """Epoch progress bar with ETA (or what the run waits for)."""
    if record.status == "queued":
        waiting = ("Submitted to the Ray cluster; waiting for a node to start it." if record.executor_job_id
                   else "Waiting for a free training slot (MAX_CONCURRENT_RUNS).")  # fmt: skip
        st.caption(waiting)
        return
    total = record.total_epochs or int((record.config or {}).get("epochs", 0))
    done = int(record.current_epoch or 0)
    if not total:
        st.caption("Starting...")
        return
    text = f"epoch {done} of {total}"
    if record.status == "running":
        eta = summaries.eta_seconds(record, history)
        text += f", about {widgets.format_duration(eta)} left" if eta is not None else ", timing the first epoch"
    elif record.best_val_f1 is not None:
        text += f", best macro-F1 {record.best_val_f1:.3f} at epoch {record.best_epoch}"
    st.progress(min(done / total, 1.0), text=text)


def cancel(run_id: int) -> None:
    """Cancel a run (the trainer keeps its checkpoints) and say how it ended."""
    try:
        with st.spinner(f"Cancelling run #{run_id}..."):
            status = runs.cancel(run_id)
    except WorkbenchError as e:  # already finished, another host's process, an unreachable cluster
        st.warning(f"Run #{run_id} could not be cancelled: {e}")
        return
    loaders.clear_run_caches()
    st.toast(f"Run #{run_id} is {status}.")


@st.fragment(run_every=TABLE_REFRESH)
def all_runs_table() -> None:
    """Every run in a sortable table (refreshed every ``TABLE_REFRESH``); finished ones can be deleted."""
    with guarded("the runs table"):
        for message in st.session_state.pop(DELETE_ERRORS_KEY, []):
            st.error(message, icon=":material/error:")
        table = loaders.all_runs(loaders.store_url())
        if table.empty:
            st.caption("No runs yet.")
            return
        table = organise.run_filter(table, key="train_filter").reset_index(drop=True)
        view = table.assign(
            dataset=table["dataset"].map(widgets.dataset_name),
            epochs=table["current_epoch"].fillna(0).astype(int).astype(str)
            + " / "
            + table["total_epochs"].fillna(0).astype(int).astype(str),
            duration=table["duration_s"].map(widgets.format_duration),
            error=table["error"].fillna(""),
        )
        selection = st.dataframe(
            view[
                [
                    "id",
                    "name",
                    "status",
                    "model",
                    "dataset",
                    "best_val_f1",
                    "best_val_acc",
                    "epochs",
                    "duration",
                    "created_at",
                    "error",
                    "tags",
                ]
            ],
            hide_index=True,
            key="train_runs_table",
            on_select="rerun",
            selection_mode="multi-row",
            column_config={
                "id": st.column_config.NumberColumn("run", format="#%d"),
                "best_val_f1": st.column_config.NumberColumn("best F1", format="%.3f"),
                "best_val_acc": st.column_config.NumberColumn("best accuracy", format="percent"),
                "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
                "error": st.column_config.TextColumn("error", width="medium"),
                "tags": st.column_config.ListColumn("tags"),
            },
        )
        picked = table.iloc[selection.selection.rows]
        finished = picked[~picked["status"].isin(store.ACTIVE)]
        st.caption("Click a column header to sort; tick finished runs to delete them (cancel active runs first).")
        if not finished.empty:
            with st.popover(f"Delete {len(finished)} run(s)", icon=":material/delete:"):
                st.write("Deletes the runs' metrics, checkpoints and logs. This cannot be undone.")
                if st.button("Delete for good", type="primary", key="train_delete_confirm"):
                    delete_runs(finished["id"].astype(int).tolist())


def delete_runs(run_ids: list[int]) -> None:
    """Delete finished runs, then rerun the page; failures are shown after the rerun."""
    errors = []
    for run_id in run_ids:
        try:
            runs.delete(run_id)
        except (runs.RunStateError, store.StoreError, OSError) as e:
            errors.append(f"Run #{run_id} was not deleted: {e}")
    st.session_state[DELETE_ERRORS_KEY] = errors
    loaders.clear_run_caches()
    st.rerun()
