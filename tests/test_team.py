"""Team use (issue 14): heartbeat liveness across hosts, the ``ray`` executor on a real local Ray
head, the new ``runs show --json`` fields, and the predictor's message for a checkpoint on another host.

Two hosts are faked on one machine with ``ANOMALY_HOST_ID``; the Ray head is a real one
(``tests/fixtures/ray_head.py``) and its trainer a real ``python -m backend train`` job.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from backend import runs, store
from backend.config import REPO_ROOT, run_dir
from backend.runs.executors import UnknownExecutor
from tests.fixtures.processes import trainers_under, wait_for
from tests.fixtures.services import STORE_BACKENDS

HOME = REPO_ROOT / "dashboard" / "Home.py"
TIMEOUT_S = 3.0  # HEARTBEAT_TIMEOUT_S in the two-host test
INTERVAL_S = 0.5  # HEARTBEAT_INTERVAL_S there
# The run-manager paths that differ by database (scheduler lock, heartbeat timestamps, compare-and-set
# updates) run on SQLite and on a real PostgreSQL server (tests/fixtures/services.py).
ON_BOTH_STORES = pytest.mark.parametrize("run_store_url", STORE_BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def own_store(run_store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNS_DB_URL", run_store_url)
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MAX_CONCURRENT_RUNS", "1")
    monkeypatch.delenv("RUN_EXECUTOR", raising=False)
    yield
    for run_id in store.list_runs(status=sorted(store.ACTIVE))["id"]:
        with contextlib.suppress(runs.RunStateError, store.StoreError):
            runs.cancel(int(run_id), grace=5)


@pytest.fixture
def tiny_config(tiny_dataset) -> dict:
    return {"data": str(tiny_dataset), "model": "visual_cnn", "image_size": 32, "epochs": 2, "batch_size": 8,
            "workers": 0, "augmentation": "none", "device": "cpu", "precision": "fp32"}  # fmt: skip


def _row(status: str = "queued", **fields) -> int:
    run_id = store.create_run(name="row", model="visual_cnn", config={}, dataset="none", status=status)
    if fields:
        store.update_run(run_id, **fields)
    return run_id


# --- two hosts, one store ------------------------------------------------------------------------

# A "host": claims its run as the trainer would (pid, host id, heartbeat), heartbeats through the
# lifecycle's own Heartbeat thread, and reaps the shared store every 0.2 s, as a dashboard there would.
HOST = textwrap.dedent("""
    import json, os, sys, time
    from backend import runs
    from backend.runs.lifecycle import Heartbeat
    from backend.runs.writer import StoreWriter
    run_id = int(os.environ["TEST_RUN_ID"])
    StoreWriter(run_id).claim(pid=os.getpid())
    Heartbeat(run_id).start()
    print("claimed", flush=True)
    while True:
        for lost in runs.reap():
            print(json.dumps({"lost": lost}), flush=True)
        time.sleep(0.2)
""")


def _start_host(host_id: str, run_id: int) -> subprocess.Popen:
    env = {**os.environ, "ANOMALY_HOST_ID": host_id, "TEST_RUN_ID": str(run_id), "HEARTBEAT_INTERVAL_S": str(INTERVAL_S),
           "HEARTBEAT_TIMEOUT_S": str(TIMEOUT_S)}  # fmt: skip
    # "backend train --run-id N" on its command line: what its own host checks a trainer by
    return subprocess.Popen([sys.executable, "-c", HOST, "backend", "train", "--run-id", str(run_id)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip


@ON_BOTH_STORES
def test_two_hosts_never_mark_each_others_live_runs_lost_and_a_stopped_heartbeat_is_lost_in_time():
    run_a, run_b = _row(), _row()
    alpha, beta = _start_host("alpha", run_a), _start_host("beta", run_b)
    try:
        for process in (alpha, beta):
            assert process.stdout.readline().strip() == "claimed"
        assert {store.get_run(run_a).host, store.get_run(run_b).host} == {"alpha", "beta"}

        time.sleep(2 * TIMEOUT_S)  # each host reaped the other's run many times, well past the timeout
        assert [store.get_run(i).status for i in (run_a, run_b)] == ["running", "running"]
        seen = store.get_run(run_a).heartbeat_at
        assert (store.utcnow() - seen).total_seconds() < TIMEOUT_S

        os.killpg(alpha.pid, signal.SIGKILL)  # host alpha dies: its heartbeat stops
        stopped = time.monotonic()
        lost = wait_for(lambda: store.get_run(run_a).status == "lost", what="beta to mark alpha's run lost",
                        timeout=TIMEOUT_S + 10)  # fmt: skip
        assert lost and time.monotonic() - stopped <= TIMEOUT_S + 5
        assert "no heartbeat from the trainer on host alpha" in store.get_run(run_a).error
        assert store.get_run(run_b).status == "running"  # beta's own run lives on
    finally:
        for process in (alpha, beta):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    beta_said = [json.loads(line) for line in beta.stdout.read().splitlines() if line.startswith("{")]
    assert beta_said == [{"lost": run_a}]  # beta marked alpha's run, once, and nothing else


# A "dashboard" on its own host deciding the queue. Its trainers are sleepers whose command line is
# the trainer's (so the other host's reaper takes them for live trainers), and each start takes
# START_DELAY_S: without the scheduler lock both deciders would read "no slot busy" and start one each.
DECIDER = textwrap.dedent("""
    import json, os, sys, time
    from backend import runs
    from backend.runs.executors import local
    def slow_sleeper(run_id):
        time.sleep(float(os.environ["START_DELAY_S"]))
        return [sys.executable, "-c", "import time; time.sleep(120)", "backend", "train", "--run-id", str(run_id)]
    local.training_command = slow_sleeper
    runs.list_runs()  # open the store (and its connection) before the race
    print("ready", flush=True)
    sys.stdin.readline()  # both deciders go at once
    print(json.dumps(runs.start_queued()), flush=True)
