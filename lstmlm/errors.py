"""The one exception type users see: a single line, no traceback."""


class LstmlmError(Exception):
    """A user-facing error (bad input, bad file, impossible option combination).

    The CLI prints ``str(error)`` as one red line on stderr and exits 1.
    """
