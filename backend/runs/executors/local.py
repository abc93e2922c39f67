"""The ``local`` executor (the default): the trainer is a subprocess of this host in its own session.

Its output goes to the run's ``log.txt``; cancel sends SIGTERM to the trainer, then SIGKILL to its
whole process group after the grace period, so nothing outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from backend import store
from backend.runs import artifacts
from backend.runs.executors.base import REPO_ROOT, Executor, Started, training_command
from backend.runs.processes import is_trainer, process_start_time, this_host

POLL_INTERVAL_S = 0.1
KILL_WAIT_S = 10.0  # how long SIGKILL may take to show (the kernel frees a large process slowly)

# Trainers started by this process, kept so that their exit status is collected (no zombies that
# look alive) and Python does not warn about children still running when a Popen is dropped.
_children: dict[int, subprocess.Popen] = {}


class LocalExecutor(Executor):
    name = "local"

    def start(self, run: store.RunRecord) -> Started:
        path = artifacts.log_path(run.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as log:
            child = subprocess.Popen(
                training_command(run.id),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: cancel signals it and its workers only
            )
        _children[child.pid] = child
        return Started(pid=child.pid, pid_start_time=process_start_time(child.pid), host=this_host())

    def stop(self, run: store.RunRecord, grace: float) -> None:
        """SIGTERM to the trainer alone: it stops at the next batch and shuts its DataLoader workers
        down itself (workers killed under it would turn the cancel into a failure). Whatever is left
        of the group once the trainer is gone is killed."""
        if run.pid is None or not _is_trainer(run):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(run.pid, signal.SIGTERM)
        if not _wait_until_gone(run, grace):
            _kill_group(run.pid)
            _wait_until_gone(run, KILL_WAIT_S)
        _kill_group(run.pid)


def collect_children() -> None:
    """Collect the exit status of trainers this process started (``waitpid`` with WNOHANG)."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)  # another thread (a dashboard session) may have collected it


def _is_trainer(run: store.RunRecord) -> bool:
    collect_children()
    return is_trainer(run.pid, run.pid_start_time, run.id)


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
