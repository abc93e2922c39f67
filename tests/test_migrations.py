"""Schema migrations of the run store (backend/migrations/) on real SQLite files.

``tests/fixtures/store_pre_migrations.db`` was written through ``backend.store`` by the release
before migrations (commit ee4278d): no ``alembic_version`` table, ``runs`` without AUTOINCREMENT or
``host``. It holds runs 1 (completed), 2 (failed, error "boom") and 3 (cancelled), each with two
epoch rows whose ``extra`` is ``{"recon": 0.25 * epoch, "kl": 0.01}``, two class-metric rows and a
confusion matrix; run 1 also has one evaluation (tta "flip4", accuracy 0.75) with its own class
metrics and matrix. A run 4 was created like the others and then deleted, so the file shows what an
old store loses: which ids were ever used.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from backend import migrations, store
from backend.config import REPO_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "store_pre_migrations.db"
TABLES = ("runs", "epoch_metrics", "evaluations", "class_metrics", "confusion_matrices")
FIXTURE_ROWS = {"runs": 3, "epoch_metrics": 6, "evaluations": 1, "class_metrics": 8, "confusion_matrices": 4}

HEAD = migrations.head_revision()  # the newest revision: what every store is brought to


@pytest.fixture
def old_store(tmp_path) -> tuple[Path, str]:
    """A copy of the committed pre-migration store and its URL."""
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, path)
    return path, f"sqlite:///{path}"


def row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def schema_differences(url: str) -> list:
    with store.get_engine(url).connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), store.Base.metadata)


def db_command(url: str, *args: str) -> subprocess.Popen:
    """A real ``python -m backend db ARGS`` child on ``url`` (a bare environment: only the store and PATH)."""
    return subprocess.Popen([sys.executable, "-m", "backend", "db", *args], cwd=REPO_ROOT,
                            env={"RUNS_DB_URL": url, "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def upgrades_at_once(url: str, processes: int = 4) -> list[str]:
    """``db upgrade`` in ``processes`` real children started together; each one's message (after the
    URL), sorted, once all have exited 0."""
    procs = [db_command(url, "upgrade") for _ in range(processes)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * processes, outputs
    return sorted(out.split(": ", 1)[1].strip() for out, _ in outputs)


def test_revisions_are_named_and_ordered():
    assert migrations.known_revisions() == [
        "0001_baseline", "0002_hardening", "0003_comparison", "0004_team", "0005_review"
    ]  # fmt: skip
    assert migrations.head_revision() == "0005_review"


def test_the_fixture_is_an_unversioned_store_of_the_old_schema(old_store):
    path, url = old_store
    assert row_counts(path) == FIXTURE_ROWS
    state = store.schema_state(url)
    assert (state.revision, state.has_tables, state.current) == (None, True, False)


def test_old_store_is_upgraded_in_place_on_first_use_keeping_every_row(old_store):
    path, url = old_store
    runs = store.list_runs(url=url)  # the first use of the URL upgrades it

    assert store.schema_state(url).revision == migrations.head_revision()
    assert schema_differences(url) == []
    assert row_counts(path) == FIXTURE_ROWS  # foreign keys were off: rebuilding runs cascaded nowhere
    assert sorted(runs["id"]) == [1, 2, 3]
    assert dict(zip(runs["id"], runs["status"], strict=True)) == {1: "completed", 2: "failed", 3: "cancelled"}
    assert store.get_run(2, url=url).error == "boom"
    assert store.get_run(1, url=url).host is None
    history = store.run_history(1, url=url)
    assert history["extra_recon"].tolist() == [0.25, 0.5]
    evaluations = store.list_evaluations(1, url=url)
    assert evaluations["accuracy"].tolist() == [0.75] and evaluations["tta"].tolist() == ["flip4"]
    evaluation_id = int(evaluations["id"].iloc[0])
    assert store.class_metrics(1, evaluation_id, url=url)["f1"].tolist() == [0.667, 0.8]
    names, matrix = store.confusion(3, url=url)
    assert names == ["a", "b"] and matrix.tolist() == [[1, 1], [0, 2]]
    with sqlite3.connect(path) as conn:
        runs_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        assert "AUTOINCREMENT" in runs_sql and "CONSTRAINT ck_runs_status CHECK" in runs_sql
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_upgraded_store_cascades_deletes_and_never_reuses_an_id(old_store):
    _, url = old_store
    fields = {"name": "new", "model": "visual_cnn", "config": {}, "dataset": "d", "url": url}
    # Run 4 was deleted before the upgrade: an old store kept no trace of it, so its id comes back once.
    newest = store.create_run(**fields)
    assert newest == 4
    store.delete_run_rows(newest, url=url)
    assert store.create_run(**fields) == 5  # deleted after the upgrade: never handed out again
    store.delete_run_rows(1, url=url)  # foreign keys are back on for ordinary connections
    assert store.run_history(1, url=url).empty and store.list_evaluations(1, url=url).empty


def test_an_empty_database_is_created_at_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert store.schema_state(url).revision is None
    assert not (tmp_path / "fresh.db").exists()  # reading the revision created nothing
    store.init_db(url)
    assert store.schema_state(url).current
    assert schema_differences(url) == []
    run_id = store.create_run(name="r", model="m", config={}, dataset="d", url=url)
    store.delete_run_rows(run_id, url=url)
    assert store.create_run(name="r", model="m", config={}, dataset="d", url=url) == run_id + 1


def test_a_store_newer_than_the_code_is_refused_and_left_byte_identical(tmp_path):
    path = tmp_path / "newer.db"
    store.upgrade_schema(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as conn:  # closed: the WAL is checkpointed into the file
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
        conn.commit()
    before, files = path.read_bytes(), sorted(tmp_path.iterdir())

    with pytest.raises(store.StoreError, match=r"schema revision '0099_from_the_future', which this code does not"):
        store.list_runs(url=f"sqlite:///{path}")  # upgrade_schema above opened no engine: this is its first use
    assert path.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == files


def test_processes_opening_an_old_store_at_once_take_turns(old_store):
    """Four real processes upgrade the same old file at once: one migrates, the others find it done."""
    path, url = old_store
    said = upgrades_at_once(url)
    assert said == [f"already at {HEAD}"] * 3 + [f"upgraded from the schema before migrations to {HEAD}"]
    assert row_counts(path) == FIXTURE_ROWS


def test_db_command_reads_and_upgrades_the_revision(old_store):
    path, url = old_store

    def db(action: str) -> str:
        out, err = (child := db_command(url, action)).communicate(timeout=120)
        assert child.returncode == 0, err
        return out.strip()

    assert db("current") == f"{url}: the schema before migrations; newest is {HEAD}: run `python -m backend db upgrade`"
    assert row_counts(path) == FIXTURE_ROWS and store.schema_state(url).revision is None  # current changed nothing
    assert db("upgrade") == f"{url}: upgraded from the schema before migrations to {HEAD}"
    assert db("current") == f"{url}: {HEAD} (newest)"


# --- on both databases (tests/fixtures/services.py: SQLite file, real PostgreSQL server) ----------


def test_an_empty_store_is_created_at_head_and_never_reuses_an_id(store_url):
    assert store.schema_state(store_url).revision is None
    before, after = store.upgrade_schema(store_url)
    assert (before.revision, before.has_tables, after.revision) == (None, False, HEAD)
    assert schema_differences(store_url) == []
    fields = {"name": "r", "model": "m", "config": {}, "dataset": "d", "url": store_url}
    first, second = store.create_run(**fields), store.create_run(**fields)
    store.delete_run_rows(second, url=store_url)
    assert store.create_run(**fields) == second + 1  # the newest id, deleted, is not handed out again
    assert store.upgrade_schema(store_url)[0].current  # a second upgrade finds nothing to do
    assert store.get_run(first, url=store_url).name == "r"


def _old_release_store(url: str) -> None:
    """What the release before migrations left on this database: the baseline tables with rows and no
    ``alembic_version`` (runs 1-3; run 3 deleted, so its id was used; run 1 with epochs, class metrics,
    a matrix and an evaluation)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn, migrations.BASELINE)
            conn.execute(text("DROP TABLE alembic_version"))
            for i, status in enumerate(["completed", "failed", "cancelled"], start=1):
                conn.execute(text(
                    "INSERT INTO runs (name, model, status, config, dataset, created_at, best_metrics) "
                    "VALUES (:name, 'visual_cnn', :status, '{\"lr\": 0.001}', 'd', :created, :metrics)"
                ), {"name": f"old-{i}", "status": status, "created": f"2025-01-0{i} 10:00:00+00",
                    "metrics": '{"val_f1": 0.5}'})  # fmt: skip
            conn.execute(text("DELETE FROM runs WHERE id = 3"))
            conn.execute(text("INSERT INTO epoch_metrics (run_id, epoch, val_f1, extra) VALUES "
                              "(1, 1, 0.25, '{\"recon\": 0.25}'), (1, 2, 0.5, '{\"recon\": 0.5}')"))
            conn.execute(text("INSERT INTO evaluations (run_id, dataset, tta, created_at, metrics) "
                              "VALUES (1, 'other', 'flip4', '2025-01-05 00:00:00+00', '{\"accuracy\": 0.75}')"))
            conn.execute(text("INSERT INTO class_metrics (run_id, evaluation_id, class_name, f1) VALUES "
                              "(1, NULL, 'a', 0.6), (1, 1, 'a', 0.7)"))
            conn.execute(text("INSERT INTO confusion_matrices (run_id, evaluation_id, class_names, matrix) "
                              "VALUES (1, NULL, '[\"a\"]', '[[3]]')"))  # fmt: skip
    finally:
        engine.dispose()


