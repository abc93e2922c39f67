"""Run manager: training runs as supervised subprocesses that are queued, cancellable and never lost.

A run is a row in the run store plus, while it trains, one process:
``python -m backend train --run-id N`` in its own session (its own process group), writing its
output to ``artifacts/runs/N/log.txt``. The database is the only channel between that process and
whoever launched it, so the dashboard can be closed or restarted while runs go on.

- ``launch`` validates a config, creates the row as ``queued`` and asks the scheduler to start it.
- ``start_queued`` starts the oldest queued runs while fewer than ``MAX_CONCURRENT_RUNS`` train. It
  runs under a cross-process file lock, and every finishing trainer calls it (``on_run_finished``),
  so the queue moves on with no dashboard open.
- ``reap`` turns runs whose process is gone (kill -9, out of memory, reboot) or whose pid now belongs
  to another process into ``lost``; ``list_runs`` reaps first, so a listed status can be trusted.
- ``cancel`` dequeues a queued run, or stops a running one (SIGTERM, then SIGKILL after a grace period).
- ``delete`` removes a finished run's rows and artifacts.
- ``claim_run_folder`` makes sure a new run starts with an empty folder: files left under its id
  (from a run deleted when the store still reused ids) are moved aside, never picked up.

Status changes that race with the trainer's own writes are compare-and-set (``_transition``): a
status the trainer wrote (``completed``, ``cancelled``, ...) is never overwritten by a stale decision.
No torch here (the dashboard imports this module); only ``launch`` validates through the training
config, which imports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from backend import store
from backend.config import REPO_ROOT, artifacts_dir, max_concurrent_runs, run_dir, runs_db_url
from backend.errors import WorkbenchError

LOST_ERROR = "training process (pid {pid}) is gone: killed, out of memory, or the machine restarted"
START_TIME_TOLERANCE_S = 2.0  # /proc start times are whole ticks on a boot time given in whole seconds
POLL_INTERVAL_S = 0.1
KILL_WAIT_S = 10.0  # how long SIGKILL may take to show (the kernel frees a large process slowly)

_HAVE_PROC = Path("/proc/self/stat").exists()  # Linux; elsewhere liveness is all that can be checked

# Trainers started by this process, kept so that their exit status is collected (no zombies that
# look alive) and Python does not warn about children still running when a Popen is dropped.
_children: dict[int, subprocess.Popen] = {}


class RunStateError(WorkbenchError, RuntimeError):
    """The run's status does not allow the request (its message says why and what to do)."""


class RunActive(RunStateError):
    """The run is queued with a process or running, so it cannot be deleted yet."""


# --- public API ----------------------------------------------------------------------------------


def launch(config: dict, *, name: str | None = None) -> int:
    """Validate a training config, queue it as a new run, start it if a slot is free; return the run id.

    ``config`` holds TrainConfig options (unset ones take the model's defaults); the whole
    validated config is stored in the run row, which is all the trainer reads.
    """
    from backend.training.config import TrainConfig  # imports torch (the registries it checks names in)

    train_config = TrainConfig.from_dict(dict(config, name=name) if name else config)
    run_id = store.create_run(
        name=train_config.display_name(),
        model=train_config.model,
        config=train_config.to_dict(),
        dataset=train_config.data,
    )
    claim_run_folder(run_id)
    start_queued()
    return run_id


def claim_run_folder(run_id: int) -> Path | None:
    """Give a new run an empty artifacts folder; return where earlier files were moved, if any.

    Stores made before run ids became unique (migration ``0002_hardening``) may hand out the id of
    a deleted run whose folder survived; its checkpoints must not pass for the new run's. They go
    to ``artifacts/runs/orphaned-<id>-<UTC time>``, and the new run's log says so.
    """
    folder = run_dir(run_id)
    if not folder.exists():
        return None
    stamp = store.utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    aside = folder.with_name(f"orphaned-{run_id}-{stamp}")
    folder.rename(aside)
    folder.mkdir(parents=True)
    with open(log_path(run_id), "a", encoding="utf-8") as log:
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
    """Mark ``lost`` every active run whose training process is gone or is now another process.

    Returns the ids marked. Also collects the exit status of trainers this process started, so an
    exited child does not linger as a zombie.
    """
    _collect_children()
    lost = []
    for run in _active_runs():
        if run.pid is None or _is_trainer(run):
            continue
        if _transition(run.id, store.ACTIVE, status="lost", error=LOST_ERROR.format(pid=run.pid),
                       finished_at=store.utcnow()):  # fmt: skip
            lost.append(run.id)
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

    A queued run is dequeued (it never starts). A running one gets SIGTERM so the trainer stops at
    the next batch and keeps its checkpoints; if it is still there after ``grace`` seconds its whole
    process group gets SIGKILL. The status becomes ``cancelled`` unless the trainer finished first
    and wrote its own. A finished run raises ``RunStateError``; an unknown one ``RunNotFound``.
    """
    run = _dequeue_or_get_active(run_id)
    if run.pid is not None:
        _stop(run, grace)
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
        run_folder = run_dir(run_id)
        if run_folder.exists():
            shutil.rmtree(run_folder)
        store.delete_run_rows(run_id)


def log_path(run_id: int) -> Path:
    """Where a launched run's stdout and stderr go."""
    return run_dir(run_id) / "log.txt"


def this_host() -> str:
    """The name of the machine this process runs on (what a trainer records when it claims a run)."""
    return socket.gethostname()


