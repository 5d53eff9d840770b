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

#: True in a worker process of :func:`run_in_worker` (its stderr is shared).
_IN_WORKER = False


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
        shared = _IN_WORKER or threading.current_thread() is not threading.main_thread()
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


def _job_status(job: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Run ``job(*args, **kwargs)`` in a forked process: 0 done, 1 bad input
    (`JobFailed`, its error line already printed), 2 any other exception (its
    traceback on stderr)."""
    try:
        job(*args, **kwargs)
    except JobFailed:
        return 1
    except BaseException:
        traceback.print_exc()
        return 2
    return 0


def _raise_for_status(name: str, status: int, failure: str) -> None:
    """In the process that waited for a job's status: `JobFailed` for 1, and
    ``RuntimeError(f"{name}: {failure}")`` for any other status but 0."""
    if status == 1:
        raise JobFailed(f"{name}: bad input (see the error line above)")
    if status != 0:
        raise RuntimeError(f"{name}: {failure}")


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
                if os.getppid() == parent:  # else the parent died before prctl
                    _fresh_std_streams()
                    status = _job_status(adapter, *args, **kwargs)
            finally:
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wait_status)
        _raise_for_status(
            adapter.__name__, status, f"the job's process failed (status {status})"
        )

    return run


# ------------------------------------------------ long-lived worker processes

#: Whether :func:`run_in_worker` hands jobs to worker processes (set when the
#: workflow is read, by :func:`use_workers`).
_WORKERS_ENABLED = False

#: Fewest per-scan jobs for which a local run uses worker processes. Measured on
#: 2 cores (extraction of the synthetic scans, ``--scheduler-subsample 16``):
#: 40 scans took 26.2-28.3 s in threads and 27.5-29.9 s in workers (each worker's
#: first scan builds its own atlas plan in fresh memory); 200 scans took 152.7 s in
#: threads and 135.6 s in workers, where the Snakemake process's own bookkeeping
#: competes with the jobs' threads for the interpreter lock.
WORKER_MIN_JOBS = 100


def use_workers(main_process: bool, cores: int | None, n_jobs: int) -> bool:
    """Whether :func:`run_in_worker` uses worker processes; sets it and returns it.

    On for the main Snakemake process of a run given more than one core (a local
    run, whose jobs run side by side in its threads) with at least
    :data:`WORKER_MIN_JOBS` per-scan jobs (``n_jobs``); off in a cluster job's
    process (``main_process`` false: it runs its one job inline), with one core,
    and for fewer jobs.
    """
    global _WORKERS_ENABLED
    _WORKERS_ENABLED = (
        bool(main_process) and (cores or 1) > 1 and n_jobs >= WORKER_MIN_JOBS
    )
    return _WORKERS_ENABLED


class _Worker:
    """A process forked once that runs the jobs sent over a pipe, one at a time."""

    def __init__(self) -> None:
        from multiprocessing.connection import Pipe

        parent_end, child_end = Pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (measured by its effects)
            try:
                _die_with_parent()
                if os.getppid() == parent:
                    _fresh_std_streams()
                    # the other jobs' log handlers, whose threads are not here
                    logging.getLogger().handlers.clear()
                    parent_end.close()
                    _serve(child_end)
            finally:
                os._exit(0)
        child_end.close()
        self.pid = pid
        self.connection = parent_end

    def call(self, message: tuple) -> int:
        """Send one job; its status (0 done, 1 bad input, 2 another failure)."""
        self.connection.send(message)
        return int(self.connection.recv())

    def alive(self) -> bool:
        """Whether the process still runs (a worker killed while idle does not)."""
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def stop(self) -> None:
        """Close the pipe (the worker then exits) and reap the process."""
        self.connection.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:  # pragma: no cover - already reaped
            pass


def _serve(connection: Any) -> None:  # pragma: no cover - runs in the worker
    """The worker's loop: run each job received, until the pipe closes."""
    global _IN_WORKER
    _IN_WORKER = True  # stderr is the Snakemake process's, shared with its jobs
    while True:
        try:
            task, args, kwargs, log = connection.recv()
        except EOFError:
            return
        connection.send(_job_status(run_job, task, *args, log=log, **kwargs))


def _plain(value: Any) -> Any:
    """``value`` with Snakemake's path strings as plain ``str`` (to pickle them)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


_IDLE_WORKERS: list[_Worker] = []
_WORKERS_LOCK = threading.Lock()


def run_in_worker(
    task: Callable[..., Any], *args: Any, log: PathLike | None = None, **kwargs: Any
) -> None:
    """:func:`run_job` in a long-lived worker process, when workers are on.

    A worker is forked when no idle one is left (so there are at most as many as
    jobs run at once), runs one job at a time and keeps its imports, atlas plans
    and memory from one job to the next; it exits with the workflow. ``task`` and
    its arguments are pickled (module-level functions, plain values). The error
    contract is :func:`run_job`'s: `JobFailed` after a bad input's error line,
    ``RuntimeError`` for any other failure (its traceback in the job's log).
    """
    if not _WORKERS_ENABLED or not hasattr(os, "fork"):
        run_job(task, *args, log=log, **kwargs)
        return
    worker = None
    while worker is None:
        with _WORKERS_LOCK:
            worker = _IDLE_WORKERS.pop() if _IDLE_WORKERS else None
        if worker is None:
            worker = _Worker()
        elif not worker.alive():  # killed while idle: the job has not started
            worker.connection.close()
            worker = None
    name = getattr(task, "__name__", repr(task))
    try:
        status = worker.call((task, _plain(args), _plain(kwargs), _plain(log)))
    except (EOFError, OSError) as error:
        worker.stop()
        raise RuntimeError(f"{name}: its worker process ended ({error!r})") from None
    with _WORKERS_LOCK:
        _IDLE_WORKERS.append(worker)
    _raise_for_status(name, status, "failed in its worker process (see its log)")


def stop_workers() -> None:
    """Stop the idle worker processes (they also end with the workflow's process)."""
    with _WORKERS_LOCK:
        workers = list(_IDLE_WORKERS)
        _IDLE_WORKERS.clear()
    for worker in workers:
        worker.stop()
