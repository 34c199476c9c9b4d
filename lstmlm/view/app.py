"""``lstmlm view`` from start to stop: load the run, find its units, then serve or write the page."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lstmlm.api import Model, load
from lstmlm.data.direction import require_forward
from lstmlm.view import page, payloads, server
from lstmlm.view.payloads import Limits
from lstmlm.view.server import serve, url_of

__all__ = ["Viewer", "serve", "url_of"]


@dataclass
class Viewer:
    """A loaded run and what every page of it shows: its info, with the agreement units."""

    model: Model
    info: dict[str, Any]
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def open(
        cls, run_dir: str | os.PathLike, *, device: str | torch.device = "auto", best: bool = True
    ) -> Viewer:
        model = load(run_dir, "best" if best else "last", device)
        require_forward(model.run.config.model.direction, "view")  # traces read left to right
        limits = Limits()
        return cls(model, payloads.info(model, limits, payloads.agreement_units(model)), limits)

    def page(self, text: str) -> str:
        """The page the server sends (``text``'s trace inside when there is one)."""
        return page.server_page(self.model, self.info, text, self.limits)

    def write_page(self, text: str, path: Path) -> None:
        page.write_static_page(page.static_page(self.model, self.info, text, self.limits), path)

    def app(self, text: str = "") -> Any:
        """The ASGI app (Starlette): for ``serve``, tests, or any ASGI server."""
        return server.create_app(self.model, self.info, self.page(text), self.limits)

    def listen(self, host: str, port: int) -> socket.socket:
        return server.listening_socket(host, port)
