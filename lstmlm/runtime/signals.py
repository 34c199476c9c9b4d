"""Stopping on SIGINT/SIGTERM: at once outside the training loop, after a checkpoint inside it.

No torch here, so the CLI imports this cheaply.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_SIGNALS: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """Training stopped by a signal after saving; ``exit_code`` is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, exit_code: int, step: int, run_dir: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved in {run_dir} (--resume continues)")
        self.exit_code = exit_code


class SignalExit(BaseException):
    """SIGINT or SIGTERM outside the training loop (data preparation, the final test): stop now.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on the
    way (data loading, tokenizer training, encoding) can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = EXIT_SIGNALS[signum]


@contextlib.contextmanager
def signals_stop_at_once() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise ``SignalExit`` (``StopRequest`` takes over in the loop)."""

    def stop(signum: int, frame: Any) -> None:
        raise SignalExit(signum)

    previous: dict[int, Any] = {}
    for sig in EXIT_SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StopRequest:
    """SIGINT/SIGTERM set a flag checked between windows; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> StopRequest:
        for sig in EXIT_SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
