"""The page of ``lstmlm view``: one HTML string, its style, code and data inline.

``assets/page.html`` holds three placeholders: the style (every ``assets/*.css``), the
code (every ``assets/*.js``, in name order, concatenated into one script) and the
bootstrap object (docs/view.md): the run's info, and for a static page the trace and
the scored pairs it shows. Nothing on the page is fetched from elsewhere, so a static
page opens from disk offline; the server sends the same page with ``mode: "server"``.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from lstmlm.api import Model
from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic
from lstmlm.runs.folder import refuse_run_file
from lstmlm.view import payloads
from lstmlm.view.payloads import Limits

STYLE, SCRIPT, BOOTSTRAP = "/*LSTMLM_STYLE*/", "/*LSTMLM_SCRIPT*/", "LSTMLM_BOOTSTRAP"
#: in every page's <head>: ``--out`` replaces a file only when it is a page written here
GENERATOR = '<meta name="generator" content="lstmlm view">'
HEAD_BYTES = 4096


def _assets(suffix: str) -> str:
    folder = resources.files("lstmlm.view").joinpath("assets")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(suffix)), key=lambda f: f.name)
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def bootstrap_json(bootstrap: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element or change how it is read: every ``<`` is
    written ``\\u003c`` (no ``</script>``, no ``<!--``), which JSON reads back as ``<``."""
    return json.dumps(bootstrap, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render(bootstrap: dict[str, Any]) -> str:
    template = resources.files("lstmlm.view").joinpath("assets", "page.html").read_text(encoding="utf-8")
    for placeholder in (STYLE, SCRIPT, BOOTSTRAP, GENERATOR):
        if template.count(placeholder) != 1:
            raise RuntimeError(f"assets/page.html must hold {placeholder} once")
    filling = {STYLE: _assets(".css"), SCRIPT: _assets(".js"), BOOTSTRAP: bootstrap_json(bootstrap)}
    # one pass over the template: text inside what is filled in (a user's text holding
    # "/*LSTMLM_SCRIPT*/", a "\\1" or "$") is never read as a placeholder or a pattern
    placeholders = re.compile("|".join(re.escape(name) for name in filling))
    return placeholders.sub(lambda found: filling[found.group(0)], template)


def server_page(model: Model, info: dict[str, Any], text: str, limits: Limits) -> str:
    """The page the server sends: the run's info, and the trace of ``text`` when one is given."""
    trace = payloads.trace(model, text, limits) if text.strip() else None
    return render({"mode": "server", "info": info, "text": text, "trace": trace, "pairs": []})


def static_page(model: Model, info: dict[str, Any], text: str, limits: Limits) -> str:
    """One self-contained page: ``text``'s trace and the demo pairs, scored."""
    trace = payloads.trace(model, text, limits)
    pairs = payloads.scored_demo_pairs(model, limits)
    return render({"mode": "static", "info": info, "text": text, "trace": trace, "pairs": pairs})


def check_out(path: Path) -> None:
    """One line unless ``path`` is a new .html file or a page an earlier ``--out`` wrote."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise LstmlmError(f"--out must name an .html file (got {path})")
    if path.is_dir():
        raise LstmlmError(f"--out is a folder, not a file: {path}")
    if not path.parent.is_dir():
        raise LstmlmError(f"--out: folder not found: {path.parent}")
    refuse_run_file(path, "--out")
    if path.exists() and not _ours(path):
        raise LstmlmError(
            f"--out {path} is already there and is not a page lstmlm view wrote; "
            "remove it or choose another name"
        )


def _ours(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return False
    return GENERATOR.encode() in head


def write_static_page(page: str, path: Path) -> None:
    check_out(path)
    write_atomic(path, page.encode("utf-8"))
