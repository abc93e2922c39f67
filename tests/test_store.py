"""The run store against real SQLite files, including several real writer processes at once."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from backend import store
from backend.config import REPO_ROOT
from backend.errors import WorkbenchError

N_WRITERS = 3
N_EPOCHS = 40


@pytest.fixture
def db_url(store_url) -> str:
    """A fresh database per test, on SQLite and on PostgreSQL (tests/fixtures/services.py), selected the
    way the product does: through RUNS_DB_URL."""
    return store_url


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch) -> str:
    """A fresh SQLite file per test (for what only SQLite has: pragmas, a damaged file)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("RUNS_DB_URL", url)
    return url


def make_run(**overrides) -> int:
    fields = {"name": "r", "model": "resnet50", "config": {"lr": 0.001}, "dataset": "data/demo"} | overrides
    return store.create_run(**fields)


def test_runs_db_url_override_creates_database_in_missing_folder(tmp_path, monkeypatch):
    path = tmp_path / "nested" / "deeper" / "runs.db"
    monkeypatch.setenv("RUNS_DB_URL", f"sqlite:///{path}")
    run_id = make_run()
    assert path.is_file()
    assert store.get_run(run_id).name == "r"
    tables = set(inspect(store.get_engine()).get_table_names())
    assert {"runs", "epoch_metrics", "class_metrics", "confusion_matrices", "evaluations"} <= tables


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url):
    with store.get_engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == store.SQLITE_BUSY_TIMEOUT_MS
    store.init_db()  # idempotent on an existing database


def test_schema_has_indexes_and_status_check(db_url):
    inspector = inspect(store.get_engine())
    run_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("runs")}
    assert {("status",), ("model",), ("created_at",), ("dataset",)} <= run_indexes
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("epoch_metrics")}
    assert ("run_id", "epoch") in uniques
    class_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("class_metrics")}
    assert ("run_id", "evaluation_id") in class_indexes
    assert [c["name"] for c in inspector.get_check_constraints("runs")] == ["ck_runs_status"]


def test_schema_and_queries_compile_for_postgresql():
    """No SQLite-only SQL: every table and the main queries render in PostgreSQL's dialect."""
    dialect = postgresql.dialect()
    for table in store.Base.metadata.sorted_tables:
        assert "CREATE TABLE" in str(CreateTable(table).compile(dialect=dialect))
    assert "JSON" in str(CreateTable(store.EpochMetric.__table__).compile(dialect=dialect))
    assert "TIMESTAMP WITH TIME ZONE" in str(CreateTable(store.Run.__table__).compile(dialect=dialect))
    query = select(store.Run.id).where(store.Run.status.in_(store.ACTIVE)).order_by(store.Run.created_at.desc())
    assert "ORDER BY runs.created_at DESC" in str(query.compile(dialect=dialect))


def test_run_record_mirrors_every_run_column():
    assert [f.name for f in dataclasses.fields(store.RunRecord)] == list(store.RUN_COLUMNS)


def test_create_get_update_round_trip(db_url):
    run_id = make_run(class_names=["a", "b"], class_counts={"train": {"a": 3, "b": 1}, "test": {"a": 1, "b": 1}})
    run = store.get_run(run_id)
    assert (run.status, run.config, run.class_names) == ("queued", {"lr": 0.001}, ["a", "b"])
    assert run.class_counts["train"] == {"a": 3, "b": 1}
    assert run.created_at.tzinfo is not None and run.created_at.utcoffset() == timedelta(0)

    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.update_run(
        run_id,
        status="running",
        started_at=started,
        best_metrics={"val_f1": np.float32(0.5)},
        best_val_f1=np.float64(0.75),
        pid=1234,
        pid_start_time=99.5,
    )
    run = store.get_run(run_id)
    assert run.status == "running" and run.started_at == started and run.pid == 1234
    assert run.best_metrics == {"val_f1": 0.5} and run.best_val_f1 == 0.75


