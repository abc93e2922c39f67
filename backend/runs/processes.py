"""Process identity: which host this is, and whether a pid is still a given run's trainer.

On its own host a run's trainer is checked through ``/proc``: alive, started when recorded (a
reused pid starts later), and running ``backend train`` for that run id. From another host only the
run's heartbeat can tell (``backend.runs.manager.reap``). ``ANOMALY_HOST_ID`` overrides the host
name, so that tests (and containers sharing a hostname) can act as distinct hosts.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from backend.procs import pid_exists

START_TIME_TOLERANCE_S = 2.0  # /proc start times are whole ticks on a boot time given in whole seconds
HOST_ID_ENV = "ANOMALY_HOST_ID"

HAVE_PROC = Path("/proc/self/stat").exists()  # Linux; elsewhere liveness is all that can be checked


def this_host() -> str:
    """This machine's id as runs record it: ``ANOMALY_HOST_ID`` if set, else the host name."""
    return os.environ.get(HOST_ID_ENV) or socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch; None if it is gone or there is no /proc.

    Field 22 of ``/proc/<pid>/stat`` counts clock ticks since boot; with the boot time this tells a
    run's trainer apart from a later process that got the same pid.
    """
    stat = proc_stat(pid)
    boot = _boot_time()
    if stat is None or boot is None:
        return None
    return boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")


def is_trainer(pid: int, pid_start_time: float | None, run_id: int) -> bool:
    """Whether ``pid`` (on this host) is still run ``run_id``'s trainer: alive, started when recorded,
    running ``backend train`` (for this run id, when it has one on its command line)."""
    if not HAVE_PROC:
        return pid_exists(pid)  # a reused pid cannot be told apart without /proc
    stat = proc_stat(pid)
    if stat is None or stat[0] in {"Z", "X"}:  # gone, or a zombie whose parent has not collected it
        return False
    started = process_start_time(pid)
    if pid_start_time is not None and started is not None:
        if abs(started - pid_start_time) > START_TIME_TOLERANCE_S:
            return False
    return is_training_command(cmdline(pid), run_id)


def is_training_command(argv: list[str] | None, run_id: int) -> bool:
    """Whether a command line is ``... backend train ...`` (and for run ``run_id`` if it names one)."""
    if argv is None:  # unreadable or exiting: the start time alone has to decide
        return True
    if "backend" not in argv or "train" not in argv:
        return False
    if "--run-id" not in argv:
        return True  # a foreground ``train`` that created its own row
    position = argv.index("--run-id") + 1
    return position < len(argv) and argv[position] == str(run_id)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from the state on (index 0 is field 3); None if it is gone.

    The command name (field 2) may hold spaces and parentheses, so fields start after the last ')'.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cmdline(pid: int) -> list[str] | None:
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
