"""``rating-engine``: the command line. One module per command, each with its parser
(``register``) beside what it runs; `main` assembles them. Each command parses, calls one
module of the engine, prints.

A user's mistake (bad arguments, a bad catalog, a missing file) is a message and a non-zero
exit, never a traceback.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