def test_nan_is_stored_as_null_and_timestamps_come_back_utc(db_url):
    """The same values read back from SQLite and PostgreSQL (which rejects NaN in JSON outright)."""
    run_id = make_run(config={"lr": float("inf"), "sizes": (32, 64)})
    local = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    store.update_run(
        run_id,
        best_metrics={"val_f1": float("nan"), "per_class": np.array([0.5, np.nan]), "n": np.int64(3)},
        test_metrics={"ece": np.float32("nan"), "accuracy_ci": [np.float64(0.8), float("-inf")]},
        best_val_f1=float("nan"),
        best_val_acc=np.float64("nan"),
        started_at=local,
        finished_at=datetime(2026, 3, 1, 11, 0),  # naive: taken as UTC
    )
    store.log_epoch(run_id, {"epoch": 1, "val_f1": np.float32("nan"), "extra": {"kl": float("nan"), "recon": 1.5}})
    run = store.get_run(run_id)
    assert run.config == {"lr": None, "sizes": [32, 64]}
    assert run.best_metrics == {"val_f1": None, "per_class": [0.5, None], "n": 3}
    assert run.test_metrics == {"ece": None, "accuracy_ci": [0.8, None]}
    assert run.best_val_f1 is None and run.best_val_acc is None
    assert run.started_at == local and run.started_at.utcoffset() == timedelta(0) and run.started_at.hour == 10
    assert run.finished_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    listed = store.list_runs().set_index("id")
    assert str(listed["started_at"].dtype) == "datetime64[us, UTC]"
    assert listed.loc[run_id, "duration_s"] == pytest.approx(3600) and np.isnan(listed.loc[run_id, "best_val_f1"])
    history = store.run_history(run_id)
    assert np.isnan(history.loc[0, "val_f1"]) and history.loc[0, "extra"] == {"kl": None, "recon": 1.5}


def test_runs_created_in_the_same_instant_list_newest_id_first_and_filters_match_case(db_url):
    same = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [make_run(name=f"r{i}", model=model) for i, model in enumerate(["ResNet50", "resnet50", "resnet50"])]
    with store.session_scope() as session:
        session.execute(store.update(store.Run).values(created_at=same))
    assert list(store.list_runs()["id"]) == ids[::-1]
    assert list(store.list_runs(model="resnet50")["id"]) == ids[:0:-1]
    assert list(store.list_runs(model="ResNet50")["id"]) == ids[:1]


def test_values_a_column_cannot_hold_are_refused_alike_on_both_databases(db_url):
    with pytest.raises(store.StoreError, match="run field 'name' is 201 characters long; the store keeps at most 200"):
        make_run(name="n" * 201)
    run_id = make_run(name="n" * 200)
    with pytest.raises(store.StoreError, match="run field 'host' is 300 characters"):
        store.update_run(run_id, host="h" * 300)
    if db_url.startswith("postgresql"):  # SQLite keeps any integer
        with pytest.raises(store.StoreError, match="rejected the change: integer out of range"):
            store.update_run(run_id, pid=2**31)
    assert store.get_run(run_id).pid is None and store.get_run(run_id).name == "n" * 200


def test_update_run_rejects_unknown_fields_and_missing_runs(db_url):
    run_id = make_run()
    with pytest.raises(store.StoreError, match="unknown run field.*best_f1"):
        store.update_run(run_id, best_f1=0.3)
    with pytest.raises(store.RunNotFound, match="run 424242 not found"):
        store.update_run(424242, status="failed")
    with pytest.raises(store.RunNotFound, match="run 42 not found"):
        store.get_run(42)


def test_update_run_if_sets_fields_only_while_the_status_matches(db_url):
    run_id = make_run()
    assert store.update_run_if(run_id, ["queued"], status="running", pid=4242)
    assert not store.update_run_if(run_id, ["queued"], status="cancelled")  # lost the race: no change
    assert store.get_run(run_id).status == "running"
    # a run already running in the claiming process matches; one running elsewhere does not
    assert not store.update_run_if(run_id, ["queued"], running_pid=99, name="elsewhere")
    assert store.update_run_if(run_id, ["queued"], running_pid=4242, name="mine")
    assert store.get_run(run_id).name == "mine"
    assert store.update_run_if(run_id, store.ACTIVE, status="cancelled")
    assert not store.update_run_if(run_id + 1, store.ACTIVE, status="cancelled")  # no such run
    with pytest.raises(store.StoreError, match="unknown run field"):
        store.update_run_if(run_id, ["cancelled"], colour="red")


def test_bogus_status_is_rejected_by_the_database(db_url):
    with pytest.raises(store.StoreError, match="rejected"):
        make_run(status="exploded")
    run_id = make_run()
    with pytest.raises(store.StoreError, match="rejected"):
        store.update_run(run_id, status="done")
    assert store.get_run(run_id).status == "queued"
    assert store.count_runs_by_status()["queued"] == 1


