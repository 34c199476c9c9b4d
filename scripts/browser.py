"""A real browser for the view's tests, benchmark and screenshots: Debian's Chromium through Selenium.

Selenium never downloads anything here: the browser is ``/usr/bin/chromium`` and the driver
``/usr/bin/chromedriver`` (Debian's ``chromium`` and ``chromium-driver`` packages, ``make
browser``), named explicitly so Selenium Manager is not asked. Chromium starts headless with a
throwaway profile and its background traffic off (no update checks, sync or QUIC probes), so
it reaches nothing but the page it opens.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # containers and CI runners: no user namespaces for Chromium's sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--force-device-scale-factor=1",  # screenshots of the window's size in pixels
)


def missing() -> str | None:
    """Why no browser can be had here, in one line; None when everything is there."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e .[dev])"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} not found (make browser: Debian's {package})"
    return None


@contextmanager
def chrome(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A headless Chromium (a Selenium WebDriver) with a fresh profile, quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lstmlm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        # --window-size counts the window's frame: grow it so the page itself is width x height
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
