"""``lstmlm view``: the static page it writes, what it refuses, and the server's start and stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lstmlm.view.page import GENERATOR
from tests.conftest import invoke

BOOTSTRAP = re.compile(r'<script id="lstmlm-bootstrap" type="application/json">(.*?)</script>', re.S)


def bootstrap_of(page: str) -> dict[str, Any]:
    found = BOOTSTRAP.search(page)
    assert found is not None, "no bootstrap element"
    return json.loads(found.group(1))


def test_static_page_is_one_offline_file(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    text = "the cat sat </script> <!--<script> ."
    result = invoke("view", str(trained_run), "--text", text, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert GENERATOR in page and "LSTMLM_" not in page  # every placeholder filled
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from elsewhere
    data = bootstrap_of(page)  # "</script>" in the text did not end the element early
    assert data["mode"] == "static" and data["text"] == text
    assert len(data["trace"]["tokens"]) == len(data["trace"]["surprisal"]) > 0
    assert data["pairs"] and all("difference" in pair for pair in data["pairs"])
    again = invoke("view", str(trained_run), "--text", "the dog", "--out", str(out))
    assert again.exit_code == 0 and bootstrap_of(out.read_text())["text"] == "the dog"  # its own page


def test_a_text_holding_the_placeholders_stays_text(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    text = "the /*LSTMLM_SCRIPT*/ LSTMLM_BOOTSTRAP /*LSTMLM_STYLE*/ \\1 $1 cat"
    assert invoke("view", str(trained_run), "--text", text, "--out", str(out)).exit_code == 0
    assert bootstrap_of(out.read_text())["text"] == text


def test_static_page_from_a_file(trained_run: Path, tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat\nsat .\n", encoding="utf-8")
    out = tmp_path / "page.htm"
    assert invoke("view", str(trained_run), "--file", str(text), "--out", str(out)).exit_code == 0
    assert bootstrap_of(out.read_text())["text"] == "the cat\nsat .\n"


def test_refusals_leave_files_alone(trained_run: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "notes.html"
    foreign.write_text("<html>my notes</html>")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe the cat")
    run = str(trained_run)
    cases = [
        (["--text", "the cat", "--out", str(foreign)], "is not a page lstmlm view wrote"),
        (["--text", "the cat", "--out", str(tmp_path / "page.txt")], "--out must name an .html file"),
        (["--text", "the cat", "--out", str(tmp_path / "no" / "p.html")], "folder not found"),
        (["--out", str(tmp_path / "p.html")], "--out needs the text to show"),
        (["--text", "a", "--file", str(binary)], "give --text or --file, not both"),
        (["--file", str(binary), "--out", str(tmp_path / "p.html")], "is not UTF-8 text"),
        (["--file", str(tmp_path / "none.txt")], "file not found"),
        (["--text", "the " * 2500, "--out", str(tmp_path / "p.html")], "tokens; the limit is 2,000"),
    ]
    for args, message in cases:
        result = invoke("view", run, *args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1
    assert foreign.read_text() == "<html>my notes</html>" and not (tmp_path / "p.html").exists()


def start_server(run: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``lstmlm view RUN --port 0`` in its own process, and the URL it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lstmlm", "view", str(run), "--port", "0", "--device", "cpu", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the URL (or an error) is printed
    found = re.search(r"http://\S+/", line)
    if found is None:
        process.kill()
        pytest.fail(f"no URL printed: {line}{process.stdout.read()}")
    return process, found.group(0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_server_serves_then_stops_on_a_signal(trained_run: Path, signum: int) -> None:
    process, url = start_server(trained_run, "--text", "the cat")
    try:
        with urllib.request.urlopen(url + "api/info", timeout=30) as response:
            assert json.load(response)["cell"] == "lstm"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert bootstrap_of(response.read().decode())["trace"]["tokens"] == ["the", "cat"]
        process.send_signal(signum)
        started = time.monotonic()
        output, _ = process.communicate(timeout=15)
    finally:
        process.kill()
    assert time.monotonic() - started < 10  # well within: uvicorn stops at once with no request open
    assert process.returncode == 0 and "stopped" in output, output
    assert "Traceback" not in output


def test_a_port_in_use_is_one_line(trained_run: Path) -> None:
    process, url = start_server(trained_run)
    try:
        port = url.rstrip("/").rsplit(":", 1)[1]
        result = invoke("view", str(trained_run), "--port", port, "--device", "cpu")
        assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
