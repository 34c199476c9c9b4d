"""The browser tests' side of scripts/browser.py (Debian's Chromium through Selenium, nothing
downloaded): skip or fail where no browser can be had, the page's console errors, the view's
server in a thread.

``require()`` skips a test with ``missing()``'s one line, or fails it where
``LSTMLM_REQUIRE_BROWSER=1`` (CI, which installs the packages: ``make browser``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scripts import browser as chromium
from scripts.browser import chrome, missing

__all__ = ["REQUIRE", "chrome", "chromium", "console_errors", "missing", "require", "serve"]

REQUIRE = "LSTMLM_REQUIRE_BROWSER"


def require() -> None:
    """Skip (or, with LSTMLM_REQUIRE_BROWSER=1, fail) the calling test when no browser is here."""
    import pytest

    reason = missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but no browser: {reason}", pytrace=False)
    pytest.skip(f"no browser: {reason}")


def console_errors(driver: Any) -> list[str]:
    """The page's console errors since the last call (uncaught exceptions included)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` (the view's ASGI app) on a free local port in a thread; yields its URL."""
    from lstmlm.view.server import listening_socket, serving

    sock = listening_socket("127.0.0.1", 0)
    try:
        with serving(app, sock) as url:
            yield url
    finally:
        sock.close()
