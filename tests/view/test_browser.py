"""The page of ``lstmlm view`` in a real browser (headless Chromium through Selenium): served by
the app in this process, and as a static file. Each number the page shows is checked against
the endpoint that sent it. Screenshots go to each test's tmp_path (and $LSTMLM_SCREENSHOTS).

Skips with one line where there is no browser (tests/view/browser.py); LSTMLM_REQUIRE_BROWSER=1
(CI) makes that a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstmlm.view.app import Viewer
from tests.conftest import invoke, train_tiny_run_once
from tests.view import browser

SENTENCE = "the cat sees the dog . the frog hears the cow ."
#: the diagram's data-name of each number -> the trace's quantity
DIAGRAM = {
    "f": "forget_gate",
    "i": "input_gate",
    "o": "output_gate",
    "candidate": "candidate",
    "c": "cell",
    "h": "hidden",
}
WAIT = 20  # seconds: a slow, loaded CI runner; the page itself answers in milliseconds

pytestmark = pytest.mark.usefixtures("need_browser")


@pytest.fixture(scope="module")
def need_browser() -> None:
    browser.require()


@pytest.fixture(scope="module")
def url(trained_run: Path, need_browser: None) -> Iterator[str]:
    viewer = Viewer.open(trained_run, device="cpu")
    with browser.serve(viewer.app()) as address:
        yield address


@pytest.fixture(scope="module")
def driver(need_browser: None) -> Iterator[Any]:
    with browser.chrome() as chrome:
        yield chrome


@pytest.fixture(scope="module")
def gru_page(tmp_path_factory: pytest.TempPathFactory, need_browser: None) -> tuple[Path, dict[str, Any]]:
    """A static page of a tiny GRU run, and its bootstrap object."""
    run = train_tiny_run_once(tmp_path_factory, "gru-view", "--cell", "gru")
    page = run.parent / "gru.html"
    result = invoke("view", str(run), "--text", SENTENCE, "--out", str(page))
    assert result.exit_code == 0, result.output
    found = re.search(
        r'<script id="lstmlm-bootstrap" type="application/json">(.*?)</script>', page.read_text(), re.S
    )
    assert found is not None
    return page, json.loads(found.group(1))


# ---------------------------------------------------------------- helpers


def api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (no body) or POST JSON to the server, as the page would; NDJSON comes back as a list."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        text = response.read().decode()
        if response.headers.get("Content-Type", "").startswith("application/x-ndjson"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)


def wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(lambda d: condition(d), message=what)


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def body_data(driver: Any, name: str) -> str | None:
    """``data-NAME`` of <body>: the page sets ``ready`` after start-up, ``traced`` after a render."""
    return driver.find_element("tag name", "body").get_attribute(f"data-{name}")


def set_threshold(driver: Any, value: float | None) -> None:
    """Move the threshold slider (None: to its minimum) as a user's drag would: an input event."""
    driver.execute_script(
        "const s = document.getElementById('threshold'); s.value = arguments[0] ?? s.min;"
        "s.dispatchEvent(new Event('input'));",
        value,
    )


def open_page(driver: Any, address: str) -> None:
    driver.get(address)
    wait(driver, lambda d: body_data(d, "ready") == "true", "page ready")
    browser.console_errors(driver)  # start each test with an empty log


def shoot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    if folder := os.environ.get("LSTMLM_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    return path


def heatmap_shape(driver: Any) -> tuple[int, int]:
    canvas = by_id(driver, "heatmap")
    return int(canvas.get_attribute("data-columns")), int(canvas.get_attribute("data-rows"))


def trace_text(driver: Any, text: str, *, keys: bool = False) -> None:
    """Type ``text`` and trace it (the button, or Ctrl+Enter); wait for the new heatmap."""
    from selenium.webdriver.common.keys import Keys

    box = by_id(driver, "text-input")
    box.clear()
    driver.execute_script("document.body.dataset.traced = ''")
    box.send_keys(text)
    if keys:
        box.send_keys(Keys.CONTROL, Keys.ENTER)
    else:
        by_id(driver, "trace-button").click()
    wait(driver, lambda d: body_data(d, "traced"), "the trace rendered")


def matrix(encoded: str, tokens: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), dtype="<f4").reshape(tokens, -1)


def widths(info: dict[str, Any], layer: int = 0) -> dict[str, int]:
    return {q["name"]: q["width"] for q in info["layers"][layer]["quantities"]}


# ---------------------------------------------------------------- server mode


