"""Reading a secret for an operator command without it touching a command line.

A password given as ``--password`` shows in ``ps`` and in the shell's history.
``uvox admin connector set-password`` and ``uvox admin trunk set-password`` (and
``uvox db reseal`` for the old key) read it here instead: typed twice at a hidden
prompt on a terminal, or one line from standard input otherwise (a pipe, a file,
a secret manager: ``vault read -field=pw ... | uvox admin trunk set-password t1``).
"""

from __future__ import annotations

import getpass
import sys


class NoSecret(ValueError):
    """Nothing usable was read."""


def read_secret(what: str, confirm: bool = True) -> str:
    """The secret: from a hidden prompt when standard input is a terminal (twice, when
    ``confirm``), else the first line of standard input without its line ending."""
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"{what}: ")
        if confirm and getpass.getpass(f"{what} again: ") != first:
            raise NoSecret(f"the two {what}s differ")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise NoSecret(f"no {what} on standard input")
    return line.rstrip("\r\n")
