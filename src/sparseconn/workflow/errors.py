"""How the workflow reports bad input: one line, ``sparseconn: error: ...``.

The contract, for a bad config or sheet found when the workflow is read
(:func:`exit_on_input_error`) as for a bad input found by a job
(:func:`sparseconn.workflow.jobs.run_job`): exactly one line
``sparseconn: error: <file or config key>: <problem>`` on stderr (and in the
job's log), and a non-zero exit status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from sparseconn.errors import InputError

#: Prefix of the one-line error message.
ERROR_PREFIX = "sparseconn: error: "

logger = logging.getLogger("sparseconn")


def write_line(line: str) -> None:
    """Write ``line`` to stderr in one system call when stderr is a file.

    Jobs in threads and Snakemake share stderr; ``print()`` writes a text and its
    newline apart, so another writer's text could land between them.
    """
    sys.stderr.flush()
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        sys.stderr.write(line)
        sys.stderr.flush()
        return
    os.write(descriptor, line.encode())


def report_error(message: str, to_log: bool, shared: bool = False) -> None:
    """Write ``sparseconn: error: <message>`` (one line) to stderr, and the log.

    ``shared``: stderr is shared with Snakemake's own threads (a job in a thread),
    which may have written part of a line; a newline first ends it, so that the
    error always starts a line of its own.
    """
    text = " ".join(str(message).split())
    if to_log:
        logger.error("error: %s", text)  # logged as "sparseconn: error: ..."
    write_line(f"{chr(10) if shared else ''}{ERROR_PREFIX}{text}\n")


def fail(message: str) -> NoReturn:
    """Print ``sparseconn: error: <message>`` to stderr; exit 1."""
    report_error(message, to_log=False)
    sys.exit(1)


@contextlib.contextmanager
def exit_on_input_error() -> Iterator[None]:
    """Turn an `InputError` raised inside the block into :func:`fail`.

    For the checks run when the workflow is read (config, subjects sheet).
    """
    try:
        yield
    except InputError as error:
        fail(str(error))


def schema_error(
    source: str, error: BaseException, row_names: Sequence[str] | None = None
) -> InputError:
    """One-line `InputError` from a failed JSON-schema validation.

    Snakemake's ``validate()`` raises its own error while handling the
    ``jsonschema`` ``ValidationError`` (attributes ``message`` and
    ``absolute_path``), which is found among the error's causes; for a table,
    the error's text names the row ("row <i>").

    Parameters
    ----------
    source : str
        Named in the error (the config or sheet file).
    error : BaseException
        The exception raised by the validation.
    row_names : sequence of str, optional
        Names of the validated table's rows (e.g. subject labels), used to
        replace "row <i>" by the row's name.
    """
    detail: Any = None
    cause: BaseException | None = error
    while cause is not None and detail is None:
        if hasattr(cause, "message") and hasattr(cause, "absolute_path"):
            detail = cause
        cause = cause.__cause__ or cause.__context__
    if detail is None:
        return InputError(source, str(error))
    where = ".".join(str(part) for part in detail.absolute_path)
    problem = f"{where}: {detail.message}" if where else detail.message
    row = re.search(r"\brow (\d+)\b", str(error))
    if row is not None:
        index = int(row.group(1))
        name = (
            f"subject {row_names[index]!r}"
            if row_names is not None and index < len(row_names)
            else f"row {index}"
        )
        problem = f"{name}: {problem}"
    return InputError(source, problem)
