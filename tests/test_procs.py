"""``backend.procs.pid_exists``: the one pid check the run manager (without /proc) and the dataset
generator (stale staging folders) share, on real processes."""

from __future__ import annotations

import os
import subprocess
import sys

from backend.procs import pid_exists
from backend.runs import processes


def _finished_pid() -> int:
    """The pid of a real child that has exited and been reaped (nothing has it now, barring reuse)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_live_process_exists_and_a_reaped_one_does_not():
    assert pid_exists(os.getpid())
    assert pid_exists(1)  # init: alive, and another user's process when not run as root
    assert not pid_exists(_finished_pid())


def test_without_proc_the_run_manager_falls_back_to_the_same_check(monkeypatch):
    monkeypatch.setattr(processes, "HAVE_PROC", False)
    assert processes.is_trainer(os.getpid(), None, run_id=1)  # liveness is all it can tell
    assert not processes.is_trainer(_finished_pid(), None, run_id=1)
