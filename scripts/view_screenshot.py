"""Regenerate the README's screenshots of ``lstmlm view`` from a trained run.

    python -m scripts.view_screenshot runs/demo                 # docs/view.png, docs/view_pairs.png
    python -m scripts.view_screenshot RUN --out /tmp/view.png   # and /tmp/view_pairs.png

Serves the run on a free local port (in this process), opens the page in headless Chromium at
1400x900 (scripts/browser.py: Debian's chromium and chromium-driver, nothing downloaded),
traces the essay's sentence, selects a token and the first number unit (its Karpathy colouring
on the text), and saves the page; then the pair view with the demo's one-attractor pair.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from scripts.browser import chrome, missing
from scripts.common import ROOT

SENTENCE = "The keys to the cabinet near the doors are on the table ."
PAIR = "The keys to the cabinet are"  # the demo pair shown in the second picture
WAIT = 30.0


def until(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(lambda d: condition(d), message=what)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def trace_view(driver: Any, url: str, token: str) -> None:
    """The trace tab: the sentence traced, ``token`` selected, the first number unit coloured."""
    driver.get(url)
    until(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true", "page")
    box = driver.find_element("id", "text-input")
    box.clear()
    box.send_keys(SENTENCE)
    driver.find_element("id", "trace-button").click()
    until(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-traced"), "trace")
    units = css(driver, '#unit-list .unit-item[data-kind="number"]') or css(driver, "#unit-list .unit-item")
    if units:
        units[0].click()  # Karpathy's colouring, and the diagram's unit
    spans = css(driver, "#tokens .token")
    words = [s.text for s in spans]
    chosen = spans[words.index(token)] if token in words else spans[len(spans) // 2]
    chosen.click()
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.2)  # let the last paint land before the picture


def pair_view(driver: Any) -> None:
    driver.find_element("id", "pairs-tab").click()
    demos = until(driver, lambda d: css(d, "#pair-view .demo-pair"), "demo pairs")
    chosen = next((b for b in demos if b.text.startswith(PAIR + " ")), demos[0])
    chosen.click()
    until(driver, lambda d: css(d, "#pair-difference"), "pair result")
    time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a trained run folder (e.g. runs/demo)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "view.png", help="the trace view's PNG")
    parser.add_argument("--token", default="are", help="the token to select (default: are)")
    args = parser.parse_args(argv)
    if reason := missing():
        print(f"view_screenshot: no browser: {reason}", file=sys.stderr)
        return 1
    from lstmlm.view.app import Viewer
    from lstmlm.view.server import listening_socket, serving

    viewer = Viewer.open(args.run, device="cpu")
    pairs_out = args.out.with_name(f"{args.out.stem}_pairs{args.out.suffix}")
    with serving(viewer.app(), listening_socket("127.0.0.1", 0)) as url, chrome(1400, 900) as driver:
        trace_view(driver, url, args.token)
        driver.save_screenshot(str(args.out))
        pair_view(driver)
        driver.save_screenshot(str(pairs_out))
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    for error in errors:
        print(f"console: {error}", file=sys.stderr)
    print(f"wrote {args.out} and {pairs_out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
