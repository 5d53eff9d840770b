"""The job runner: every rule's adapter runs its task through :func:`run_job`.

One error contract for every job, whether Snakemake runs it in a thread of its
own process (a ``run:`` block), in a child process forked from that thread (an
adapter decorated with :func:`in_child`), or in a process of its own (a
``script:`` shim, through :func:`run_script`): the job's log records (and
warnings) go to its log file; a bad input (`InputError`) prints the one line
``sparseconn: error: ...`` (see :mod:`sparseconn.workflow.errors`) and fails the
job with `JobFailed`, which a child or a script turns into exit status 1; any
other exception is logged with its traceback and propagates (exit status 2).
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import os
import signal
import sys
import threading
import time
import traceback
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


#: Modules a forked job may need, imported once in the parent before its first
#: fork (not when the workflow is read), so that no child imports them again.
CHILD_MODULES = (
    "sparseconn.covariance",
    "sparseconn.evaluation",
    "sparseconn.plotting",
    "sparseconn.steps.figures",
    "sparseconn.steps.group",
    "sparseconn.steps.science",
    "sklearn.covariance",
)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that forked it ends."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child may outlive a kill
        pass


def _fresh_std_streams() -> None:
    """New stdout/stderr objects: a lock another thread held at the fork would
    never be released in the child."""
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True
    )


def in_child(adapter: Callable[..., None]) -> Callable[..., None]:
    """Run a rule's adapter in a child process forked from the calling thread.

    For the Python-bound jobs (the group fits, the science check, the figures):
    in a thread of the Snakemake process they would hold the interpreter lock
    (and matplotlib is not thread-safe), while a new process (a ``script:``
    job) spends a second or more importing numpy, scipy, scikit-learn and
    matplotlib. A fork costs milliseconds and shares the parent's imported
    modules (:data:`CHILD_MODULES`). The child dies with the thread that forked
    it (a killed workflow leaves no job running); its exit status says how the
    adapter ended: 0 done, 1 bad input (its error line printed), 2 any other
    exception (logged with its traceback).
    """

    @functools.wraps(adapter)
    def run(*args: Any, **kwargs: Any) -> None:
        if not hasattr(os, "fork"):  # pragma: no cover - no fork (Windows)
            adapter(*args, **kwargs)
            return
        for module in CHILD_MODULES:
            importlib.import_module(module)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (measured by its effects)
            status = 2
            try:
                _die_with_parent()
                if os.getppid() != parent:  # the parent died before prctl
                    os._exit(status)
                _fresh_std_streams()
                adapter(*args, **kwargs)
                status = 0
            except JobFailed:
                status = 1
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wait_status)
        name = adapter.__name__
        if status == 1:
            raise JobFailed(f"{name}: bad input (see the error line above)")
        if status != 0:
            raise RuntimeError(f"{name}: the job's process failed (status {status})")

    return run
