"""``lstmlm view``: tracing and rendering a 1,000-token text on the demo model, against a bare forward.

The issue's goal: the page feels live, a 1,000-token text traced and drawn well under a
second on 2 cores. Timed in one run, each the median of ``--repeats``:

- ``forward``: the bare baseline, the run's model (fused ``nn.LSTM``) over the same tokens;
- ``trace``: ``payloads.trace``, the equation cells step by step, every gate kept, the
  surprisal and top-10 predictions per token (what ``POST /api/trace`` computes);
- ``endpoint``: ``POST /api/trace`` over HTTP to the view's server (the JSON included);
- ``page``: in headless Chromium, from the click on Trace to the heatmap drawn: the request,
  the decoding of the base64 matrices and every panel's render (``decode``, ``render``: the
  page's own parts). Skipped with one line where no Chromium is installed (``make browser``).

The text is the first ``--tokens`` tokens of the run's valid split, read as one line. The run
is ``runs/demo`` (trained with configs/demo.toml first when it is not there, ~2 min).

    python -m scripts.bench.bench_view
    python -m scripts.bench.bench_view --run runs/demo --tokens 1000 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scripts.browser import chrome, missing
from scripts.common import LSTMLM, ROOT

GOAL_MS = 1000.0
CLICK_TO_DRAWN = """
const [text, done] = [arguments[0], arguments[arguments.length - 1]];
document.body.dataset.traced = "";
document.querySelector("#text-input").value = text;
const started = performance.now();
document.querySelector("#trace-button").click();
(function poll() {
  if (document.body.dataset.traced) {
    done({total: performance.now() - started, ...window.lstmlmView.timings,
          columns: document.querySelector("#heatmap").dataset.columns});
  } else requestAnimationFrame(poll);
})();
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "demo", help="a trained run")
    p.add_argument("--tokens", type=int, default=1000, help="length of the traced text")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per part (median)")
    return p.parse_args()


def ensure_run(run: Path) -> None:
    if not (run / "config.json").exists():
        print(f"training {run} (configs/demo.toml, ~2 min on 2 cores)", flush=True)
        demo = [*LSTMLM, "train", "--out", str(run), "--overwrite", "--config", "configs/demo.toml"]
        subprocess.run(demo, check=True, cwd=ROOT, capture_output=True)


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def text_of(viewer: Any, tokens: int) -> str:
    """The first ``tokens`` tokens of the run's valid split, as one line."""
    from lstmlm.runs.load import run_split

    ids = run_split(viewer.model.run, "valid", None).ids[:tokens]
    text = " ".join(viewer.model.tokenizer.token(int(i)) for i in ids)
    return text.replace("<eos>", ".")


def post(url: str, body: dict[str, Any]) -> bytes:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def browser_row(url: str, text: str, tokens: int, repeats: int) -> dict[str, float] | None:
    reason = missing()
    if reason is not None:
        print(f"page: skipped, no browser: {reason}")
        return None
    with chrome() as driver:
        driver.set_script_timeout(60)
        driver.get(url)
        runs = [driver.execute_async_script(CLICK_TO_DRAWN, text) for _ in range(repeats + 1)][1:]
    assert all(int(r["columns"]) == tokens for r in runs), "the heatmap does not show every token"
    return {key: statistics.median(r[key] for r in runs) for key in ("total", "decode_ms", "render_ms")}


def main() -> None:
    args = parse_args()
    ensure_run(args.run)
    from lstmlm.view.app import Viewer
    from lstmlm.view.payloads import trace
    from lstmlm.view.server import listening_socket, serving

    viewer = Viewer.open(args.run, device="cpu")
    text = text_of(viewer, args.tokens)
    ids = viewer.model.tokenizer.encode(text)
    tokens = torch.tensor([viewer.model.tokenizer.eos_id, *ids]).unsqueeze(1)
    module = viewer.model.module

    def forward() -> None:
        with torch.no_grad():
            module(tokens, module.init_state(1))

    print(f"{args.run.name}: {viewer.info['cell']}, {len(ids)} tokens, {torch.get_num_threads()} threads")
    rows = {
        "forward": median_ms(forward, args.repeats),
        "trace": median_ms(lambda: trace(viewer.model, text, viewer.limits), args.repeats),
    }
    with serving(viewer.app(), listening_socket("127.0.0.1", 0)) as url:
        size = len(post(url + "api/trace", {"text": text}))
        rows["endpoint"] = median_ms(lambda: post(url + "api/trace", {"text": text}), args.repeats)
        page = browser_row(url, text, len(ids), args.repeats)
    if page is not None:
        rows["page"], rows["  of which decode"], rows["  of which render"] = (
            page["total"],
            page["decode_ms"],
            page["render_ms"],
        )
    print(f"{'part':<20}{'ms':>10}{'x forward':>12}")
    for name, ms in rows.items():
        print(f"{name:<20}{ms:>10.1f}{ms / rows['forward']:>12.1f}")
    print(f"response: {size / 1e6:.2f} MB of JSON")
    live = rows.get("page", rows["endpoint"])
    verdict = "met" if live < GOAL_MS else "NOT met"
    print(f"goal: traced and drawn in < {GOAL_MS:.0f} ms: {live:.0f} ms, {verdict}")


if __name__ == "__main__":
    main()
