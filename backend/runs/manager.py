"""Run manager: training runs that are queued, cancellable and never lost, on this host or a cluster.

A run is a row in the run store plus, while it trains, one process:
``python -m backend train --run-id N``, started by the run's executor (``backend.runs.executors``:
a local subprocess in its own session writing to ``artifacts/runs/N/log.txt``, or a Ray job). The
database is the only channel between that process and whoever launched it, so the dashboard can be
closed or restarted while runs go on.

- ``launch`` validates a config, creates the row as ``queued`` and asks the scheduler to start it.
- ``start_queued`` starts the oldest queued runs while fewer than ``MAX_CONCURRENT_RUNS`` train. It
  runs under the scheduler lock (the ``scheduler`` row, ``SELECT ... FOR UPDATE`` on PostgreSQL, so
  the limit holds across hosts; a file lock on SQLite, one host), and every finishing trainer calls
  it (``on_run_finished``), so the queue moves on with no dashboard open.
- ``reap`` turns dead runs into ``lost``. On the trainer's own host: its process is gone (kill -9,
  out of memory, reboot) or its pid now belongs to another process. From another host: its
  heartbeat is older than ``HEARTBEAT_TIMEOUT_S`` (default 30 s). ``list_runs`` reaps first, so a
  listed status can be trusted; ``maybe_reap`` is the rate-limited reaper of the dashboard's live
  panel and the ``runs`` commands.
- ``cancel`` dequeues a queued run, or stops a running one through its executor (SIGTERM, then
  SIGKILL after a grace period; ``stop_job`` for Ray).
- ``delete`` removes a finished run's rows and artifacts.
- ``claim_run_folder`` makes sure a new run starts with an empty folder: files left under its id
  (from a run deleted when the store still reused ids) are moved aside, never picked up.

Status changes that race with the trainer's own writes are compare-and-set (``_transition``): a
status the trainer wrote (``completed``, ``cancelled``, ...) is never overwritten by a stale decision.
No torch here (the dashboard imports this module); only ``launch`` validates through the training
config, which imports it. Process identity is ``backend.runs.processes``, file names
``backend.runs.artifacts``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from backend import store
from backend.config import max_concurrent_runs, positive_seconds, runs_db_url
from backend.errors import WorkbenchError
from backend.runs import artifacts
from backend.runs.executors import default_executor, get_executor
from backend.runs.executors.base import training_command
from backend.runs.executors.local import collect_children
from backend.runs.processes import cmdline, is_trainer, this_host

LOST_ERROR = "training process (pid {pid}) is gone: killed, out of memory, or the machine restarted"
LOST_HEARTBEAT_ERROR = ("no heartbeat from the trainer on host {host} for {age:.0f} s (limit {limit:.0f} s): "
                        "its process or machine stopped")  # fmt: skip
LOST_JOB_ERROR = "its {executor} job {job} ended ({status}) before the trainer claimed the run"
HEARTBEAT_TIMEOUT_ENV = "HEARTBEAT_TIMEOUT_S"
DEFAULT_HEARTBEAT_TIMEOUT_S = 30.0
REAP_INTERVAL_S = 5.0  # the light reaper (dashboard fragment, runs commands) runs at most this often

_last_reap = 0.0
_reap_lock = threading.Lock()


class RunStateError(WorkbenchError, RuntimeError):
    """The run's status does not allow the request (its message says why and what to do)."""


class RunActive(RunStateError):
    """The run is queued with a process or running, so it cannot be deleted yet."""


def heartbeat_timeout() -> float:
    """``HEARTBEAT_TIMEOUT_S`` (default 30): how old a heartbeat may be before another host calls the run lost."""
    return positive_seconds(HEARTBEAT_TIMEOUT_ENV, DEFAULT_HEARTBEAT_TIMEOUT_S)


# --- public API ----------------------------------------------------------------------------------


