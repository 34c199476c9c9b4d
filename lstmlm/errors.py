"""The one exception type users see: a single line, no traceback.

``LstmlmError`` is the base of every user error, from the command line and from Python:
``except lstmlm.LstmlmError`` catches them all. Its subclasses name the kinds a caller
may want to catch apart:

    LstmlmError
    ├── RunError         a run folder that cannot be read (no config, a damaged file, no weights)
    │   └── RunNotFound  no run folder at that path
    ├── BadArgument      an argument of the wrong type or out of range (a nan temperature,
    │                    k=-1, seed=2**70, weights="newest", a device that is not here)
    └── BadText          text that cannot be read: a missing file, bytes that are not
                         UTF-8, a str that is not valid Unicode (lone surrogates)
"""


class LstmlmError(Exception):
    """A user-facing error (bad input, bad file, impossible option combination).

    The CLI prints ``str(error)`` as one red line on stderr and exits 1.
    """


class RunError(LstmlmError):
    """A run folder that cannot be read: no ``config.json``, a damaged config, tokenizer or
    weights file, or no weights yet."""


class RunNotFound(RunError):
    """No run folder at the given path."""


class BadArgument(LstmlmError):
    """An argument of the wrong type or outside its range, or a device that does not exist here."""


class BadText(LstmlmError):
    """Text that cannot be read: a missing file, a file that is not UTF-8, or a ``str`` that is
    not valid Unicode (lone surrogates, which UTF-8 cannot encode)."""