def test_an_old_release_store_on_postgresql_is_upgraded_keeping_every_row(pg_url):
    _old_release_store(pg_url)
    state = store.schema_state(pg_url)
    assert (state.revision, state.has_tables) == (None, True)

    runs = store.list_runs(url=pg_url)  # the first use upgrades it
    assert store.schema_state(pg_url).revision == HEAD
    assert schema_differences(pg_url) == []
    assert dict(zip(runs["id"], runs["name"], strict=True)) == {2: "old-2", 1: "old-1"}
    assert store.get_run(1, url=pg_url).host is None and store.get_run(1, url=pg_url).best_metrics == {"val_f1": 0.5}
    assert store.run_history(1, url=pg_url)["extra_recon"].tolist() == [0.25, 0.5]
    evaluation = store.list_evaluations(1, url=pg_url)
    assert evaluation["accuracy"].tolist() == [0.75]
    assert store.class_metrics(1, int(evaluation["id"].iloc[0]), url=pg_url)["f1"].tolist() == [0.7]
    assert store.confusion(1, url=pg_url)[1].tolist() == [[3]]
    new = store.create_run(name="new", model="m", config={}, dataset="d", url=pg_url)
    assert new == 4  # PostgreSQL's sequence remembers the deleted run 3
    store.delete_run_rows(1, url=pg_url)  # cascades
    assert store.run_history(1, url=pg_url).empty and store.list_evaluations(1, url=pg_url).empty


def test_processes_upgrading_one_postgresql_database_at_once_take_turns(pg_url):
    """Four real processes run `db upgrade` at once on an empty database (a team's dashboards starting
    together): pg_advisory_lock lets one create the schema; the others wait and find it done."""
    said = upgrades_at_once(pg_url)
    assert said == [f"already at {HEAD}"] * 3 + [f"upgraded from an empty database to {HEAD}"]
    assert schema_differences(pg_url) == []


def test_a_postgresql_store_newer_than_the_code_is_refused_untouched(pg_url):
    from sqlalchemy import create_engine, text

    store.upgrade_schema(pg_url)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    with pytest.raises(store.StoreError, match=r"schema revision '0099_from_the_future', which this code does not"):
        store.list_runs(url=pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099_from_the_future"
    engine.dispose()
