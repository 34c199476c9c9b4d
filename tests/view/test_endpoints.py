"""The JSON endpoints of ``lstmlm view``, through Starlette's test client: shapes, the
numbers against the library's own, limits and one-line errors."""

from __future__ import annotations

import base64
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from lstmlm.view.app import Viewer
from lstmlm.view.payloads import Limits
from lstmlm.view.server import Engine, listening_socket, serving

SENTENCE = "the cat sat on the mat ."
SEARCH = {"layer": 0, "quantity": "cell", "units": [0], "threshold": 0}


@pytest.fixture(scope="module")
def viewer(trained_run: Path) -> Viewer:
    return Viewer.open(trained_run, device="cpu")


@pytest.fixture(scope="module")
def client(viewer: Viewer) -> Iterator[TestClient]:
    with TestClient(viewer.app()) as test_client:
        yield test_client


def matrix(encoded: str, width: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), dtype="<f4").reshape(-1, width)


def widths(info: dict[str, Any], layer: int = 0) -> dict[str, int]:
    return {q["name"]: q["width"] for q in info["layers"][layer]["quantities"]}


def test_page_and_info(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '"mode":"server"' in page.text
    info = client.get("/api/info").json()
    assert info["cell"] == "lstm" and info["diagram"] == "lstm"
    assert set(widths(info)) == {"forget_gate", "input_gate", "candidate", "cell", "output_gate", "hidden"}
    assert info["limits"]["max_chars"] == Limits().max_chars
    assert all(pair["good"] != pair["bad"] for pair in info["demo_pairs"])


def test_trace_is_the_lstm_step_by_step(client: TestClient, viewer: Viewer) -> None:
    """The matrices are the cell's own numbers: C = f*C_prev + i*C~ and h = o*tanh(C) hold on
    the decoded float32 values (to float32 rounding: |values| <= ~10, so 1e-5)."""
    trace = client.post("/api/trace", json={"text": SENTENCE}).json()
    size = widths(viewer.info)["cell"]
    tokens = trace["tokens"]
    assert tokens == [viewer.model.tokenizer.token(i) for i in viewer.model.tokenizer.encode(SENTENCE)]
    layer = trace["layers"][0]
    q = {name: matrix(v, size) for name, v in layer["values"].items()}
    assert all(m.shape == (len(tokens), size) for m in q.values())
    previous = np.vstack([matrix(layer["start"]["cell"], size), q["cell"][:-1]])
    written = q["forget_gate"] * previous + q["input_gate"] * q["candidate"]
    np.testing.assert_allclose(q["cell"], written, atol=1e-5)
    np.testing.assert_allclose(q["hidden"], q["output_gate"] * np.tanh(q["cell"]), atol=1e-5)


def test_trace_surprisal_and_predictions_match_the_library(client: TestClient, viewer: Viewer) -> None:
    """Surprisal = -log2 of ``Model.score``'s per-token probability (the fused path against the
    equation cells: float32, 1e-3 bits); predictions after the last token = ``next_token_probs``."""
    trace = client.post("/api/trace", json={"text": SENTENCE, "top": 3}).json()
    scored = viewer.model.score(SENTENCE)[0].tokens[:-1]  # without the closing <eos>
    assert [t.token for t in scored] == trace["tokens"]
    for token, surprisal in zip(scored, trace["surprisal"], strict=True):
        assert surprisal == pytest.approx(-token.logprob / math.log(2), abs=1e-3)
    assert len(trace["predictions"]) == len(trace["tokens"])
    assert all(len(p) == 3 for p in trace["predictions"])
    last = viewer.model.next_token_probs(SENTENCE, 3)  # decoded: <eos> is "\n" there
    assert [t for t, _ in trace["predictions"][-1]] == [{"\n": "<eos>"}.get(t, t) for t, _ in last]
    for (_, p), (_, expected) in zip(trace["predictions"][-1], last, strict=True):
        assert p == pytest.approx(expected, abs=1e-4)
    first = client.post("/api/next", json={"text": "", "k": 3}).json()["predictions"]
    assert trace["start_predictions"] == first


def test_score_next_and_generate(client: TestClient, viewer: Viewer) -> None:
    good, bad = "the cat sat .", "the cat sat sat ."
    pair = client.post("/api/score", json={"good": good, "bad": bad}).json()
    expected = [s.logprob for s in viewer.model.score([good, bad])]
    assert [pair["good"]["total"], pair["bad"]["total"]] == pytest.approx(expected)
    assert pair["difference"] == pytest.approx(expected[0] - expected[1])
    assert pair["prefers_good"] == (expected[0] > expected[1]) and pair["good"]["tokens"][-1] == "<eos>"
    nxt = client.post("/api/next", json={"text": "the cat", "k": 2}).json()
    expected_next = viewer.model.next_token_probs("the cat", 2)
    assert [p for _, p in nxt["predictions"]] == pytest.approx([p for _, p in expected_next], abs=1e-5)
    response = client.post("/api/generate", json={"prompt": "the cat", "max_tokens": 6, "seed": 3})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    expected_text = viewer.model.generate("the cat", 6, seed=3)
    assert "".join(line["piece"] for line in lines[:-1]) == expected_text
    assert lines[-1] == {"done": True, "text": "the cat" + expected_text}


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/trace", {"text": ""}, 400, "text must be a non-empty string"),
        ("/api/trace", {"text": 5}, 400, "field 'text' must be str (got 5)"),
        ("/api/trace", {}, 400, "missing field 'text'"),
        ("/api/trace", [1, 2], 400, "must be a JSON object"),
        ("/api/trace", {"text": "a " * 12_000}, 413, "the limit is 20,000"),
        ("/api/trace", {"text": "the " * 2_500}, 413, "tokens; the limit is 2,000"),
        ("/api/trace", {"text": "the", "top": True}, 400, "field 'top' must be int (got true)"),
        ("/api/trace", {"text": "the", "top": -5}, 400, "top must be in 1..10 (got -5)"),
        ("/api/trace", {"text": "the \ud800"}, 400, "not valid Unicode"),
        ("/api/generate", {"prompt": "the", "seed": -1}, 400, "seed"),
        ("/api/generate", {"prompt": "the", "temperature": float("nan")}, 400, "temperature"),
        ("/api/search", {**SEARCH, "threshold": "x"}, 400, "field 'threshold' must be int or float"),
        ("/api/score", {"good": "the cat"}, 400, "missing field 'bad'"),
        ("/api/next", {"text": "the", "k": 0}, 400, "k must be a whole number in 1..10"),
        ("/api/generate", {"prompt": "the", "max_tokens": 301}, 400, "max_tokens must be in 1..300"),
        ("/api/generate", {"prompt": "the", "temperature": -1}, 400, "temperature must be"),
        ("/api/search", {**SEARCH, "layer": 3}, 400, "layer must be"),
        ("/api/search", {**SEARCH, "quantity": "gate"}, 400, "quantity must"),
        ("/api/search", {**SEARCH, "units": [99]}, 400, "units must be in"),
        ("/api/search", {**SEARCH, "units": []}, 400, "non-empty list"),
        ("/api/search", {**SEARCH, "units": [True]}, 400, "non-empty list"),
        ("/api/search", {**SEARCH, "split": "x"}, 400, "split must be one of"),
    ],
)
def test_bad_requests_get_one_line(
    client: TestClient, path: str, body: Any, status: int, message: str
) -> None:
    raw = json.dumps(body)  # as Python writes it: NaN, and "\ud800" escaped, which JSON allows
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error


