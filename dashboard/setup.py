"""The one setup call every page makes, and the guard that keeps tracebacks off the page.

``Home.py`` already put the repository root on ``sys.path`` and set the page config; a page calls
``setup_page(title, intro)`` and then only renders. ``run_guarded`` wraps the page (and each live
fragment) so an error becomes an ``st.error`` with a plain message: a ``WorkbenchError`` (an
unreadable store, a schema too new, bad input) shows the same one line the CLI prints; anything else
is a bug, and its traceback goes to the server log, where a developer can read it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from backend.errors import WorkbenchError

log = logging.getLogger("dashboard")

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


def page_file(name: str) -> str:
    """Absolute path of page script ``pages/<name>.py``: what ``st.Page`` and ``st.page_link`` take."""
    return str(PAGES_DIR / f"{name}.py")


def setup_page(title: str, intro: str | None = None) -> None:
    """Title and one-line introduction of a page (the shared look of every page)."""
    st.title(title)
    if intro:
        st.caption(intro)


@contextmanager
def guarded(what: str):
    """Show an unexpected error in ``what`` as a message instead of a traceback.

    Streamlit's own control flow (rerun, stop, switch_page) derives from ``BaseException`` and
    passes through untouched.
    """
    try:
        yield
    except WorkbenchError as e:
        log.warning("%s: %s", what, e)
        st.error(str(e), icon=":material/error:")
    except Exception as e:  # the last line of defence: everything else is handled where it happens
        log.exception("error while rendering %s", what)
        st.error(f"Something went wrong while showing {what}: {e}", icon=":material/error:")


def run_guarded(render: Callable[[], object], what: str = "this page") -> None:
    """Call ``render()`` inside ``guarded``."""
    with guarded(what):
        render()
