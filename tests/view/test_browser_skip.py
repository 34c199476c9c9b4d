"""Where no browser can be had, the browser tests skip with one line, and CI
(LSTMLM_REQUIRE_BROWSER=1) fails instead: tests/view/browser.py with Chromium made missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.view import browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser.chromium, "CHROMIUM", tmp_path / "no-chromium")


def test_missing_names_the_absent_browser_in_one_line(no_chromium: None) -> None:
    reason = browser.missing()
    assert reason is not None and "no-chromium" in reason and "\n" not in reason


def test_require_skips_without_a_browser(no_chromium: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(browser.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no browser: .*no-chromium"):
        browser.require()


def test_require_fails_without_a_browser_where_ci_requires_one(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(browser.REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="LSTMLM_REQUIRE_BROWSER=1 but no browser"):
        browser.require()
