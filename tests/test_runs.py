"""The run manager with real training subprocesses on a tiny dataset, real SQLite files and real signals.

Every test gets its own runs.db and artifacts folder (so rows other tests leave queued are never
started here), and the module ends by asserting that no trainer it started is still alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from backend import runs, store
from backend.__main__ import main as cli
from backend.config import REPO_ROOT, run_dir
from tests.fixtures.processes import live_processes, wait_for
from tests.fixtures.services import STORE_BACKENDS

DEADLINE_S = 120.0  # generous: two shared cores, and each trainer imports torch
# Tests with fake trainers (no torch) are cheap twice: they run on SQLite and on a real PostgreSQL
# server (tests/fixtures/services.py); the ones that train for real stay on SQLite
# (tests/test_store_postgres.py trains one run on PostgreSQL end to end).
ON_BOTH_STORES = pytest.mark.parametrize("run_store_url", STORE_BACKENDS, indirect=True)


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def own_store(run_store_url, tmp_path, monkeypatch):
    """A fresh run store and artifacts folder per test; active runs left by a failing test are cancelled."""
    monkeypatch.setenv("RUNS_DB_URL", run_store_url)
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MAX_CONCURRENT_RUNS", "1")
    yield
    for run_id in store.list_runs(status=sorted(store.ACTIVE))["id"]:
        with contextlib.suppress(runs.RunStateError, store.RunNotFound):
            runs.cancel(int(run_id), grace=5)


@pytest.fixture
def tiny_config(tiny_dataset) -> dict:
    """Options for a trainer that takes a few seconds: visual_cnn at 32 px, 2 epochs, no workers."""
    return {
        "data": str(tiny_dataset),
        "model": "visual_cnn",
        "image_size": 32,
        "epochs": 2,
        "batch_size": 8,
        "workers": 0,
        "augmentation": "none",
        "device": "cpu",
        "precision": "fp32",
    }


@pytest.fixture
def other_process():
    """A live process that is not a trainer (what a reused pid would point at)."""
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


SLEEPER = "import time; time.sleep(300)"
# Ignores SIGTERM and has a child in its process group that ignores it too (as a stuck worker might).
STUBBORN = "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); subprocess.Popen(['sleep', '300']); time.sleep(300)"


@pytest.fixture
def fake_trainer():
    """Start a process whose command line looks like run N's trainer but that runs ``code`` instead.

    Rows pointing at it test the process handling (cancel, delete, dequeue, reaping) without torch.
    """
    started = []

    def start(run_id: int, code: str = SLEEPER) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", code, "backend", "train", "--run-id", str(run_id)], start_new_session=True
        )
        started.append(process)
        _mark_running(run_id, process.pid, wait_for(lambda: runs.process_start_time(process.pid), what="a pid"))
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _finished(run_id: int) -> store.RunRecord:
    """Wait until a run's status is final (reaping on the way, as a listing would); return it."""

    def final() -> store.RunRecord | None:
        runs.reap()
        run = store.get_run(run_id)
        return run if run.status not in store.ACTIVE else None

    return wait_for(final, what=f"run {run_id} to finish")


def _group_gone(pgid: int) -> bool:
    """Whether no process of a trainer's group is left, not even a zombie (reaping collects ours)."""
    runs.reap()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _members_of_group(pgid: int) -> list[int]:
    """Live processes in a process group (the group is field 5 of stat)."""
    return [pid for pid, fields in live_processes() if int(fields[2]) == pgid]


def _mark_running(run_id: int, pid: int, start: float | None) -> None:
    """Point a row at a process the way a started trainer does."""
    store.update_run(run_id, status="running", pid=pid, pid_start_time=start, started_at=store.utcnow())


def _row(status: str = "queued") -> int:
    """A bare run row (for tests of the process checks, which never read the config)."""
    return store.create_run(name="row", model="visual_cnn", config={}, dataset="none", status=status)


# --- launching and finishing ---------------------------------------------------------------------


def test_launched_run_gets_a_new_id_and_an_empty_folder_and_completes_with_all_its_epochs(tiny_config):
    """One real trainer for both: a launch after the newest run was deleted (its id and stale files)
    and a launched run's life from its row to a completed run whose process group is gone."""
    kept, newest = _row("completed"), _row("completed")
    runs.delete(newest)
    stale = run_dir(newest + 1)  # files under the next id, left by a run deleted when ids were reused
    stale.mkdir(parents=True)
    (stale / "best.pt").write_bytes(b"not this run's model")

    run_id = runs.launch(tiny_config, name="first")

    assert run_id == newest + 1 and run_id not in (kept, newest)
    (aside,) = run_dir(run_id).parent.glob(f"orphaned-{run_id}-*")
    assert (aside / "best.pt").read_bytes() == b"not this run's model"
    assert f"moved them to {aside}" in runs.log_path(run_id).read_text()
    launched = store.get_run(run_id)
    assert launched.name == "first"
    assert launched.pid is not None and launched.pid_start_time is not None
    assert launched.config["image_size"] == 32

    run = _finished(run_id)
    assert run.status == "completed", run.error
    assert run.host == socket.gethostname()  # recorded by the trainer as it claimed the run
    assert len(store.run_history(run_id)) == 2
    assert runs.log_path(run_id).stat().st_size > 0
    assert (run_dir(run_id) / "best.pt").read_bytes() != b"not this run's model"
    wait_for(lambda: _group_gone(launched.pid), what="the trainer to exit after completing")