def test_not_json_wrong_method_unknown_path(client: TestClient) -> None:
    assert client.post("/api/trace", content=b"{not json").json() == {"error": "the request body is not JSON"}
    for response, status in ((client.get("/api/trace"), 405), (client.get("/api/nothing"), 404)):
        assert response.status_code == status and list(response.json()) == ["error"]
    huge = client.post("/api/trace", content=b" " * (Limits().max_chars * 8 + 5000))
    assert huge.status_code == 413


def test_requests_beyond_the_limit_in_flight_get_429(viewer: Viewer) -> None:
    """With one request allowed in flight, a second one while a stream is open is refused."""
    app = Viewer(viewer.model, viewer.info, Limits(max_concurrent=1)).app()
    with TestClient(app) as client:
        body = {"prompt": "the", "max_tokens": 50}
        with client.stream("POST", "/api/generate", json=body) as stream:
            lines = stream.iter_lines()
            assert "piece" in json.loads(next(lines))
            busy = client.post("/api/trace", json={"text": "the cat"})
            assert busy.status_code == 429 and busy.json()["error"].startswith("busy")
            assert json.loads(list(lines)[-1])["done"]
        assert client.post("/api/trace", json={"text": "the cat"}).status_code == 200  # left again


def test_search_streams_progress_then_matches(client: TestClient, viewer: Viewer) -> None:
    """A threshold every unit passes (gates are in (0, 1)) makes the whole split one span per stream."""
    body = {"layer": 0, "quantity": "forget_gate", "units": [0, 1], "threshold": 0.0, "min_length": 2}
    response = client.post("/api/search", json={**body, "limit": 200})
    *progress, result = [json.loads(line) for line in response.text.splitlines()]
    assert all(0 < p["progress"] <= 1 for p in progress) and result["complete"] and result["stopped"] is None
    assert result["matches"] and all(m["length"] >= 2 and 0 <= m["mean"] <= 1 for m in result["matches"])
    nothing = client.post("/api/search", json={**body, "threshold": 1.5}).text.splitlines()
    assert json.loads(nothing[-1])["matches"] == []


def test_a_failure_mid_stream_ends_it_with_one_error_line(viewer: Viewer) -> None:
    def items() -> Iterator[dict[str, Any]]:
        yield {"progress": 0.5}
        raise ValueError("the disk went away\nand more")

    engine = Engine(viewer.model, Limits(max_concurrent=1), viewer.info)
    engine.enter()
    lines = [json.loads(line) for line in engine.stream(items())]
    assert lines == [{"progress": 0.5}, {"error": "internal error: ValueError: the disk went away"}]
    engine.enter()  # the stream left: the one place is free again


def test_a_stream_left_early_frees_its_place(viewer: Viewer) -> None:
    """Through a real server: a client that reads one line of a long stream and hangs up. Its
    place is freed once the server sees it gone (polled; at once, with no other load)."""
    app = Viewer(viewer.model, viewer.info, Limits(max_concurrent=1)).app()
    with serving(app, listening_socket("127.0.0.1", 0)) as url:
        for _ in range(3):
            body = json.dumps({"prompt": "the", "max_tokens": 300}).encode()
            with urllib.request.urlopen(url + "api/generate", body, timeout=30) as response:
                assert "piece" in json.loads(response.readline())
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(url + "api/next", b'{"text": "the"}', timeout=30).close()
                    break
                except urllib.error.HTTPError as busy:
                    assert busy.code == 429 and time.monotonic() < deadline, "the place was never freed"
                    time.sleep(0.05)
