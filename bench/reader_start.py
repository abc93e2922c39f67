"""What one call of the upload readers costs, by how the caller was started.

Every prediction reads its files in fresh worker processes (``backend.data.inputs.load_batches``:
a file that hangs its decoder can be stopped). A worker forks from the fork server
(``backend.procs.forkserver_context``), which has imported the readers' modules once; then
CPython's ``multiprocessing`` imports the caller's main script again in the worker, unless that
script is a package's ``__main__`` (``python -m backend``, ``python -m streamlit``). This bench
times ``load_batches`` on one small CSV (read and drawn) in a child process started four ways:

- ``module main, repo root``: a package's ``__main__`` that imports Streamlit's command line (what
  ``python -m streamlit run dashboard/Home.py`` is, and what ``make run`` does);
- ``launcher script, repo root``: a script that imports Streamlit's command line (what the
  ``streamlit`` launcher is: ``streamlit run dashboard/Home.py``);
- ``plain script, repo root`` and ``plain script, another folder``: a script importing nothing
  else, started from the repository root and from a temporary folder (a dashboard started
  elsewhere).

Each child makes one first call (the fork server starts) and then ``--calls`` more; the table gives
the first and the median of the rest, in ms. ``--repo PATH`` times another checkout (e.g. an older
commit, to see a change). Prints a Markdown table.

    python bench/reader_start.py [--calls 7] [--repo PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys, time
sys.path.insert(0, {repo!r})  # as dashboard/Home.py does
{extra}
if __name__ == "__main__":
    from backend.data.inputs import load_batches
    times = []
    for _ in range({calls} + 1):
        started = time.perf_counter()
        answers = [a for batch in load_batches([("s.csv", {csv!r})]) for a in batch]
        times.append(1000 * (time.perf_counter() - started))
        assert answers[0].error is None, answers[0].error
    print(json.dumps(times))
"""
LAUNCHER_IMPORT = "from streamlit.web.cli import main as _streamlit_cli  # what the launcher imports"


def probe(repo: Path, folder: Path, csv: Path, calls: int, *, launcher: bool, module: bool, cwd: Path) -> list[float]:
    code = PROBE.format(repo=str(repo), csv=str(csv), calls=calls, extra=LAUNCHER_IMPORT if launcher else "")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if module:
        package = folder / "probe_pkg"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(code)
        command = [sys.executable, "-m", "probe_pkg"]
        env["PYTHONPATH"] = str(folder)
    else:
        script = folder / ("launcher.py" if launcher else "plain.py")
        script.write_text(code)
        command = [sys.executable, str(script)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=7)
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="the checkout to time (default: this one)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory(prefix="awb-reader-start-") as tmp:
        folder = Path(tmp)
        csv = folder / "s.csv"
        csv.write_text("value\n" + "\n".join(f"{(i % 50) / 7:.3f}" for i in range(600)) + "\n")
        cases = {
            "module main, repo root (`python -m streamlit run`)": {"launcher": True, "module": True, "cwd": repo},
            "launcher script, repo root (`streamlit run`)": {"launcher": True, "module": False, "cwd": repo},
            "plain script, repo root": {"launcher": False, "module": False, "cwd": repo},
            "plain script, another folder": {"launcher": False, "module": False, "cwd": folder},
        }
        load = os.getloadavg()[0]
        rows = []
        for label, case in cases.items():
            times = probe(repo, folder, csv, args.calls, **case)
            rows.append(f"| {label} | {times[0]:.0f} | {statistics.median(times[1:]):.0f} |")
            print(rows[-1], flush=True)
    print(f"\n`python bench/reader_start.py --calls {args.calls}` on {platform.machine()}, "
          f"{os.cpu_count()} cores, load average {load:.1f} -> {os.getloadavg()[0]:.1f}; checkout {repo}\n")  # fmt: skip
    print("| caller | first call (ms) | each later call, median (ms) |\n| --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