""")


@ON_BOTH_STORES
def test_two_hosts_deciding_the_queue_at_once_never_exceed_the_concurrency_limit(tmp_path):
    queued = [_row() for _ in range(3)]  # no host recorded: startable by either host
    deciders = [subprocess.Popen([sys.executable, "-c", DECIDER], cwd=REPO_ROOT, text=True, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env={**os.environ, "ANOMALY_HOST_ID": host,
                                                              "START_DELAY_S": "1.0"})
                for host in ("alpha", "beta")]  # fmt: skip
    try:
        for decider in deciders:
            assert decider.stdout.readline().strip() == "ready"
        for decider in deciders:
            decider.stdin.write("go\n")
            decider.stdin.flush()
        started = [json.loads(decider.stdout.readline()) for decider in deciders]
        for decider in deciders:
            assert decider.wait(timeout=60) == 0
        assert sorted(len(ids) for ids in started) == [0, 1]  # MAX_CONCURRENT_RUNS=1 across both hosts
        records = [store.get_run(i) for i in queued]
        assert sum(run.pid is not None for run in records) == 1
        assert [run.status for run in records].count("running") == 1
        winner = next(run for run in records if run.pid is not None)
        assert winner.id == queued[0] and winner.host in {"alpha", "beta"}  # oldest first
    finally:
        for decider in deciders:
            with contextlib.suppress(ProcessLookupError):
                decider.kill()
            decider.wait()
        for pid in trainers_under(str(tmp_path)):  # the sleepers belong to "their" hosts: not cancellable here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for run_id in queued:
            store.update_run_if(run_id, store.ACTIVE, status="cancelled", finished_at=store.utcnow())


# A decider that dies (kill -9, its machine gone) while it holds the scheduler lock.
HOLDER = textwrap.dedent("""
    import time
    from backend.runs.manager import _scheduler_lock
    with _scheduler_lock():
        print("locked", flush=True)
        time.sleep(300)
