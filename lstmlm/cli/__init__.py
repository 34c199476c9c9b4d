"""The ``lstmlm`` command line: parse options, build the config, call the library, report.

``app`` holds the error policy; each command module registers its commands on it. None of
these modules imports torch, datasets or matplotlib at import time: commands import what
they use when they run.
"""

# Importing a command module registers its commands; --help lists them in this order.
from lstmlm.cli import train_command  # noqa: F401, I001
from lstmlm.cli import run_commands  # noqa: F401
from lstmlm.cli import inspect_command  # noqa: F401
from lstmlm.cli.app import app, os_error_line


def main() -> None:
    app()


__all__ = ["app", "main", "os_error_line"]
