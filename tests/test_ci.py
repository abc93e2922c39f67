"""`make test` on a fresh machine: .ci/system-deps.sh finds what is missing and says the one command to run.

Run only in modes that install nothing: ``--check``, or as a user who may not install. SYSTEM_DEPS_ROOT
points the script at a folder standing in for ``/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.config import REPO_ROOT

SCRIPT = REPO_ROOT / ".ci" / "system-deps.sh"


def _deps(root: Path, *arguments: str, user: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the script; as another ``user`` it is read from stdin (that user may not see this checkout)."""
    command, stdin = ([*user, "bash", "-s", "--"], SCRIPT.read_text()) if user else ([str(SCRIPT)], None)
    return subprocess.run([*command, *arguments], input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEM_DEPS_ROOT": str(root)})


def _executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def test_check_reports_every_missing_package_with_the_command_to_install_it(tmp_path):
    result = _deps(tmp_path, "--check")
    assert result.returncode == 1
    assert result.stdout.strip() == ("system-deps: missing Debian package(s): chromium postgresql; install with: "
                                     "sudo apt-get update && sudo apt-get install -y chromium postgresql")

    _executable(tmp_path / "usr/lib/postgresql/16/bin/pg_ctl")
    assert "missing Debian package(s): chromium postgresql" in _deps(tmp_path, "--check").stdout  # no initdb yet
    _executable(tmp_path / "usr/lib/postgresql/16/bin/initdb")
    result = _deps(tmp_path, "--check")
    assert result.returncode == 1 and "missing Debian package(s): chromium;" in result.stdout

    _executable(tmp_path / "usr/bin/chromium")
    result = _deps(tmp_path, "--check")
    assert result.returncode == 0 and "chromium and postgresql are installed" in result.stdout
    assert _deps(tmp_path).returncode == 0  # nothing missing: nothing to install


def test_a_user_who_cannot_install_gets_the_command_and_a_failure(tmp_path):
    user = []
    if os.geteuid() == 0:  # as root the script would install; run it as a user who may not
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to drop privileges")
        user = ["runuser", "-u", "nobody", "--"]
    result = _deps(tmp_path, user=user)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().endswith("run: sudo apt-get update && sudo apt-get install -y chromium postgresql")
    assert len(result.stderr.strip().splitlines()) == 1


def test_make_test_checks_system_packages_before_pytest():
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    commands = subprocess.run(["make", "-n", "test"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=60, check=True).stdout.splitlines()
    assert ".ci/system-deps.sh" in commands
    pytest_line = next(i for i, line in enumerate(commands) if "-m pytest" in line)
    assert commands.index(".ci/system-deps.sh") < pytest_line
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"


def test_test_files_run_longest_first_and_unknown_files_count_as_the_median(tmp_path):
    from types import SimpleNamespace

    from tests.fixtures.ordering import load_durations, longest_first

    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({"tests/a.py": 5, "tests/b.py": 60, "tests/c.py": 20, "tests/d.py": 1}))
    ids = ["tests/a.py::one", "tests/new.py::x", "tests/b.py::one", "tests/a.py::two", "tests/d.py::z",
           "tests/c.py::y", "tests/b.py::two"]  # fmt: skip
    ordered = [item.nodeid for item in longest_first([SimpleNamespace(nodeid=i) for i in ids], load_durations(durations))]
    # b (60) > c (20) > new (median of 5, 60, 20, 1 = 12.5) > a (5) > d (1); a file's tests keep their order.
    assert ordered == ["tests/b.py::one", "tests/b.py::two", "tests/c.py::y", "tests/new.py::x",
                       "tests/a.py::one", "tests/a.py::two", "tests/d.py::z"]  # fmt: skip

    durations.write_text("not json")
    assert load_durations(durations) == {}
    assert [item.nodeid for item in longest_first([SimpleNamespace(nodeid=i) for i in ids[:3]], {})] == ids[:3]


def test_storing_durations_merges_into_the_old_figures_and_drops_deleted_files():
    from tests.fixtures.ordering import merge_durations

    old = {"tests/a.py": 5.0, "tests/b.py": 60.0, "tests/gone.py": 30.0}
    new = {"tests/a.py": 12.34, "tests/new.py": 2.0}
    merged = merge_durations(old, new, exists=lambda name: name != "tests/gone.py")
    # a partial run (a and new) refreshes those two, keeps b's figure and forgets the deleted file
    assert merged == {"tests/b.py": 60.0, "tests/a.py": 12.3, "tests/new.py": 2.0}
    assert list(merged) == ["tests/b.py", "tests/a.py", "tests/new.py"]  # longest first


def test_make_test_keeps_the_measured_file_order():
    recipe = (REPO_ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "--dist loadfile --no-loadscope-reorder" in recipe
    durations = json.loads((REPO_ROOT / "tests" / "durations.json").read_text())
    assert all((REPO_ROOT / name).is_file() for name in durations), "durations.json names a file that is gone"