def test_bad_config_fails_at_launch_and_queues_nothing(tiny_config):
    with pytest.raises(ValueError, match="image_size"):
        runs.launch({**tiny_config, "image_size": 0})
    assert store.list_runs().empty


def test_launch_command_prints_the_run_id_and_the_run_outlives_it(tiny_dataset):
    done = subprocess.run(
        [sys.executable, "-m", "backend", "launch", "--data", str(tiny_dataset), "--model", "visual_cnn",
         "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--augmentation", "none",
         "--device", "cpu", "--precision", "fp32"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEADLINE_S, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = int(done.stdout.strip().splitlines()[-1])

    assert _finished(run_id).status == "completed"
    assert len(store.run_history(run_id)) == 1


# --- the queue -----------------------------------------------------------------------------------


def test_with_limit_one_a_second_run_waits_then_starts_when_the_first_ends(tiny_config):
    first = runs.launch(tiny_config)
    second = runs.launch(tiny_config)
    assert store.get_run(second).status == "queued"
    assert store.get_run(second).pid is None

    most_at_once = 0

    def second_finished() -> bool:
        nonlocal most_at_once
        most_at_once = max(most_at_once, sum(r.status == "running" for r in map(store.get_run, (first, second))))
        return store.get_run(second).status not in store.ACTIVE

    # Nobody calls start_queued here: the first trainer hands its slot over as it ends.
    wait_for(second_finished, what="the queued run to start and finish")
    a, b = store.get_run(first), store.get_run(second)
    assert (a.status, b.status) == ("completed", "completed"), (a.error, b.error)
    assert most_at_once == 1
    assert b.started_at >= a.finished_at  # it started only once the first had ended


def test_with_limit_two_two_runs_share_the_database_and_every_epoch_arrives(tiny_config, monkeypatch):
    monkeypatch.setenv("MAX_CONCURRENT_RUNS", "2")
    config = {**tiny_config, "epochs": 3}
    first, second = runs.launch(config), runs.launch(config)
    # Both trainers run at once: the second started without queueing while the first (still
    # importing torch; a 3-epoch run takes far longer than a launch) is alive.
    pids = [store.get_run(first).pid, store.get_run(second).pid]
    assert None not in pids  # started at once, not queued
    alive = {pid for pid, _ in live_processes()}
    assert set(pids) <= alive, f"trainers {pids}, alive {sorted(set(pids) & alive)}"

    finished = [_finished(first), _finished(second)]
    assert [run.status for run in finished] == ["completed", "completed"], [run.error for run in finished]
    history = store.runs_history([first, second])
    assert history.groupby("run_id").size().to_dict() == {first: 3, second: 3}


# --- cancelling ----------------------------------------------------------------------------------


def test_cancelled_run_stops_within_the_grace_period_keeps_checkpoints_and_leaves_no_process(tiny_config):
    run_id = runs.launch({**tiny_config, "epochs": 500})
    wait_for(lambda: (store.get_run(run_id).current_epoch or 0) >= 1, what="a first epoch")
    pgid = store.get_run(run_id).pid

    grace = 60.0
    began = time.monotonic()
    assert runs.cancel(run_id, grace=grace) == "cancelled"
    assert time.monotonic() - began < grace

    wait_for(lambda: _group_gone(pgid), what="the trainer's process group to be empty")
    assert store.get_run(run_id).finished_at is not None
    assert (run_dir(run_id) / "last.pt").exists()
    assert len(store.run_history(run_id)) < 500


@ON_BOTH_STORES
def test_cancel_kills_the_whole_process_group_when_the_grace_period_is_over(fake_trainer):
    run_id = _row()
    stubborn = fake_trainer(run_id, STUBBORN)
    wait_for(lambda: len(_members_of_group(stubborn.pid)) == 2, what="the trainer's child to start")

    began = time.monotonic()
    assert runs.cancel(run_id, grace=1.0) == "cancelled"
    assert time.monotonic() - began >= 1.0  # it waited out the grace period before killing
    assert stubborn.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    wait_for(lambda: not _members_of_group(stubborn.pid), what="the trainer's child to be killed too")


@ON_BOTH_STORES
def test_cancelling_a_queued_run_dequeues_it(tiny_config, fake_trainer):
    busy = _row()
    process = fake_trainer(busy)
    queued = runs.launch(tiny_config)
    assert store.get_run(queued).status == "queued"

    assert runs.cancel(queued) == "cancelled"
    process.kill()
    process.wait()
    assert runs.start_queued() == []  # the slot is free, but the cancelled run never starts
    assert store.get_run(queued).pid is None
    assert not runs.log_path(queued).exists()


@ON_BOTH_STORES
def test_cancelling_a_finished_run_says_so():
    run_id = _row("completed")
    with pytest.raises(runs.RunStateError, match=f"run {run_id} is already completed"):
        runs.cancel(run_id)


# --- reaping -------------------------------------------------------------------------------------


def test_killed_trainer_becomes_lost_when_runs_are_listed_and_the_queue_moves_on(tiny_config):
    killed = runs.launch({**tiny_config, "epochs": 500})
    waiting = runs.launch({**tiny_config, "epochs": 1})
    pid = store.get_run(killed).pid
    os.kill(pid, signal.SIGKILL)

    # This process is the trainer's parent: listing must see through the zombie and collect it.
    wait_for(lambda: runs.list_runs(status="lost")["id"].tolist() == [killed], what="the run to be lost")
    run = store.get_run(killed)
    assert run.error == runs.LOST_ERROR.format(pid=pid)
    assert run.finished_at is not None
    assert store.get_run(waiting).pid is not None  # the listing handed the freed slot on
    assert _finished(waiting).status == "completed"


@ON_BOTH_STORES
def test_pid_now_belonging_to_another_process_is_lost(other_process):
    started = runs.process_start_time(other_process.pid)
    reused = _row()
    _mark_running(reused, other_process.pid, started - 1000)  # same pid, earlier start: not that process
    other_command = _row()
    _mark_running(other_command, other_process.pid, started)  # right start time, but `sleep`, not a trainer

    assert sorted(runs.reap()) == sorted([reused, other_command])
    assert {store.get_run(i).status for i in (reused, other_command)} == {"lost"}
    assert other_process.poll() is None  # reaping never signals anything


@ON_BOTH_STORES
def test_live_trainer_is_not_reaped_but_a_trainer_of_another_run_is(fake_trainer):
    alive = _row()
    process = fake_trainer(alive)
    mismatched = _row()  # points at run `alive`'s trainer, whose command line names another run id
    _mark_running(mismatched, process.pid, runs.process_start_time(process.pid))

    assert runs.reap() == [mismatched]
    assert store.get_run(alive).status == "running"


# --- deleting ------------------------------------------------------------------------------------


@ON_BOTH_STORES
def test_delete_is_refused_while_running_and_removes_rows_and_artifacts_after(fake_trainer):
    run_id = _row()
    fake_trainer(run_id)
    store.log_epoch(run_id, {"epoch": 1, "train_loss": 1.0})
    run_dir(run_id).mkdir(parents=True)
    (run_dir(run_id) / "last.pt").write_bytes(b"checkpoint")

    with pytest.raises(runs.RunActive, match="cancel it"):
        runs.delete(run_id)
    assert runs.cancel(run_id, grace=5) == "cancelled"
    runs.delete(run_id)

    with pytest.raises(store.RunNotFound):
        store.get_run(run_id)
    assert store.run_history(run_id).empty
    assert not run_dir(run_id).exists()


# --- command line --------------------------------------------------------------------------------


@ON_BOTH_STORES
def test_runs_command_lists_shows_cancels_and_deletes(capsys):
    run_id = _row("completed")
    store.log_epoch(run_id, {"epoch": 1, "train_loss": 0.5, "val_f1": 0.75})

    assert cli(["runs", "list"]) == 0
    table = capsys.readouterr().out
    assert "completed" in table and "visual_cnn" in table

    assert cli(["runs", "list", "--json", "--status", "completed"]) == 0
    assert [record["id"] for record in json.loads(capsys.readouterr().out)] == [run_id]

    assert cli(["runs", "show", str(run_id)]) == 0
    shown = capsys.readouterr().out
    assert "status             completed" in shown and "0.75" in shown and "log.txt" in shown

    assert cli(["runs", "cancel", str(run_id)]) == 2
    assert capsys.readouterr().err.strip() == f"error: run {run_id} is already completed"

    assert cli(["runs", "delete", str(run_id), "--yes"]) == 0
    with pytest.raises(store.RunNotFound):
        store.get_run(run_id)


@pytest.mark.parametrize("action", [["show", "42"], ["cancel", "42"], ["delete", "42", "--yes"]])
def test_runs_command_on_an_unknown_run_says_not_found_without_a_traceback(action):
    done = subprocess.run(
        [sys.executable, "-m", "backend", "runs", *action],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEADLINE_S, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: run 42 not found"
    assert "Traceback" not in done.stderr