def launch(config: dict, *, name: str | None = None, executor: str | None = None,
           address: str | None = None) -> int:  # fmt: skip
    """Validate a training config, queue it as a new run, start it if a slot is free; return the run id.

    ``config`` holds TrainConfig options (unset ones take the model's defaults); the whole
    validated config is stored in the run row, which is all the trainer reads. ``executor``:
    ``local`` or ``ray`` (default ``RUN_EXECUTOR``, else ``local``); ``address``: the Ray cluster's
    job API (default ``RAY_ADDRESS``), stored with the run.
    """
    from backend.runs.teacher import check_teacher
    from backend.training.config import TrainConfig  # imports torch (the registries it checks names in)

    executor = executor or default_executor()
    get_executor(executor)  # an unknown name fails before anything is stored
    if executor == "ray":
        from backend.runs.executors.ray import default_address, job_api_address

        address = job_api_address(address or default_address())
    else:
        address = None
    train_config = TrainConfig.from_dict(dict(config, name=name) if name else config)
    check_teacher(train_config)  # a distilled run's teacher: completed, same dataset, never on its test images
    run_id = store.create_run(
        name=train_config.display_name(),
        model=train_config.model,
        config=train_config.to_dict(),
        dataset=train_config.data,
        executor=executor,
    )
    # a local run belongs to the host that launched it: only there may the queue start it
    store.update_run(run_id, executor_address=address, host=this_host() if executor == "local" else None)
    claim_run_folder(run_id)
    start_queued()
    return run_id


def claim_run_folder(run_id: int) -> Path | None:
    """Give a new run an empty artifacts folder; return where earlier files were moved, if any.

    Stores made before run ids became unique (migration ``0002_hardening``) may hand out the id of
    a deleted run whose folder survived; its checkpoints must not pass for the new run's. They go
    to ``artifacts/runs/orphaned-<id>-<UTC time>``, and the new run's log says so.
    """
    folder = artifacts.run_dir(run_id)
    if not folder.exists():
        return None
    aside = artifacts.orphaned_dir(run_id, store.utcnow().strftime("%Y%m%dT%H%M%S%fZ"))
    folder.rename(aside)
    folder.mkdir(parents=True)
    with open(artifacts.log_path(run_id), "a", encoding="utf-8") as log:
        log.write(f"{folder} held files of an earlier run {run_id} (deleted before run ids were unique); "
                  f"moved them to {aside}\n")  # fmt: skip
    return aside


def start_queued() -> list[int]:
    """Start the oldest queued runs while slots are free; return the ids started."""
    return _fill_free_slots(finishing=None)


def on_run_finished(run_id: int) -> list[int]:
    """Hand a finishing run's slot to the queue; the trainer calls this as it ends.

    The finishing run never counts as busy, whether or not it has written its final status yet.
    Errors are printed (into the run's log) rather than raised: a run that trained must not turn
    into a failure because the next one could not start.
    """
    try:
        return _fill_free_slots(finishing=run_id)
    except Exception as e:  # anything at all: it must not fail the finished run
        print(f"could not start queued runs after run {run_id}: {e}", file=sys.stderr, flush=True)
        return []


def reap() -> list[int]:
    """Mark ``lost`` every active run whose trainer is gone; return the ids marked.

    Same host (or no host recorded): the pid must still be the run's trainer (``/proc``). Another
    host: the heartbeat must be younger than ``heartbeat_timeout()``. A cluster job not yet claimed
    by its trainer: lost once the cluster says the job ended. Also collects the exit status of
    trainers this process started, so an exited child does not linger as a zombie.
    """
    collect_children()
    lost = []
    for run in _active_runs():
        error = _death(run)
        if error and _transition(run.id, store.ACTIVE, status="lost", error=error, finished_at=store.utcnow()):
            lost.append(run.id)
    return lost


def maybe_reap(min_interval: float = REAP_INTERVAL_S) -> list[int]:
    """The light reaper: ``reap`` and move the queue on, at most once per ``min_interval`` seconds per
    process. The dashboard's live panel and the ``runs`` commands call it, so ``lost`` shows with no
    one listing runs."""
    global _last_reap
    with _reap_lock:
        now = time.monotonic()
        if now - _last_reap < min_interval:
            return []
        _last_reap = now
    lost = reap()
    start_queued()  # also starts this host's local runs that a trainer on another host could not
    return lost