""")


@ON_BOTH_STORES
def test_a_decider_killed_while_holding_the_scheduler_lock_does_not_block_the_queue(tmp_path, monkeypatch):
    from backend.runs.executors import local

    monkeypatch.setattr(local, "training_command", lambda run_id: [sys.executable, "-c", "import time; time.sleep(60)",
                                                                   "backend", "train", "--run-id", str(run_id)])  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE,
                              env=os.environ)  # fmt: skip
    run_id = _row()
    try:
        assert holder.stdout.readline().strip() == "locked"
        os.kill(holder.pid, signal.SIGKILL)  # the lock dies with its connection (PostgreSQL) or file handle
        assert holder.wait(timeout=30) == -signal.SIGKILL
        assert runs.start_queued() == [run_id]
    finally:
        with contextlib.suppress(ProcessLookupError):
            holder.kill()
        holder.wait()
        pid = store.get_run(run_id).pid
        if pid is not None:
            runs.cancel(run_id, grace=1)


@ON_BOTH_STORES
def test_a_run_that_waited_long_in_the_queue_is_not_lost_to_another_host_while_it_starts(tmp_path, monkeypatch):
    from backend.runs import manager
    from backend.runs.executors import local

    monkeypatch.setenv("HEARTBEAT_TIMEOUT_S", str(TIMEOUT_S))
    monkeypatch.setattr(local, "training_command", lambda run_id: [sys.executable, "-c", "import time; time.sleep(60)",
                                                                   "backend", "train", "--run-id", str(run_id)])  # fmt: skip
    run_id = _row()
    store.update_run(run_id, created_at=store.utcnow() - timedelta(seconds=10 * TIMEOUT_S))  # queued for long
    seen_by_beta = []
    transition = manager._transition

    def beta_reaps_first(run_id_, from_statuses, **fields):
        if fields.get("status") == "running" and not seen_by_beta:
            # another host's reaper runs right after the pid is recorded, before the run says "running"
            monkeypatch.setenv("ANOMALY_HOST_ID", "beta")
            seen_by_beta.append(runs.reap())
            monkeypatch.setenv("ANOMALY_HOST_ID", "alpha")
        return transition(run_id_, from_statuses, **fields)

    monkeypatch.setenv("ANOMALY_HOST_ID", "alpha")
    monkeypatch.setattr(manager, "_transition", beta_reaps_first)
    try:
        assert runs.start_queued() == [run_id]
        assert seen_by_beta == [[]] and store.get_run(run_id).status == "running"
    finally:
        pid = store.get_run(run_id).pid
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.killpg(pid, signal.SIGKILL)
        store.update_run_if(run_id, store.ACTIVE, status="cancelled", finished_at=store.utcnow())


@ON_BOTH_STORES
def test_a_local_run_of_another_host_cannot_be_cancelled_from_here():
    run_id = _row("running", pid=os.getpid(), host="elsewhere", heartbeat_at=store.utcnow())
    with pytest.raises(runs.RunStateError, match="trains on host elsewhere; cancel it there"):
        runs.cancel(run_id)
    assert store.get_run(run_id).status == "running"


@ON_BOTH_STORES
def test_a_queued_local_run_starts_only_on_the_host_that_launched_it():
    theirs = _row("queued", host="elsewhere")  # launched by a dashboard on another host
    assert runs.start_queued() == []
    assert store.get_run(theirs).pid is None and store.get_run(theirs).status == "queued"


# --- run show, predictor, launch options ---------------------------------------------------------


@ON_BOTH_STORES
def test_runs_show_json_has_host_executor_heartbeat_and_pid():
    beat = store.utcnow()
    run_id = _row("completed", pid=4242, host="gpu-1", heartbeat_at=beat, executor="ray")
    done = subprocess.run([sys.executable, "-m", "backend", "runs", "show", str(run_id), "--json"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, env=os.environ)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["host"], shown["executor"], shown["pid"]) == ("gpu-1", "ray", 4242)
    assert shown["heartbeat_at"] == beat.isoformat()


def test_predictor_says_when_the_checkpoint_was_written_on_another_host(tmp_path):
    from backend.predict import PredictError, Predictor

    path = tmp_path / "elsewhere" / "best.pt"
    run_id = _row("completed", host="gpu-7", checkpoint_path=str(path))
    with pytest.raises(PredictError, match=r"written on host gpu-7 and is not reachable on this host .*ARTIFACTS_DIR"):
        Predictor.from_run(run_id)


def test_an_unknown_executor_is_refused_before_anything_is_stored(tiny_config, monkeypatch):
    with pytest.raises(UnknownExecutor, match="unknown executor 'slurm'; choose one of local, ray"):
        runs.launch(tiny_config, executor="slurm")
    monkeypatch.setenv("RUN_EXECUTOR", "k8s")
    with pytest.raises(UnknownExecutor, match="RUN_EXECUTOR"):
        runs.launch(tiny_config)
    assert store.list_runs().empty


def test_launch_command_takes_executor_and_ray_address_and_an_unreachable_cluster_fails_the_run(tiny_dataset):
    pytest.importorskip("ray.job_submission", reason="Ray is not installed")
    base = [sys.executable, "-m", "backend", "launch", "--data", str(tiny_dataset), "--model", "visual_cnn",
            "--epochs", "1", "--executor", "ray"]  # fmt: skip

    def launch(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *extra], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                              env=os.environ)  # fmt: skip

    refused = launch("--ray-address", "ray://head:10001")  # a Ray Client address, not the job API
    assert refused.returncode == 2 and "is a Ray Client address" in refused.stderr, refused.stderr
    assert store.list_runs().empty

    closed = launch("--ray-address", "127.0.0.1:9")  # nothing listens there
    assert closed.returncode == 0, closed.stderr
    run = store.get_run(int(closed.stdout.strip().splitlines()[-1]))
    assert (run.executor, run.executor_address, run.status) == ("ray", "http://127.0.0.1:9", "failed")
    assert "cannot reach the Ray cluster at http://127.0.0.1:9" in run.error


@ON_BOTH_STORES
def test_the_store_has_one_scheduler_row(run_store_url):
    with store.session_scope() as session:
        assert session.execute(select(store.SchedulerLock.id)).scalars().all() == [1]
    with store.scheduler_row_lock() as row_locked:
        # PostgreSQL: the row lock serialises deciders on every host; SQLite: the file lock instead
        assert row_locked is run_store_url.startswith("postgresql")


# --- the ray executor on a real local head -------------------------------------------------------


def _job_status(run: store.RunRecord) -> str:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(run.executor_address).get_job_status(run.executor_job_id).value


def _train_page_launch_on_ray(address: str, dataset) -> tuple[AppTest, int]:
    """Launch a tiny run from the Train page with "Run on: Ray cluster"; return the page and the run id."""
    at = AppTest.from_file(str(HOME), default_timeout=180)
    at.run()
    at.switch_page("../pages/train.py").run()
    at.selectbox(key="train_model").set_value("visual_cnn").run()
    for name, value in {"epochs": 2, "image_size": 32, "batch_size": 8, "workers": 0}.items():
        at.number_input(key=f"train_visual_cnn_{name}").set_value(value)
    at.selectbox(key="train_visual_cnn_augmentation").set_value("none")
    at.selectbox(key="train_visual_cnn_data").set_value(str(dataset))
    at.radio(key="train_executor").set_value("ray")
    at.text_input(key="train_ray_address").set_value(address)
    at.button(key="train_launch").click().run()
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    run_id = int(store.list_runs()["id"].max())
    assert any(f"Run #{run_id} launched" in m.value for m in at.success)
    return at, run_id


def test_a_ray_run_launched_from_the_train_page_trains_end_to_end_and_the_live_panel_follows_it(
    ray_head, tiny_config, tmp_path, monkeypatch
):
    data = tmp_path / "data"
    shutil.copytree(tiny_config["data"], data / "tiny")
    monkeypatch.setenv("DATA_DIR", str(data))
    at, run_id = _train_page_launch_on_ray(ray_head, data / "tiny")
    submitted = store.get_run(run_id)
    assert (submitted.executor, submitted.executor_address) == ("ray", ray_head)
    assert submitted.status == "queued" and submitted.executor_job_id  # holds its slot until the trainer claims it

    second = runs.launch(tiny_config, executor="ray", address=ray_head)
    assert store.get_run(second).executor_job_id is None  # MAX_CONCURRENT_RUNS=1: waits in the store's queue

    statuses = [submitted.status]

    def finished() -> bool:
        run = store.get_run(run_id)
        if statuses[-1] != run.status:
            statuses.append(run.status)
        return run.status not in store.ACTIVE

    wait_for(finished, what="the ray run to finish", timeout=300)
    run = store.get_run(run_id)
    assert run.status == "completed", run.error
    assert statuses == ["queued", "running", "completed"]
    assert len(store.run_history(run_id)) == 2
    assert run.pid is not None and run.host == runs.this_host() and run.heartbeat_at is not None
    assert (run_dir(run_id) / "best.pt").is_file()
    wait_for(lambda: _job_status(run) == "SUCCEEDED", what="Ray to report the job succeeded")

    st.cache_data.clear()
    at.run()  # the live panel's next refresh: this session's run, finished, on its card
    assert not at.exception
    card = "\n".join(str(m.value) for m in at.markdown)
    assert f"#{run_id}" in card and "completed" in card, card

    # the trainer handed its slot on as it ended: the queued run was submitted by the first one's job
    wait_for(lambda: store.get_run(second).executor_job_id, what="the queued ray run to be submitted")
    assert runs.cancel(second, grace=5) == "cancelled"


def test_cancelling_a_ray_run_stops_its_job_and_ends_cancelled(ray_head, tiny_config, tmp_path):
    run_id = runs.launch({**tiny_config, "epochs": 500}, executor="ray", address=ray_head)
    wait_for(lambda: (store.get_run(run_id).current_epoch or 0) >= 1, what="a first epoch", timeout=300)

    assert runs.cancel(run_id, grace=30) == "cancelled"
    run = store.get_run(run_id)
    assert run.finished_at is not None and len(store.run_history(run_id)) < 500
    assert _job_status(run) == "STOPPED"
    wait_for(lambda: not trainers_under(str(tmp_path)), what="the ray trainer to exit")
