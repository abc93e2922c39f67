"""Test-session setup: every test runs against its own runs.db, data and artifacts folders.

Shared fixtures live in ``tests/fixtures/<area>.py`` (one file per area, so they stay next to
their behaviour) and are loaded here as plugins.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Isolate the whole session before any backend module reads its config.
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="awb-tests-"))
os.environ["RUNS_DB_URL"] = f"sqlite:///{_SESSION_ROOT / 'runs.db'}"
os.environ["DATA_DIR"] = str(_SESSION_ROOT / "data")
os.environ["ARTIFACTS_DIR"] = str(_SESSION_ROOT / "artifacts")
os.environ.setdefault("MPLBACKEND", "Agg")
# Two cores: keep torch from oversubscribing them in tests and in child processes.
os.environ.setdefault("OMP_NUM_THREADS", "2")

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.runs",
    "tests.fixtures.processes",
    "tests.fixtures.services",
    "tests.fixtures.ray_head",
    "tests.fixtures.ordering",
]
