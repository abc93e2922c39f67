"""Whether a process id is in use on this machine: the one low-level pid check that both the run
manager (``backend.runs.processes``, where there is no ``/proc``) and the dataset generator
(``backend.data.generate``, stale staging folders of killed runs) use. No backend imports here, so
any layer may import it (``tests/test_layering.py``).
"""

from __future__ import annotations

import os


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
