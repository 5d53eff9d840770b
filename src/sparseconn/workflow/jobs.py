"""The job runner: every rule's adapter runs its task through :func:`run_job`.

One error contract for every job, whether Snakemake runs it in a thread of its
own process (a ``run:`` block) or in a process of its own (a ``script:`` shim,
through :func:`run_script`): the job's log records (and warnings) go to its log
file; a bad input (`InputError`) prints the one line ``sparseconn: error: ...``
(see :mod:`sparseconn.workflow.errors`) and fails the job with `JobFailed`, which
a script turns into exit status 1; any other exception is logged with its
traceback and propagates.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sparseconn.errors import InputError
from sparseconn.io import PathLike
from sparseconn.workflow.errors import report_error

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

logger = logging.getLogger("sparseconn")

T = TypeVar("T")


class JobFailed(RuntimeError):
    """A job failed on bad input (its one error line is already printed)."""


class _ThisThread(logging.Filter):
    """Pass the records of one thread only (jobs share the Snakemake process)."""

    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


def _log_handler(log_path: PathLike | None) -> logging.Handler:
    """A handler writing to ``log_path`` (overwritten), or stderr when None."""
    handler: logging.Handler = (
        logging.FileHandler(log_path, mode="w", encoding="utf-8")
        if log_path is not None
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def run_job(
    task: Callable[..., T], *args: Any, log: PathLike | None = None, **kwargs: Any
) -> T:
    """Run ``task(*args, **kwargs)`` as one workflow job.

    The records of this thread (and its warnings) go to ``log`` only (stderr
    when None): locally, Snakemake runs the jobs of ``run:`` blocks in threads of
    its own process, which saves each job the second or so a new Python process
    spends importing numpy, scipy and pandas. An `InputError` prints the one error
    line (after a newline when stderr is shared with other threads, i.e. outside
    the main thread) and raises `JobFailed`, so that Snakemake fails the job (and
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
        shared = threading.current_thread() is not threading.main_thread()
        report_error(str(error), to_log=log is not None, shared=shared)
        raise JobFailed(f"{name}: bad input (see the error line above)") from None
    except Exception:
        logger.exception("%s: failed", name)
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
    return result


def run_script(adapter: Callable[..., Any], snakemake: Any) -> None:
    """Run a rule's adapter in a ``script:`` job (a process of its own).

    ``snakemake`` is the object Snakemake gives the script; `JobFailed` ends the
    process with exit status 1 (its error line is already printed).
    """
    try:
        adapter(
            snakemake.input,
            snakemake.output,
            snakemake.params,
            snakemake.wildcards,
            snakemake.log,
            snakemake.threads,
            snakemake.config,
        )
    except JobFailed:
        sys.exit(1)
