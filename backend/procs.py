"""Low-level process helpers any layer may use (no backend imports here: ``tests/test_layering.py``).

- :func:`pid_exists`: whether a process id is in use on this machine, the one pid check that both the
  run manager (``backend.runs.processes``, where there is no ``/proc``) and the dataset generator
  (``backend.data.generate``, stale staging folders of killed runs) use.
- :func:`forkserver_context`: the start method of every worker pool in the backend (the upload
  readers of ``backend.data.inputs``, the generator's pool): workers fork from a clean,
  single-threaded server process, never from a threaded dashboard or a process holding torch's
  threads, and the server imports the pools' modules once so that a worker starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
from pathlib import Path

# Imported once by the fork server: every pool's worker then starts with numpy, pandas, PIL and
# matplotlib already in memory. One list for every pool: the server is one per process, started
# by whichever pool comes first, and it keeps the preload list of that moment.
FORKSERVER_PRELOAD = ("backend.data.inputs", "backend.data.generate")
REPO_ROOT = str(Path(__file__).resolve().parent.parent)


def pid_exists(pid: int) -> bool:
    """Whether any process has this pid (signal 0: nothing is sent). A pid owned by another user
    counts as existing; a reused pid cannot be told from the original one here."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forkserver_context() -> multiprocessing.context.BaseContext:
    """The ``forkserver`` context with :data:`FORKSERVER_PRELOAD`, and this repository importable by
    the server however the caller was started.

    CPython 3.11 starts the server as ``python -c ...`` and does not give it the caller's
    ``sys.path`` (it passes it, and ``forkserver.main`` ignores it): the server finds ``backend``
    only through its working directory. A dashboard started outside the repository root
    (``streamlit run /path/to/dashboard/Home.py`` from elsewhere: supported, docs/DASHBOARD.md) got a
    server whose preload failed without a word, so every worker of every prediction imported
    numpy, pandas and matplotlib itself (about 0.5 s a call on a quiet 2-core machine, 1.7 s on a
    busy one, against 0.1 s). The repository root goes on ``PYTHONPATH`` (after any entries
    already there) before the server starts, which it inherits; children started later inherit it
    too, harmlessly (they import this same ``backend``).
    """
    entries = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if REPO_ROOT not in entries:
        os.environ["PYTHONPATH"] = os.pathsep.join([*entries, REPO_ROOT])
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    return context