def test_list_runs_filters_newest_first_and_duration(db_url):
    old = make_run(name="old", model="visual_cnn", dataset="d1")
    mid = make_run(name="mid", model="resnet50", dataset="d1")
    new = make_run(name="new", model="resnet50", dataset="d2")
    now = datetime.now(UTC)
    store.update_run(
        old, status="completed", started_at=now - timedelta(seconds=100), finished_at=now - timedelta(seconds=40)
    )
    store.update_run(mid, status="running", started_at=now - timedelta(seconds=10))

    runs = store.list_runs()
    assert list(runs["id"]) == [new, mid, old]
    assert set(runs.columns) >= {"id", "name", "status", "best_val_f1", "duration_s", "train_acc_at_best", "error"}
    assert runs.set_index("id").loc[old, "duration_s"] == pytest.approx(60)
    assert runs.set_index("id").loc[mid, "duration_s"] >= 10
    assert pd.isna(runs.set_index("id").loc[new, "duration_s"])

    assert list(store.list_runs(status="running")["id"]) == [mid]
    assert list(store.list_runs(status=store.ACTIVE)["id"]) == [new, mid]
    assert list(store.list_runs(model="resnet50", dataset="d1")["id"]) == [mid]
    assert list(store.list_runs(limit=2)["id"]) == [new, mid]
    assert store.list_runs(model="nothing").empty
    assert store.count_runs_by_status() == {
        "queued": 1,
        "running": 1,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
        "lost": 0,
    }


