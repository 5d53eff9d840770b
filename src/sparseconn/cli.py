"""How the workflow reports bad input and runs the package's tasks.

Shared by the ``Snakefile`` (config and sheet checks) and by every script under
``scripts/`` (one per rule): a bad input ends the process with exactly one line
``sparseconn: error: <file>: <problem>`` on stderr (and in the job's log) and exit
status 1. This module does not import Snakemake.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from sparseconn.errors import InputError
from sparseconn.io import PathLike

#: Prefix of the one-line error message.
ERROR_PREFIX = "sparseconn: error: "

logger = logging.getLogger("sparseconn")

T = TypeVar("T")


def _report_error(message: str, to_log: bool, shared: bool = False) -> None:
    """Write ``sparseconn: error: <message>`` (one line) to stderr, and the log.

    ``shared``: stderr is shared with Snakemake's own threads (a job in a thread),
    which may have written part of a line; a newline first ends it, so that the
    error always starts a line of its own.
    """
    text = " ".join(str(message).split())
    if to_log:
        logger.error("error: %s", text)  # logged as "sparseconn: error: ..."
    _write_line(f"{chr(10) if shared else ''}{ERROR_PREFIX}{text}\n")


def fail(message: str) -> NoReturn:
    """Print ``sparseconn: error: <message>`` to stderr and the log; exit 1."""
    _report_error(message, to_log=_logging_to_file())
    sys.exit(1)


@contextlib.contextmanager
def exit_on_input_error() -> Iterator[None]:
    """Turn an `InputError` raised inside the block into :func:`fail`."""
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


def _logging_to_file() -> bool:
    """Whether :func:`setup_logging` sent records to a log file."""
    return any(
        isinstance(handler, logging.FileHandler)
        for handler in logging.getLogger().handlers
    )


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_handler(log_path: PathLike | None) -> logging.Handler:
    """A handler writing to ``log_path`` (overwritten), or stderr when None."""
    handler: logging.Handler = (
        logging.FileHandler(log_path, mode="w", encoding="utf-8")
        if log_path is not None
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def setup_logging(log_path: PathLike | None) -> None:
    """Send the package's log records (and warnings) to ``log_path``."""
    logging.basicConfig(
        level=logging.INFO, handlers=[_log_handler(log_path)], force=True
    )
    logging.captureWarnings(True)


def run_task(
    task: Callable[..., T], *args: Any, log: PathLike | None = None, **kwargs: Any
) -> T:
    """Run ``task(*args, **kwargs)`` as one workflow job.

    Logs to ``log``; an `InputError` ends the process with one error line
    (see :func:`fail`); any other exception is logged with its traceback and
    propagates.
    """
    setup_logging(log)
    name = getattr(task, "__name__", repr(task))
    logger.info("%s: started", name)
    start = time.perf_counter()
    with exit_on_input_error():
        try:
            result = task(*args, **kwargs)
        except InputError:
            raise
        except Exception:
            logger.exception("%s: failed", name)
            raise
    logger.info("%s: done in %.2f s", name, time.perf_counter() - start)
    return result


class JobFailed(RuntimeError):
    """A job run inside the Snakemake process failed (its error is printed)."""


class _ThisThread(logging.Filter):
    """Pass the records of one thread only (jobs share the Snakemake process)."""

    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


def _write_line(line: str) -> None:
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


def run_job(
    task: Callable[..., T], *args: Any, log: PathLike | None = None, **kwargs: Any
) -> T:
    """Run ``task(*args, **kwargs)`` as a job inside the Snakemake process.

    For rules with a ``run:`` block: locally, Snakemake runs them in threads of
    its own process, which saves each job the second or so a new Python process
    spends importing numpy, scipy and pandas. The job's log records (and
    warnings) go to ``log`` only; an `InputError` prints the one error line of
    :func:`fail` and raises `JobFailed`, so that Snakemake fails the job (and
    removes its outputs) without a second copy of the message.
    """
    root = logging.getLogger()
    handler = _log_handler(log)
    handler.addFilter(_ThisThread())
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    name = getattr(task, "__name__", repr(task))
    logger.info("%s: started", name)
    start = time.perf_counter()
    try:
        result = task(*args, **kwargs)
        logger.info("%s: done in %.2f s", name, time.perf_counter() - start)
    except InputError as error:
        _report_error(str(error), to_log=True, shared=True)
        raise JobFailed(f"{name}: bad input (see the error line above)") from None
    except Exception:
        logger.exception("%s: failed", name)
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
    return result


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A Snakemake input entry as a list of paths (a lone string is one path)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]
