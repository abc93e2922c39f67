"""The product on a real PostgreSQL server (the session's throwaway cluster, tests/fixtures/services.py):
the CLI as subprocesses, the run manager launching a real tiny trainer, the dashboard pages, and the
one-line errors for a server that is down or refuses the password.

The store and migration suites (tests/test_store.py, tests/test_migrations.py) run on PostgreSQL too,
through the ``store_url`` fixture; this file covers what goes through ``RUNS_DB_URL`` end to end.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from backend import runs, store
from backend.config import REPO_ROOT
from tests.fixtures.comparison import plant_run, planted_labels, with_errors
from tests.fixtures.pgcluster import PASSWORD, PASSWORD_ROLE, free_port
from tests.fixtures.processes import wait_for

TIMEOUT_S = 120
HOME = REPO_ROOT / "dashboard" / "Home.py"


def backend(*args: str, url: str, artifacts: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m backend ARGS`` in a fresh process whose only store is ``url``."""
    env = {"RUNS_DB_URL": url, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    if artifacts is not None:
        env["ARTIFACTS_DIR"] = str(artifacts)
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess, starts: str) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {starts}"), done.stderr
    return lines[0]


# --- the CLI ---------------------------------------------------------------------------------------


def test_runs_list_and_show_json_read_a_postgresql_store(pg_url, tmp_path):
    run_id = store.create_run(name="on-pg", model="visual_cnn", config={"epochs": 2}, dataset="data/demo",
                              status="completed", url=pg_url)  # fmt: skip
    store.update_run(run_id, url=pg_url, host="trainer-1", pid=4321, best_val_f1=0.625, started_at=store.utcnow(),
                     finished_at=store.utcnow(), current_epoch=2, total_epochs=2)  # fmt: skip
    for epoch in (1, 2):
        store.log_epoch(run_id, {"epoch": epoch, "val_f1": epoch / 4, "extra": {"kl": float("nan")}}, url=pg_url)

    listed = backend("runs", "list", url=pg_url, artifacts=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "on-pg" in listed.stdout and "completed" in listed.stdout and "2/2" in listed.stdout

    shown = backend("runs", "show", str(run_id), "--json", url=pg_url, artifacts=tmp_path)
    assert shown.returncode == 0, shown.stderr
    fields = json.loads(shown.stdout)
    assert (fields["id"], fields["name"], fields["status"], fields["host"], fields["pid"]) == (
        run_id, "on-pg", "completed", "trainer-1", 4321,
    )  # fmt: skip
    assert fields["best_val_f1"] == 0.625 and fields["config"] == {"epochs": 2} and fields["epoch"] == "2/2"
    assert fields["created_at"].endswith("+00:00")

    current = backend("db", "current", url=pg_url)
    assert current.stdout.strip() == f"{pg_url}: {store.schema_state(pg_url).head} (newest)"


def test_an_unreachable_server_is_one_line_with_the_password_masked(tmp_path):
    url = f"postgresql+psycopg://team:hunter2@127.0.0.1:{free_port()}/runs"  # nobody listens there
    for command in (("runs", "show", "1", "--json"), ("db", "upgrade")):
        done = backend(*command, url=url, artifacts=tmp_path)
        line = assert_one_line_error(done, "the run store postgresql+psycopg://team:***@127.0.0.1:")
        assert "cannot be used (" in line and "check that its server is up" in line
        assert "hunter2" not in done.stderr + done.stdout


def test_a_wrong_password_or_a_missing_database_is_one_line(pg_cluster, tmp_path):
    pg_cluster.create_database("secured_runs", owner=PASSWORD_ROLE)
    wrong = pg_cluster.url("secured_runs", user=PASSWORD_ROLE, password="not-the-password")
    done = backend("runs", "list", url=wrong, artifacts=tmp_path)
    line = assert_one_line_error(done, f"the run store postgresql+psycopg://{PASSWORD_ROLE}:***@127.0.0.1:")
    assert "password authentication failed" in line
    assert "not-the-password" not in done.stderr

    with pytest.raises(store.StoreError, match=r'cannot be used \(.*database "no_such_db" does not exist'):
        store.list_runs(url=pg_cluster.url("no_such_db"))
    right = pg_cluster.url("secured_runs", user=PASSWORD_ROLE, password=PASSWORD)
    assert store.list_runs(url=right).empty  # the right password: an empty store, created on first use
    assert store.schema_state(right).current


# --- the run manager -------------------------------------------------------------------------------


@pytest.fixture
def pg_runs(pg_url, tmp_path, monkeypatch) -> str:
    """RUNS_DB_URL on PostgreSQL for this process and every trainer it starts; own artifacts folder."""
    monkeypatch.setenv("RUNS_DB_URL", pg_url)
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MAX_CONCURRENT_RUNS", "1")
    yield pg_url
    for run_id in store.list_runs(status=sorted(store.ACTIVE))["id"]:
        with contextlib.suppress(runs.RunStateError, store.RunNotFound):
            runs.cancel(int(run_id), grace=5)


def test_a_launched_run_completes_on_postgresql(pg_runs, tiny_dataset):
    config = {"data": str(tiny_dataset), "model": "visual_cnn", "image_size": 32, "epochs": 2, "batch_size": 8,
              "workers": 0, "augmentation": "none", "device": "cpu", "precision": "fp32"}  # fmt: skip
    run_id = runs.launch(config, name="pg-run")
    launched = store.get_run(run_id)
    assert launched.status in store.ACTIVE and launched.pid is not None

    def finished() -> store.RunRecord | None:
        runs.reap()
        run = store.get_run(run_id)
        return run if run.status not in store.ACTIVE else None

    run = wait_for(finished, what=f"run {run_id} on PostgreSQL to finish")
    assert run.status == "completed", run.error
    assert run.host and run.finished_at is not None and run.best_epoch in (1, 2)
    history = store.run_history(run_id)
    assert history["epoch"].tolist() == [1, 2]
    assert run.test_metrics is not None and len(store.predictions(run_id)) > 0
    assert Path(run.checkpoint_path).is_file()
    with store.get_engine(pg_runs).connect() as conn:  # it really is the server's database
        assert conn.dialect.name == "postgresql"
    assert os.environ["RUNS_DB_URL"] == pg_runs


# --- the dashboard ---------------------------------------------------------------------------------


@pytest.fixture
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()


def test_pages_read_a_postgresql_store(pg_url, tmp_path, monkeypatch, fresh_caches):
    monkeypatch.setenv("RUNS_DB_URL", pg_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "no-artifacts"))
    y = planted_labels()
    first, second = plant_run(y, with_errors(y, 30), name="pg-a"), plant_run(y, y, name="pg-b")

    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT_S).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    shown = {int(i) for frame in at.dataframe if "id" in frame.value for i in frame.value["id"]}
    assert {first, second} <= shown  # best per model and recent activity
    at.switch_page("../pages/compare.py").run()
    at.multiselect(key="compare_runs").set_value([first, second]).run()
    assert not at.exception and not at.error
    at.switch_page("../pages/class_metrics.py").run()
    at.selectbox(key="cm_run").set_value(first).run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 3


def test_pages_show_the_one_line_for_a_refused_password(pg_cluster, tmp_path, monkeypatch, fresh_caches):
    url = pg_cluster.url("postgres", user=PASSWORD_ROLE, password="Zq9-not-it")
    monkeypatch.setenv("RUNS_DB_URL", url)
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "no-artifacts"))
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith(f"the run store {store.masked_url(url)} cannot be used (")
    assert "Zq9-not-it" not in at.error[0].value


def test_the_store_outlives_its_server_connections_being_closed(pg_cluster, pg_url):
    """A server restart (here: every connection of the database terminated) costs a dashboard nothing:
    pooled connections are checked before use."""
    run_id = store.create_run(name="r", model="m", config={}, dataset="d", url=pg_url)
    database = pg_url.rsplit("/", 1)[1]
    with pg_cluster.connect() as conn:
        closed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                              (database,)).fetchone()[0]  # fmt: skip
    assert closed >= 1  # the store's pooled connection was among them
    assert store.get_run(run_id, url=pg_url).name == "r"
    assert list(store.list_runs(url=pg_url)["id"]) == [run_id]