def trainer_command_line(run: store.RunRecord) -> str:
    """The run's trainer command line: read from its process while it trains on this host, else the
    command the run manager starts it with."""
    argv = _cmdline(run.pid) if run.pid is not None and _is_trainer(run) else None
    return shlex.join(argv or _training_command(run.id))


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch; None if it is gone or there is no /proc.

    Field 22 of ``/proc/<pid>/stat`` counts clock ticks since boot; with the boot time this tells a
    run's trainer apart from a later process that got the same pid.
    """
    stat = _proc_stat(pid)
    boot = _boot_time()
    if stat is None or boot is None:
        return None
    return boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")


# --- scheduling ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _scheduler_lock() -> Iterator[None]:
    """Hold the cross-process scheduler lock (``artifacts/runs/.scheduler.lock``).

    One process at a time decides which queued runs start, so two deciders never fill the same
    slot. Not re-entrant: code holding it never calls a function that takes it again.
    """
    path = artifacts_dir() / "runs" / ".scheduler.lock"
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
        waiting = sorted((run for run in active if not _holds_slot(run)), key=lambda run: (run.created_at, run.id))
        free = max(max_concurrent_runs() - busy, 0)
        return [run.id for run in waiting[:free] if _start(run.id)]


def _holds_slot(run: store.RunRecord) -> bool:
    """Running, or queued with a process that is starting up."""
    return run.status == "running" or (run.status == "queued" and run.pid is not None)


def _training_command(run_id: int) -> list[str]:
    """The trainer's argv: no shell, nothing but the run id, which is an integer."""
    return [sys.executable, "-m", "backend", "train", "--run-id", str(int(run_id))]


def _start(run_id: int) -> bool:
    """Start the trainer of one queued run; a run whose process cannot start becomes ``failed``."""
    path = log_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "ab") as log:
            child = subprocess.Popen(
                _training_command(run_id),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: cancel signals it and its workers only
            )
    except OSError as e:
        _transition(run_id, {"queued"}, status="failed", error=f"could not start the training process: {e}",
                    finished_at=store.utcnow())  # fmt: skip
        return False
    _children[child.pid] = child
    # The pid goes in first: from then on the run holds its slot even before it says "running".
    store.update_run(run_id, pid=child.pid, pid_start_time=process_start_time(child.pid))
    _transition(run_id, {"queued"}, status="running", started_at=store.utcnow())
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
    """The run if it is active; a queued run with no process is cancelled on the spot.

    Done under the scheduler lock so that a queued run cannot start while it is being dequeued.
    """
    with _scheduler_lock():
        reap()
        run = store.get_run(run_id)
        if run.status not in store.ACTIVE:
            raise RunStateError(f"run {run_id} is already {run.status}")
        if run.pid is None:
            _transition(run_id, store.ACTIVE, status="cancelled", finished_at=store.utcnow())
        return run


def _stop(run: store.RunRecord, grace: float) -> None:
    """Stop a run's trainer: SIGTERM, then SIGKILL to its process group after ``grace`` seconds.

    SIGTERM goes to the trainer alone: it stops at the next batch and shuts its DataLoader workers
    down itself (workers killed under it would turn the cancel into a failure). Whatever is left of
    the group once the trainer is gone is killed, so nothing outlives the run.
    """
    if not _is_trainer(run):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(run.pid, signal.SIGTERM)
    if not _wait_until_gone(run, grace):
        _kill_group(run.pid)
        _wait_until_gone(run, KILL_WAIT_S)
    _kill_group(run.pid)


def _kill_group(pgid: int) -> None:
    """SIGKILL every process in a run's process group (its id is the trainer's pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _wait_until_gone(run: store.RunRecord, timeout: float) -> bool:
    """Poll until the run's trainer has exited; False if it is still there after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while _is_trainer(run):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


# --- processes -----------------------------------------------------------------------------------


def _collect_children() -> None:
    """Collect the exit status of trainers this process started (``waitpid`` with WNOHANG)."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)  # another thread (a dashboard session) may have collected it


def _is_trainer(run: store.RunRecord) -> bool:
    """Whether ``run.pid`` is still this run's trainer: alive, started when recorded, running
    ``backend train`` (for this run id, when it has one on its command line)."""
    _collect_children()
    if not _HAVE_PROC:
        return _exists(run.pid)
    stat = _proc_stat(run.pid)
    if stat is None or stat[0] in {"Z", "X"}:  # gone, or a zombie whose parent has not collected it
        return False
    started = process_start_time(run.pid)
    if run.pid_start_time is not None and started is not None:
        if abs(started - run.pid_start_time) > START_TIME_TOLERANCE_S:
            return False
    return _is_training_command(_cmdline(run.pid), run.id)


def _is_training_command(argv: list[str] | None, run_id: int) -> bool:
    """Whether a command line is ``... backend train ...`` (and for run ``run_id`` if it names one)."""
    if argv is None:  # unreadable or exiting: the start time alone has to decide
        return True
    if "backend" not in argv or "train" not in argv:
        return False
    if "--run-id" not in argv:
        return True  # a foreground ``train`` that created its own row
    position = argv.index("--run-id") + 1
    return position < len(argv) and argv[position] == str(run_id)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from the state on (index 0 is field 3); None if it is gone.

    The command name (field 2) may hold spaces and parentheses, so fields start after the last ')'.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None if it cannot be read.

    A process that is exiting has already released its memory and shows an empty command line;
    that is "unknown" (the start time decides), not "some other program".
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1] or None


def _boot_time() -> float | None:
    """Boot time in seconds since the epoch (``btime`` of ``/proc/stat``)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    return next((float(line.split()[1]) for line in lines if line.startswith("btime ")), None)


def _exists(pid: int) -> bool:
    """Without /proc: whether any process has this pid (a reused pid cannot be told apart)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
