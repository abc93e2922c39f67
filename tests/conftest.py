"""Test-session setup: every test runs against its own runs.db, data and artifacts folders.

Shared fixtures live in ``tests/fixtures/<area>.py`` (one file per area, so they stay next to
their behaviour) and are loaded here as plugins.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Isolate the whole session before any backend module reads its config.
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="awb-tests-"))
# Removed when this process exits (after every fixture has stopped its children): a session leaves
# about 0.4 GB of runs, caches and datasets. AWB_KEEP_TEST_FILES=1 keeps it to look at.
if not os.environ.get("AWB_KEEP_TEST_FILES"):
    atexit.register(shutil.rmtree, _SESSION_ROOT, ignore_errors=True)
os.environ["RUNS_DB_URL"] = f"sqlite:///{_SESSION_ROOT / 'runs.db'}"
os.environ["DATA_DIR"] = str(_SESSION_ROOT / "data")
os.environ["ARTIFACTS_DIR"] = str(_SESSION_ROOT / "artifacts")
os.environ.setdefault("MPLBACKEND", "Agg")
# One torch thread per process: two xdist workers, each often beside a trainer child, share two
# cores, and OpenMP threads that wait for one another lose most of their time when oversubscribed
# (docs/TESTS.md, "Threads"). Children inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.runs",
    "tests.fixtures.processes",
    "tests.fixtures.services",
    "tests.fixtures.ray_head",
    "tests.fixtures.ordering",
]