def test_typed_text_gives_one_column_per_token_and_one_row_per_unit(
    driver: Any, url: str, tmp_path: Path
) -> None:
    open_page(driver, url)
    info = api(url, "/api/info")
    expected = api(url, "/api/trace", {"text": SENTENCE})
    trace_text(driver, SENTENCE)
    spans = by_css(driver, "#tokens .token")
    assert [s.text for s in spans] == expected["tokens"]
    assert [int(s.get_attribute("data-index")) for s in spans] == list(range(len(spans)))
    quantity = by_id(driver, "quantity-select").get_attribute("value")
    assert quantity == "cell"  # the default where the cell carries one
    assert heatmap_shape(driver) == (len(expected["tokens"]), widths(info)[quantity])
    assert by_id(driver, "run-name").text == info["run"] and by_id(driver, "cell-name").text == info["cell"]
    timings = driver.execute_script("return window.lstmlmView.timings")
    assert timings["decode_ms"] >= 0 and timings["render_ms"] > 0
    shoot(driver, tmp_path, "view_server")
    assert browser.console_errors(driver) == []


def test_the_rows_follow_the_quantity(driver: Any, url: str) -> None:
    from selenium.webdriver.support.ui import Select

    open_page(driver, url)
    trace_text(driver, SENTENCE, keys=True)  # Ctrl+Enter traces too
    info = api(url, "/api/info")
    picker = Select(by_id(driver, "quantity-select"))
    assert [o.get_attribute("value") for o in picker.options] == list(widths(info))
    for name, width in widths(info).items():
        picker.select_by_value(name)
        canvas = by_id(driver, "heatmap")
        assert canvas.get_attribute("data-quantity") == name
        assert heatmap_shape(driver) == (len(by_css(driver, "#tokens .token")), width)
    assert browser.console_errors(driver) == []


def test_hovering_a_token_shows_its_predictions(driver: Any, url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, url)
    trace_text(driver, SENTENCE)
    expected = api(url, "/api/trace", {"text": SENTENCE})
    head = by_id(driver, "prediction-head")  # kept: its content changes, not the element
    for t in (1, 4):
        ActionChains(driver).move_to_element(by_css(driver, "#tokens .token")[t]).perform()
        wait(driver, lambda d, t=t: head.get_attribute("data-index") == str(t), "hover")
        shown = by_css(driver, "#prediction-list .prediction")
        word, p = expected["predictions"][t][0]
        assert len(shown) == len(expected["predictions"][t])
        assert shown[0].find_element("css selector", ".word").text == word
        assert shown[0].find_element("css selector", ".prob").text == f"{p:.3f}"
        assert f"{expected['surprisal'][t]:.2f} bits" in head.text


def test_the_diagram_shows_the_selected_steps_numbers(driver: Any, url: str, tmp_path: Path) -> None:
    """Click a token, then a heatmap cell: the diagram's f, i, o, C~, C_prev, C, h are the trace's
    values at that token and unit, as shown to 3 decimals (so within 5e-4)."""
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, url)
    trace_text(driver, SENTENCE)
    expected = api(url, "/api/trace", {"text": SENTENCE})
    T = len(expected["tokens"])
    values = {name: matrix(v, T) for name, v in expected["layers"][0]["values"].items()}
    start = np.frombuffer(base64.b64decode(expected["layers"][0]["start"]["cell"]), dtype="<f4")

    def check(t: int, u: int) -> None:
        wait(driver, lambda d: by_id(d, "diagram").get_attribute("data-token") == str(t), "diagram token")
        assert by_id(driver, "diagram").get_attribute("data-unit") == str(u)
        want = {key: float(values[name][t, u]) for key, name in DIAGRAM.items()}
        want["c_prev"] = float(values["cell"][t - 1, u] if t else start[u])
        for key, value in want.items():
            shown = by_css(driver, f'#diagram [data-name="{key}"]')
            assert len(shown) == 1, key
            assert abs(float(shown[0].text) - value) <= 5e-4 + 1e-6, (key, shown[0].text, value)

    by_css(driver, "#tokens .token")[3].click()
    check(3, 0)
    canvas = by_id(driver, "heatmap")
    columns, rows = heatmap_shape(driver)
    t, u = 5, rows - 2
    col_w, row_h = canvas.size["width"] / columns, canvas.size["height"] / rows
    x = (t + 0.5) * col_w - canvas.size["width"] / 2  # offsets from the element's centre
    y = (u + 0.5) * row_h - canvas.size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(canvas, round(x), round(y)).click().perform()
    check(t, u)
    tooltip = by_id(driver, "heatmap-tooltip")
    assert tooltip.is_displayed() and f"unit {u}" in tooltip.text
    shoot(driver, tmp_path, "view_diagram")


