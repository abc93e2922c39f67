"""What the bench scripts share: the machine's load at the time, and writing a report."""

from __future__ import annotations

import os
from pathlib import Path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ("n/a" where the OS has none): a shared machine's timings need it."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def publish(text: str, out: Path) -> None:
    """Print the report and write it to ``out``."""
    print("\n" + text)
    out.write_text(text)
    print(f"written to {out}")