def list_runs(**filters) -> pd.DataFrame:
    """``backend.store.list_runs(**filters)`` after reaping, so no dead run is listed as running.

    A run found lost frees its slot without a trainer to hand it on, so the queue is moved here.
    Runs live in the configured store (``RUNS_DB_URL``, which trainers inherit); a ``url`` filter
    naming another store is refused rather than reaping one store and listing another.
    """
    url = filters.get("url")
    if url is not None and url != runs_db_url():
        configured, other = store.masked_url(runs_db_url()), store.masked_url(url)
        raise ValueError(f"the run manager works on RUNS_DB_URL ({configured}), not {other}")
    if reap():
        start_queued()
    return store.list_runs(**filters)


def cancel(run_id: int, grace: float = 10.0) -> str:
    """Cancel a run and return its final status.

    A queued run is dequeued (it never starts). A running one is stopped by its executor: SIGTERM
    so the trainer stops at the next batch and keeps its checkpoints, its whole process group
    killed if it is still there after ``grace`` seconds (a Ray job: ``stop_job``). The status
    becomes ``cancelled`` unless the trainer finished first and wrote its own. A finished run raises
    ``RunStateError``; an unknown one ``RunNotFound``; a local run training on another host
    ``RunStateError`` (its process can only be signalled there).
    """
    run = _dequeue_or_get_active(run_id)
    if _started(run):
        _executor_of(run).stop(run, grace)
        _transition(run_id, store.ACTIVE, status="cancelled", finished_at=store.utcnow())
    start_queued()
    return store.get_run(run_id).status


def delete(run_id: int) -> None:
    """Delete a run's rows and its artifacts folder; ``RunActive`` while it has a process."""
    with _scheduler_lock():
        reap()
        run = store.get_run(run_id)
        if _holds_slot(run):
            raise RunActive(f"run {run_id} is {run.status}; cancel it before deleting it")
        run_folder = artifacts.run_dir(run_id)
        if run_folder.exists():
            shutil.rmtree(run_folder)
        store.delete_run_rows(run_id)


def log_path(run_id: int) -> Path:
    """Where a launched run's stdout and stderr go (``backend.runs.artifacts.log_path``)."""
    return artifacts.log_path(run_id)


def trainer_command_line(run: store.RunRecord) -> str:
    """The run's trainer command line: read from its process while it trains on this host, else the
    command the run manager starts it with."""
    argv = cmdline(run.pid) if run.pid is not None and _on_this_host(run) and _is_trainer(run) else None
    return shlex.join(argv or training_command(run.id))


# --- liveness ------------------------------------------------------------------------------------


def _on_this_host(run: store.RunRecord) -> bool:
    """Whether the run's process (if any) is on this host; rows with no host (older releases, rows a
    test points at a process) are taken to be."""
    return run.host is None or run.host == this_host()


def _is_trainer(run: store.RunRecord) -> bool:
    collect_children()
    return is_trainer(run.pid, run.pid_start_time, run.id)


def _death(run: store.RunRecord) -> str | None:
    """Why an active run is dead, or None while it may be alive (or is waiting in the queue)."""
    if run.pid is not None:
        if _on_this_host(run):
            return None if _is_trainer(run) else LOST_ERROR.format(pid=run.pid)
        seen = run.heartbeat_at or run.started_at or run.created_at
        age = (store.utcnow() - seen).total_seconds()
        limit = heartbeat_timeout()
        return LOST_HEARTBEAT_ERROR.format(host=run.host, age=age, limit=limit) if age > limit else None
    if run.executor_job_id:  # submitted to a cluster, not claimed yet
        executor = _executor_of(run)
        if executor.job_alive(run):
            return None
        status = getattr(executor, "status", lambda _run: "ended")(run)
        return LOST_JOB_ERROR.format(executor=run.executor, job=run.executor_job_id, status=status)
    return None


# --- scheduling ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _scheduler_lock() -> Iterator[None]:
    """Hold the scheduler lock: one decider at a time picks which queued runs start, so two never
    fill the same slot. On PostgreSQL it is the ``scheduler`` row (``SELECT ... FOR UPDATE``), held
    by every host; on SQLite, a file lock (``artifacts/runs/.scheduler.lock``) on this host. Not
    re-entrant: code holding it never calls a function that takes it again.
    """
    with store.scheduler_row_lock() as row_locked:
        if row_locked:
            yield
            return
        path = artifacts.scheduler_lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield  # closing the file releases the lock