def test_a_range_lists_the_units_on_throughout(driver: Any, url: str) -> None:
    """A drag or a shift+click makes a token range; the units listed are those >= threshold at every token of
    it (LSTMVis); clicking one colours the tokens by it (Karpathy)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(driver, url)
    trace_text(driver, SENTENCE)
    expected = api(url, "/api/trace", {"text": SENTENCE})
    cell = matrix(expected["layers"][0]["values"]["cell"], len(expected["tokens"]))
    spans = by_css(driver, "#tokens .token")

    def in_range() -> list[int]:
        return [int(s.get_attribute("data-index")) for s in by_css(driver, "#tokens .token.in-range")]

    ActionChains(driver).click_and_hold(spans[0]).move_to_element(spans[2]).release().perform()
    wait(driver, lambda d: in_range() == [0, 1, 2], "a range dragged over 3 tokens")
    spans[1].click()  # a click clears the range and selects
    assert in_range() == []
    ActionChains(driver).key_down(Keys.SHIFT).click(spans[3]).key_up(Keys.SHIFT).perform()
    wait(
        driver, lambda d: in_range() == [1, 2, 3], "a range from the selected token to the shift+clicked one"
    )
    for threshold in (-0.5, 0.0, 0.3):
        set_threshold(driver, threshold)
        threshold_used = float(driver.execute_script("return window.lstmlmView.state.threshold"))
        on = [u for u in range(cell.shape[1]) if (cell[1:4, u] >= threshold_used).all()]
        assert by_id(driver, "on-count").text == str(len(on))
        assert [int(li.get_attribute("data-unit")) for li in by_css(driver, "#on-units li")] == on
    set_threshold(driver, None)
    first = by_css(driver, "#on-units li")[0]
    unit = int(first.get_attribute("data-unit"))
    first.click()
    coloured = [float(s.get_attribute("data-value")) for s in by_css(driver, "#tokens .token")]
    np.testing.assert_allclose(coloured, cell[:, unit], atol=1e-4)  # shown to 4 decimals
    assert not by_id(driver, "karpathy-legend").get_attribute("hidden")


def test_find_in_corpus_shows_the_servers_matches(driver: Any, url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(driver, url)
    trace_text(driver, SENTENCE)
    spans = by_css(driver, "#tokens .token")
    spans[0].click()
    ActionChains(driver).key_down(Keys.SHIFT).click(spans[1]).key_up(Keys.SHIFT).perform()
    set_threshold(driver, None)
    button = by_id(driver, "search-button")
    wait(driver, lambda d: button.is_enabled(), "search enabled")
    button.click()
    wait(driver, lambda d: re.search(r"match(es)? in", by_id(d, "search-summary").text), "search done")
    units = driver.execute_script("return window.lstmlmView.onUnits()")
    threshold = driver.execute_script("return window.lstmlmView.state.threshold")
    split = by_id(driver, "search-split").get_attribute("value")
    body = {"layer": 0, "quantity": "cell", "units": units, "threshold": threshold, "min_length": 2}
    last = api(url, "/api/search", {**body, "split": split, "limit": 20})[-1]
    shown = by_css(driver, "#search-results .search-match")
    assert len(shown) == len(last["matches"]) > 0
    assert [int(m.get_attribute("data-position")) for m in shown] == [m["position"] for m in last["matches"]]
    assert shown[0].find_element("css selector", "mark").text == " ".join(last["matches"][0]["match"])


def test_pair_view_shows_the_score_of_a_demo_pair(driver: Any, url: str, tmp_path: Path) -> None:
    open_page(driver, url)
    by_id(driver, "pairs-tab").click()
    demos = wait(driver, lambda d: by_css(d, "#pair-view .demo-pair"), "demo pair buttons")
    pair = api(url, "/api/info")["demo_pairs"][1]
    demos[1].click()
    verdict = wait(driver, lambda d: by_css(d, "#pair-difference"), "the pair's result")[0]
    expected = api(url, "/api/score", {"good": pair["good"], "bad": pair["bad"]})
    assert float(verdict.get_attribute("data-value")) == pytest.approx(expected["difference"], abs=1e-9)
    assert f"{expected['difference']:.3f}" in verdict.text
    assert ("prefers the good" in verdict.text) == expected["prefers_good"]
    rows = by_css(driver, ".pair-table tr.good td")
    assert len(rows) == max(len(expected["good"]["tokens"]), len(expected["bad"]["tokens"]))
    shoot(driver, tmp_path, "view_pairs")


def test_generate_streams_the_servers_continuation(driver: Any, url: str) -> None:
    open_page(driver, url)
    by_id(driver, "generate-tab").click()
    by_id(driver, "generate-prompt").send_keys("the cat")
    by_id(driver, "generate-tokens").clear()
    by_id(driver, "generate-tokens").send_keys("8")
    by_id(driver, "generate-button").click()
    output = by_id(driver, "generate-output")
    wait(driver, lambda d: output.get_attribute("data-done") == "true", "generation done")
    body = {"prompt": "the cat", "max_tokens": 8, "temperature": 0.8, "seed": 1, "top_k": 0, "top_p": 1.0}
    assert output.get_attribute("data-text") == api(url, "/api/generate", body)[-1]["text"]
    assert len(by_css(driver, "#generate-output .piece")) >= 1


def test_an_error_is_one_line_in_the_alert(driver: Any, url: str) -> None:
    open_page(driver, url)
    limit = api(url, "/api/info")["limits"]["max_chars"]
    long_text = "cat " * (limit // 4 + 1)  # one character over the limit
    driver.execute_script("document.getElementById('text-input').value = arguments[0]", long_text)
    by_id(driver, "trace-button").click()
    alert = wait(driver, lambda d: by_id(d, "error") if by_id(d, "error").is_displayed() else None, "error")
    assert alert.get_attribute("role") == "alert"
    assert "limit" in alert.text and "\n" not in alert.text


# ---------------------------------------------------------------- static page


def test_static_page_shows_the_same_without_a_server(
    driver: Any, url: str, trained_run: Path, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    result = invoke("view", str(trained_run), "--text", SENTENCE, "--out", str(page))
    assert result.exit_code == 0, result.output
    expected = api(url, "/api/trace", {"text": SENTENCE})
    info = api(url, "/api/info")
    open_page(driver, page.as_uri())
    assert by_id(driver, "static-note").is_displayed()
    assert not by_id(driver, "trace-button").is_enabled()
    assert [s.text for s in by_css(driver, "#tokens .token")] == expected["tokens"]
    assert heatmap_shape(driver) == (len(expected["tokens"]), widths(info)["cell"])
    shoot(driver, tmp_path, "view_static")
    by_id(driver, "pairs-tab").click()
    verdict = wait(driver, lambda d: by_css(d, "#pair-difference"), "the first embedded pair")[0]
    first = info["demo_pairs"][0]
    scored = api(url, "/api/score", {"good": first["good"], "bad": first["bad"]})
    assert float(verdict.get_attribute("data-value")) == pytest.approx(scored["difference"], abs=1e-9)
    assert len(by_css(driver, "#pair-summary tr.pair-row")) == len(info["demo_pairs"])  # every pair listed
    assert browser.console_errors(driver) == []


def test_static_gru_page_draws_the_gru_with_its_numbers(
    driver: Any, gru_page: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The GRU's picture: r, z, the candidate, h_prev and h at the clicked token are the page's own
    trace (3 decimals: within 5e-4), and h = (1-z)*candidate + z*h_prev (PyTorch's form) holds."""
    page, boot = gru_page
    open_page(driver, page.as_uri())
    trace = boot["trace"]
    T = len(trace["tokens"])
    values = {name: matrix(v, T) for name, v in trace["layers"][0]["values"].items()}
    t = 4
    by_css(driver, "#tokens .token")[t].click()
    wait(driver, lambda d: by_id(d, "diagram").get_attribute("data-token") == str(t), "diagram token")
    assert by_id(driver, "diagram").get_attribute("data-kind") == "gru"
    want = {"r": "reset_gate", "z": "update_gate", "candidate": "candidate", "h": "hidden"}
    shown = {key: float(by_css(driver, f'#diagram [data-name="{key}"]')[0].text) for key in [*want, "h_prev"]}
    for key, name in want.items():
        assert abs(shown[key] - values[name][t, 0]) <= 5e-4 + 1e-6, key
    assert abs(shown["h_prev"] - values["hidden"][t - 1, 0]) <= 5e-4 + 1e-6
    assert "adds more terms" not in by_id(driver, "identities").text  # the identity holds
    shoot(driver, tmp_path, "view_gru")
    assert browser.console_errors(driver) == []
