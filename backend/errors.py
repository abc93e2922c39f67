"""The root of the product's own errors.

Every error that means "the input, the store or the request is wrong, and here is what to do"
inherits ``WorkbenchError`` as well as what it inherited before (``ValueError``, ...), so callers
that caught those still do. The command line (``backend/__main__.py``) prints a ``WorkbenchError``
as one line and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """A domain error whose message says what went wrong and what to do about it."""