def _fill_free_slots(finishing: int | None) -> list[int]:
    """Start queued runs, oldest first, while fewer than ``max_concurrent_runs()`` hold a slot."""
    with _scheduler_lock():
        reap()
        active = [run for run in _active_runs() if run.id != finishing]
        busy = sum(1 for run in active if _holds_slot(run))
        waiting = sorted((run for run in active if not _holds_slot(run) and _startable_here(run)),
                         key=lambda run: (run.created_at, run.id))  # fmt: skip
        free = max(max_concurrent_runs() - busy, 0)
        return [run.id for run in waiting[:free] if _start(run)]


def _startable_here(run: store.RunRecord) -> bool:
    """Whether this host may start a queued run: any cluster job; a local run only on the host that
    launched it (a trainer finishing on a Ray node must not start a dashboard host's local run)."""
    return run.executor != "local" or run.host is None or run.host == this_host()


def _started(run: store.RunRecord) -> bool:
    """Whether the run's executor has started something: a process, or a job in a cluster."""
    return run.pid is not None or run.executor_job_id is not None


def _holds_slot(run: store.RunRecord) -> bool:
    """Running, or queued with a process (or cluster job) that is starting up."""
    return run.status == "running" or (run.status == "queued" and _started(run))


def _executor_of(run: store.RunRecord):
    return get_executor(run.executor or "local", run.executor_address)


def _start(run: store.RunRecord) -> bool:
    """Start the trainer of one queued run; a run whose trainer cannot start becomes ``failed``."""
    try:
        started = _executor_of(run).start(run)
    except (OSError, WorkbenchError) as e:
        _transition(run.id, {"queued"}, status="failed", error=f"could not start the training process: {e}",
                    finished_at=store.utcnow())  # fmt: skip
        return False
    if started.pid is not None:
        # The pid goes in first: from then on the run holds its slot even before it says "running".
        # With a heartbeat (the process was just seen alive): another host's reaper must not judge a
        # run that waited longer than the timeout in the queue by its created_at.
        store.update_run(run.id, pid=started.pid, pid_start_time=started.pid_start_time, host=started.host,
                         heartbeat_at=store.utcnow())  # fmt: skip
        _transition(run.id, {"queued"}, status="running", started_at=store.utcnow())
    else:  # a cluster job: queued until its trainer claims the run, holding its slot meanwhile
        store.update_run(run.id, executor_job_id=started.job_id, executor_address=started.address)
    return True


def _active_runs() -> list[store.RunRecord]:
    """Full records of every queued or running run (a run deleted meanwhile is skipped)."""
    records = []
    for run_id in store.list_runs(status=sorted(store.ACTIVE))["id"]:
        with contextlib.suppress(store.RunNotFound):
            records.append(store.get_run(int(run_id)))
    return records


def _transition(run_id: int, from_statuses, **fields) -> bool:
    """Set ``fields`` only if the run's status is still one of ``from_statuses``; True if it was."""
    return store.update_run_if(run_id, from_statuses, **fields)


# --- cancelling ----------------------------------------------------------------------------------


def _dequeue_or_get_active(run_id: int) -> store.RunRecord:
    """The run if it is active; a queued run not started yet is cancelled on the spot.

    Done under the scheduler lock so that a queued run cannot start while it is being dequeued.
    """
    with _scheduler_lock():
        reap()
        run = store.get_run(run_id)
        if run.status not in store.ACTIVE:
            raise RunStateError(f"run {run_id} is already {run.status}")
        if run.executor == "local" and run.pid is not None and not _on_this_host(run):
            raise RunStateError(f"run {run_id} trains on host {run.host}; cancel it there "
                                "(its process can only be signalled on its own machine)")  # fmt: skip
        if not _started(run):
            _transition(run_id, store.ACTIVE, status="cancelled", finished_at=store.utcnow())
        return run
