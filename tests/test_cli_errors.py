"""The CLI's one error boundary (backend/__main__.py), through real ``python -m backend`` processes.

A domain error is one line on stderr and exit 2; a traceback only with ``--debug`` or
``ANOMALY_DEBUG=1``; a reader closing the pipe ends the command quietly.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from backend import store
from backend.config import REPO_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "store_pre_migrations.db"
TIMEOUT_S = 120


def backend(*args: str, db: str, debug_env: bool = False, **popen) -> subprocess.CompletedProcess:
    env = {"RUNS_DB_URL": db, "PATH": "/usr/bin:/bin", "ARTIFACTS_DIR": str(Path(db.removeprefix("sqlite:///")).parent)}
    if debug_env:
        env["ANOMALY_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, **popen)  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess, starts: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {starts}"), done.stderr


@pytest.fixture
def upgraded_store(tmp_path) -> str:
    """A copy of the old-schema fixture (runs 1-3), upgraded: a store with runs to show."""
    shutil.copyfile(FIXTURE, tmp_path / "runs.db")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store.upgrade_schema(url)
    return url


@pytest.mark.parametrize("damage", ["random bytes", "text", "truncated"])
@pytest.mark.parametrize("command", [("runs", "list"), ("runs", "show", "1"), ("db", "upgrade")])
def test_an_unreadable_store_is_one_line_and_exit_2(damage, command, tmp_path):
    path = tmp_path / "runs.db"
    contents = {"random bytes": bytes(range(256)) * 32, "text": b"id,name\n1,not a database\n",
                "truncated": FIXTURE.read_bytes()[:20_000]}[damage]  # fmt: skip
    path.write_bytes(contents)
    done = backend(*command, db=f"sqlite:///{path}")
    assert_one_line_error(done, f"the run store sqlite:///{path} cannot be used (")
    assert "move this file away" in done.stderr
    assert path.read_bytes() == contents


def test_a_store_url_with_a_password_is_masked(tmp_path):
    done = backend("runs", "list", db="postgresql+psycopg://team:hunter2@127.0.0.1:1/runs")
    assert_one_line_error(done, "the run store postgresql+psycopg://team:***@127.0.0.1:1/runs cannot be used (")
    assert "hunter2" not in done.stderr


def test_a_store_newer_than_the_code_is_refused_untouched(upgraded_store):
    path = Path(upgraded_store.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(path)) as conn:  # closed: the WAL is checkpointed into the file
        conn.execute("UPDATE alembic_version SET version_num = '0042_later'")
        conn.commit()
    before = path.read_bytes()
    done = backend("runs", "list", db=upgraded_store)
    assert_one_line_error(done, f"the run store {upgraded_store} has schema revision '0042_later'")
    assert path.read_bytes() == before


def test_a_missing_run_is_one_line_and_debug_shows_the_traceback(upgraded_store):
    assert_one_line_error(backend("runs", "show", "99", db=upgraded_store), "run 99 not found")
    for done in (backend("--debug", "runs", "show", "99", db=upgraded_store),
                 backend("runs", "show", "99", db=upgraded_store, debug_env=True)):  # fmt: skip
        assert done.returncode == 2
        assert "Traceback" in done.stderr and "RunNotFound" in done.stderr
        assert done.stderr.strip().splitlines()[-1] == "error: run 99 not found"


def test_runs_show_into_a_closed_pipe_exits_quietly(upgraded_store):
    piped = subprocess.run(f"{sys.executable} -m backend runs show 1 | head -1", shell=True, cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=TIMEOUT_S,
                           env={"RUNS_DB_URL": upgraded_store, "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert piped.stdout == "run 1: fixture-0\n"
    assert piped.stderr == ""
    # The reader gone before the first write: every write fails, still no traceback.
    proc = subprocess.Popen([sys.executable, "-m", "backend", "runs", "show", "1"], cwd=REPO_ROOT,
                            env={"RUNS_DB_URL": upgraded_store, "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=TIMEOUT_S) == 1
    assert stderr == ""


def test_runs_show_json_has_the_process_fields(upgraded_store):
    import json

    done = backend("runs", "show", "2", "--json", db=upgraded_store)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["id"], shown["status"], shown["error"], shown["pid"], shown["host"]) == (2, "failed", "boom", 1001, None)
    assert shown["created_at"].endswith("+00:00") and "T" in shown["created_at"]
    assert shown["command"].endswith("-m backend train --run-id 2")
    assert shown["log"].endswith("runs/2/log.txt") and shown["epoch"] == "2/2"
    text = backend("runs", "show", "2", db=upgraded_store).stdout
    assert "  pid                1001" in text and "  command " in text
