"""Errors raised on bad user input."""

from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """Bad input: the message names the offending file (or config key) and the problem.

    ``str(error)`` is a single line of the form ``"<source>: <problem>"``, so that the
    workflow can print it as-is and users see at once what to fix.
    """

    def __init__(self, source: str | PathLike[str], problem: str) -> None:
        self.source = str(source)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.source}: {self.problem}")