def test_history_is_ordered_with_extras_expanded(db_url):
    run_id = make_run()
    for epoch in (3, 1, 2):
        store.log_epoch(
            run_id,
            {
                "epoch": epoch,
                "train_loss": 1.0 / epoch,
                "val_f1": np.float32(0.1 * epoch),
                "extra": {"recon": epoch * 10.0, "kl": 0.5},
            },
        )
    history = store.run_history(run_id)
    assert list(history["epoch"]) == [1, 2, 3]
    assert list(history["extra_recon"]) == [10.0, 20.0, 30.0]
    assert history.loc[0, "extra"] == {"recon": 10.0, "kl": 0.5}
    assert history["val_f1"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert history["seconds"].dtype == "float64"  # never logged: NaN, not None
    assert store.get_run(run_id).current_epoch == 2  # the last epoch logged
    assert store.run_history(make_run()).empty


def test_log_epoch_twice_replaces_the_row(db_url):
    run_id = make_run()
    store.log_epoch(run_id, {"epoch": 1, "val_acc": 0.2, "extra": {"recon": 1.0}})
    store.log_epoch(run_id, {"epoch": 1, "val_acc": 0.9})
    history = store.run_history(run_id)
    assert len(history) == 1 and history.loc[0, "val_acc"] == 0.9
    assert "extra_recon" not in history


def test_log_epoch_rejects_unknown_keys_and_missing_run(db_url):
    run_id = make_run()
    with pytest.raises(store.StoreError, match="unknown epoch field.*val_auc"):
        store.log_epoch(run_id, {"epoch": 1, "val_auc": 0.5})
    with pytest.raises(store.StoreError, match="rejected"):
        store.log_epoch(999, {"epoch": 1})


def test_runs_history_covers_several_runs(db_url):
    run_ids = [make_run(name=f"r{i}") for i in range(3)]
    for i, run_id in enumerate(run_ids):
        for epoch in range(1, i + 3):
            store.log_epoch(run_id, {"epoch": epoch, "val_f1": epoch / 10})
    history = store.runs_history(run_ids[:2])
    assert list(zip(history["run_id"], history["epoch"], strict=True)) == [
        (run_ids[0], 1), (run_ids[0], 2), (run_ids[1], 1), (run_ids[1], 2), (run_ids[1], 3),
    ]  # fmt: skip
    assert store.runs_history([]).empty


def test_class_metrics_confusion_and_evaluations_round_trip(db_url):
    run_id = make_run()
    rows = [
        {"class_name": "mean_shift", "precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10},
        {"class_name": "volatility", "precision": 0.5, "recall": 0.6, "f1": 0.55, "support": np.int64(7)},
    ]
    store.save_class_metrics(run_id, rows)
    store.save_confusion(run_id, np.array([[8, 2], [3, 4]]), ["mean_shift", "volatility"])
    assert store.class_metrics(run_id).to_dict("records") == rows

    names, matrix = store.confusion(run_id)
    assert names == ["mean_shift", "volatility"] and matrix.tolist() == [[8, 2], [3, 4]]
    store.save_confusion(run_id, [[9, 1], [0, 7]], names)  # replaces
    assert store.confusion(run_id)[1].tolist() == [[9, 1], [0, 7]]
    with pytest.raises(store.StoreError, match="expected 2x2"):
        store.save_confusion(run_id, [[1, 2, 3]], names)

    metrics = {"accuracy": 0.7, "macro_precision": 0.6, "macro_recall": 0.65, "macro_f1": 0.62, "n_samples": 17}
    eval_id = store.save_evaluation(
        run_id,
        dataset="data/other",
        metrics=metrics,
        per_class=rows[:1],
        matrix=[[5]],
        class_names=["mean_shift"],
        tta="flip4",
    )
    evaluations = store.list_evaluations(run_id)
    assert list(evaluations["id"]) == [eval_id]
    assert evaluations.loc[0, "tta"] == "flip4" and evaluations.loc[0, "macro_f1"] == 0.62
    assert evaluations.loc[0, "metrics"] == metrics
    assert store.class_metrics(run_id, eval_id)["class_name"].tolist() == ["mean_shift"]
    assert store.confusion(run_id, eval_id)[1].tolist() == [[5]]
    assert len(store.class_metrics(run_id)) == 2  # the run's own test metrics are untouched
    assert store.confusion(make_run()) is None


def test_delete_run_rows_cascades(db_url):
    keep, doomed = make_run(), make_run()
    for run_id in (keep, doomed):
        store.log_epoch(run_id, {"epoch": 1, "val_f1": 0.5})
        store.save_class_metrics(run_id, [{"class_name": "a", "f1": 0.5}])
        store.save_confusion(run_id, [[1]], ["a"])
        store.save_evaluation(
            run_id, dataset="d", metrics={"accuracy": 1.0}, per_class=[], matrix=[[1]], class_names=["a"]
        )

    store.delete_run_rows(doomed)
    store.delete_run_rows(doomed)  # already gone: no error

    with pytest.raises(store.RunNotFound):
        store.get_run(doomed)
    with store.get_engine().connect() as conn:
        for table in ("epoch_metrics", "class_metrics", "confusion_matrices", "evaluations"):
            run_ids = {row[0] for row in conn.exec_driver_sql(f"SELECT run_id FROM {table}")}
            assert run_ids == {keep}, table
    assert len(store.run_history(keep)) == 1


# A training process in miniature: waits for the go signal so that all writers start together on a
# database nobody has created yet (racing on table creation too), then logs every epoch with no pauses.
WRITER = textwrap.dedent(
    """
    import sys
    from backend import store

    name, n_epochs = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    run_id = store.create_run(name=name, model="visual_cnn", config={}, dataset="d", status="running")
    for epoch in range(1, n_epochs + 1):
        store.log_epoch(run_id, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_f1": epoch / n_epochs,
                                 "extra": {"recon": float(epoch)}})
        store.update_run(run_id, best_epoch=epoch, best_val_f1=epoch / n_epochs)
    store.update_run(run_id, status="completed")
    """
)


def test_concurrent_writer_processes_lose_nothing(db_url):
    names = [f"writer-{i}" for i in range(N_WRITERS)]
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(N_EPOCHS)],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()

        polls = 0
        while any(writer.poll() is None for writer in writers):  # read like the dashboard does
            store.runs_history(store.list_runs(status=store.ACTIVE)["id"])
            store.count_runs_by_status()
            polls += 1
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
        errors = [writer.communicate()[1] for writer in writers]  # also closes the pipes

    assert [writer.returncode for writer in writers] == [0] * N_WRITERS, errors
    assert not any("locked" in err for err in errors), errors
    assert polls > 0
    runs = store.list_runs()
    assert sorted(runs["name"]) == names
    assert set(runs["status"]) == {"completed"}
    assert set(runs["current_epoch"]) == set(runs["best_epoch"]) == {N_EPOCHS}
    history = store.runs_history(runs["id"])
    assert len(history) == N_WRITERS * N_EPOCHS
    for run_id in runs["id"]:
        run_rows = history[history["run_id"] == run_id]
        assert run_rows["epoch"].tolist() == list(range(1, N_EPOCHS + 1))
        assert run_rows["extra_recon"].tolist() == [float(e) for e in range(1, N_EPOCHS + 1)]


def test_store_imports_without_torch_or_streamlit():
    """The dashboard reads runs without torch; the backend never imports streamlit."""
    code = "import sys, backend.store; print(sorted({'torch', 'streamlit'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_comparison_columns_round_trip_and_default_to_none(db_url):
    old = make_run()
    record = store.get_run(old)
    assert (record.selection_split, record.split_counts, record.test_metrics, record.temperature) == (None,) * 4
    new = make_run()
    counts = {"train": 80, "val": 14, "test": 30, "duplicates_removed": {"val": 1, "test": 0}}
    metrics = {"accuracy": 0.9, "accuracy_ci": [0.85, 0.95], "macro_f1": 0.88, "ece": np.float64(0.02)}
    store.update_run(new, selection_split="validation", split_counts=counts, test_metrics=metrics, temperature=1.7)
    record = store.get_run(new)
    assert record.selection_split == "validation" and record.split_counts == counts
    assert record.test_metrics["accuracy_ci"] == [0.85, 0.95] and record.temperature == 1.7
    listed = store.list_runs().set_index("id")
    assert listed.loc[new, "selection_split"] == "validation" and listed.loc[new, "test_metrics"]["ece"] == 0.02
    assert pd.isna(listed.loc[old, "selection_split"])


def test_predictions_are_stored_per_target_replaced_and_deleted_with_the_run(db_url):
    run_id = make_run(class_names=["a", "b"])
    rows = [
        {
            "item_hash": "h1",
            "path": "test/a/1.png",
            "true_index": 0,
            "pred_index": np.int64(0),
            "probs": np.array([0.9, 0.1]),
            "confidence": np.float32(0.9),
        },
        {"item_hash": "h2", "path": "test/b/2.png", "true_index": 1, "pred_index": 0},
    ]
    store.save_predictions(run_id, rows)
    frame = store.predictions(run_id)
    assert list(frame.columns) == list(store.PREDICTION_COLUMNS)
    assert list(frame["item_hash"]) == ["h1", "h2"] and list(frame["split"]) == ["test", "test"]
    assert frame.loc[0, "probs"] == pytest.approx([0.9, 0.1]) and np.isnan(frame.loc[1, "confidence"])

    evaluation_id = store.save_evaluation(
        run_id, dataset="other", metrics={}, per_class=[], matrix=[[0, 0], [0, 0]], class_names=["a", "b"]
    )
    store.save_predictions(run_id, rows[:1], evaluation_id=evaluation_id)
    store.save_predictions(run_id, rows[1:])  # replaces the run's own rows, not the evaluation's
    assert list(store.predictions(run_id)["item_hash"]) == ["h2"]
    assert list(store.predictions(run_id, evaluation_id)["item_hash"]) == ["h1"]

    with pytest.raises(store.StoreError, match="unknown prediction field"):
        store.save_predictions(run_id, [{"item_hash": "h", "path": "p", "true_index": 0, "pred_index": 0, "x": 1}])
    with pytest.raises(store.StoreError, match="need pred_index"):
        store.save_predictions(run_id, [{"item_hash": "h", "path": "p", "true_index": 0}])
    assert list(store.predictions(run_id)["item_hash"]) == ["h2"]  # a rejected save leaves rows intact

    store.delete_run_rows(run_id)
    assert store.predictions(run_id).empty and store.predictions(run_id, evaluation_id).empty


def test_an_unreadable_store_is_a_store_error_naming_the_url(tmp_path):
    """Every entry point (engine, session, DataFrame query) turns a damaged file into one StoreError."""
    path = tmp_path / "runs.db"
    path.write_bytes(b"\x00garbage" * 500)
    url = f"sqlite:///{path}"
    for call in (lambda: store.get_run(1, url=url), lambda: store.list_runs(url=url), lambda: store.init_db(url)):
        with pytest.raises(store.StoreError, match=rf"^the run store {url} cannot be used \(file is not a database\)"):
            call()
    assert isinstance(store.StoreError("x"), WorkbenchError)
    assert store.masked_url("postgresql+psycopg://team:s3cret@db:5432/runs") == "postgresql+psycopg://team:***@db:5432/runs"
