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


FORKSERVER_PROBE = """
import json, os, sys
sys.path.insert(0, {repo!r})  # as dashboard/Home.py does: the caller finds backend, its cwd does not
from backend.data.inputs import load_batches

if __name__ == "__main__":
    answers = [a for batch in load_batches([("s.csv", {csv!r})]) for a in batch]
    servers = []
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{{entry}}/stat").read()
            cmdline = open(f"/proc/{{entry}}/cmdline", "rb").read()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"forkserver" in cmdline:
            servers.append(open(f"/proc/{{entry}}/maps").read())
    print(json.dumps({{"errors": [a.error for a in answers], "servers": len(servers),
                      "pandas_in_server": any("/pandas/_libs/" in maps for maps in servers)}}))
"""


def test_the_fork_server_preloads_the_readers_when_the_caller_runs_outside_the_repository(tmp_path):
    """A dashboard started from another folder: the reader pool's fork server still imports
    ``backend.data.inputs`` (so pandas, numpy, matplotlib) once, instead of every worker of every
    prediction importing them (CPython 3.11 starts the server without the caller's sys.path)."""
    from backend.config import REPO_ROOT

    csv = tmp_path / "s.csv"
    csv.write_text("value\n" + "\n".join(str(i % 7) for i in range(200)) + "\n")
    script = tmp_path / "probe.py"
    script.write_text(FORKSERVER_PROBE.format(repo=str(REPO_ROOT), csv=str(csv)))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"errors": [None], "servers": 1, "pandas_in_server": True}
