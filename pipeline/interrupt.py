"""Ctrl-C that cannot be lost: our SIGINT handler records the request before it raises.

A library that swallows every exception (a bare ``except:`` around an import, say) can catch the
``KeyboardInterrupt`` our handler raises; the run then went on training (seen in a test under load: SIGINT one
second after "== training", and 60 s later the epochs were still running). Long loops call ``check()`` so that a
recorded request ends the run at the next step whatever happened to the first exception.
"""
from __future__ import annotations


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised by our own SIGINT handler. A plain KeyboardInterrupt that passes through code run by
    ``PyRun_*`` (some libraries do) marks the interpreter, which then ends itself by SIGINT however the exception
    was handled (exit status -2, seen in tests); CPython checks for that exact type, so a subclass avoids it."""


requested = False


def handler(signum, frame):
    global requested
    requested = True
    raise Interrupted()


def check() -> None:
    """Raise ``Interrupted`` when Ctrl-C was pressed, even if the exception raised then was swallowed."""
    if requested:
        raise Interrupted()
