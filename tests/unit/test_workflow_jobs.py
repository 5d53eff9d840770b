"""One-line errors and the job runner of every rule (sparseconn.workflow)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import jsonschema
import pytest

from sparseconn.errors import InputError
from sparseconn.workflow import jobs
from sparseconn.workflow.adapters import as_list
from sparseconn.workflow.errors import exit_on_input_error, schema_error
from sparseconn.workflow.jobs import (
    JobFailed,
    in_child,
    run_in_worker,
    run_job,
    run_script,
)


@pytest.fixture(autouse=True)
def _restore_logging():
    """The runner sets the root logger's level: put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def bad_input(path: str) -> None:
    raise InputError(path, "truncated gzip\nstream")


class FakeSnakemake:
    """The object Snakemake gives a script (the names an adapter reads)."""

    def __init__(self, log: Path) -> None:
        self.input, self.output, self.params, self.wildcards = [], [], {}, {}
        self.log, self.threads, self.config = [str(log)], 1, {}


def bad_input_adapter(input, output, params, wildcards, log, threads=1, config=None):
    run_job(bad_input, "data/f.nii.gz", log=log[0])


def test_input_error_exits_with_one_line(tmp_path: Path, capsys) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exit_info:
        run_script(bad_input_adapter, FakeSnakemake(log))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == "sparseconn: error: data/f.nii.gz: truncated gzip stream\n"
    assert "sparseconn: error: data/f.nii.gz: truncated gzip stream" in log.read_text()


def test_success_is_logged(tmp_path: Path, capsys) -> None:
    log = tmp_path / "job.log"

    def task(a, *, b):
        logging.getLogger("sparseconn.test").info("working on %s", a)
        return a + b

    assert run_job(task, 1, b=2, log=log) == 3
    text = log.read_text()
    assert "task: started" in text
    assert "working on 1" in text
    assert "task: done in" in text
    assert capsys.readouterr().err == ""


def test_other_errors_propagate_with_traceback_in_log(tmp_path: Path) -> None:
    log = tmp_path / "job.log"

    def broken():
        raise RuntimeError("bug")

    def broken_adapter(input, output, params, wildcards, log, threads, config):
        run_job(broken, log=log[0])

    with pytest.raises(RuntimeError, match="bug"):
        run_script(broken_adapter, FakeSnakemake(log))
    assert "Traceback" in log.read_text()


def test_exit_on_input_error_without_log(capsys) -> None:
    with pytest.raises(SystemExit), exit_on_input_error():
        raise InputError("config", "unknown key 'x'")
    assert capsys.readouterr().err == "sparseconn: error: config: unknown key 'x'\n"


def validation_failure(schema: dict, instance: object, wrapper: str) -> Exception:
    """An error raised while handling a jsonschema error, as Snakemake's validate."""
    try:
        try:
            jsonschema.validate(instance, schema)
        except jsonschema.ValidationError:
            raise RuntimeError(wrapper)  # noqa: B904 (chained implicitly, as Snakemake)
    except RuntimeError as error:
        return error
    raise AssertionError("the instance is valid")


def test_schema_error_for_config() -> None:
    schema = {
        "type": "object",
        "properties": {"extraction": {"properties": {"high_pass": {"minimum": 0}}}},
    }
    error = validation_failure(
        schema, {"extraction": {"high_pass": -1}}, "Error validating config file."
    )
    assert str(schema_error("c.yaml", error)) == (
        "c.yaml: extraction.high_pass: -1 is less than the minimum of 0"
    )


def test_schema_error_for_a_table_row() -> None:
    schema = {"properties": {"t_r": {"maximum": 60}}}
    error = validation_failure(
        schema, {"t_r": 100}, "Error validating row 1 of data frame."
    )
    assert str(schema_error("s.tsv", error, ["01", "02"])) == (
        "s.tsv: subject '02': t_r: 100 is greater than the maximum of 60"
    )
    assert str(schema_error("s.tsv", error)).startswith("s.tsv: row 1: t_r: ")


def test_schema_error_without_detail() -> None:
    assert str(schema_error("x", ValueError("odd\nthing"))) == "x: odd thing"


def test_as_list() -> None:
    assert as_list(None) == []
    assert as_list("a.tsv") == ["a.tsv"]
    assert as_list(("a.tsv", Path("b.tsv"))) == ["a.tsv", "b.tsv"]


def _log_twice(name: str, barrier) -> str:
    logger = logging.getLogger("sparseconn.test")
    logger.info("%s first", name)
    barrier.wait(timeout=10)
    logger.info("%s second", name)
    return name


def test_run_job_keeps_each_threads_records_in_its_own_log(tmp_path: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    before = list(logging.getLogger().handlers)
    barrier = threading.Barrier(2)
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(run_job, _log_twice, name, barrier, log=path)
            for name, path in logs.items()
        ]
        assert [f.result() for f in futures] == ["a", "b"]
    for name, path in logs.items():
        text = path.read_text()
        other = "b" if name == "a" else "a"
        assert f"{name} first" in text and f"{name} second" in text
        assert f"{other} first" not in text and f"{other} second" not in text
        assert "_log_twice: done in" in text
    # the handlers are gone once the jobs end
    assert logging.getLogger().handlers == before


def test_run_job_turns_bad_input_into_one_line_and_job_failed(
    tmp_path: Path, capfd
) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(JobFailed) as raised:
        run_job(bad_input, "data/x.nii.gz", log=log)
    assert "sparseconn: error" not in str(raised.value)
    err = capfd.readouterr().err.splitlines()
    assert err == ["sparseconn: error: data/x.nii.gz: truncated gzip stream"]
    assert "data/x.nii.gz: truncated gzip stream" in log.read_text()


def test_run_job_lets_other_errors_through_with_their_traceback_logged(
    tmp_path: Path,
) -> None:
    def broken() -> None:
        raise ZeroDivisionError("boom")

    log = tmp_path / "job.log"
    with pytest.raises(ZeroDivisionError):
        run_job(broken, log=log)
    assert "Traceback" in log.read_text() and "boom" in log.read_text()


def test_run_job_in_a_thread_starts_its_error_line_on_a_line_of_its_own(
    tmp_path: Path, capfd
) -> None:
    """In a thread, stderr is shared with Snakemake's: a newline ends its line."""
    from concurrent.futures import ThreadPoolExecutor

    log = tmp_path / "job.log"
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run_job, bad_input, "data/x.nii.gz", log=log)
        with pytest.raises(JobFailed):
            future.result()
    assert capfd.readouterr().err == (
        "\nsparseconn: error: data/x.nii.gz: truncated gzip stream\n"
    )


def test_run_script_passes_every_name_of_the_job_to_the_adapter(tmp_path) -> None:
    seen = []

    def adapter(*args):
        seen.append(args)

    job = FakeSnakemake(tmp_path / "job.log")
    run_script(adapter, job)
    assert seen == [
        (job.input, job.output, job.params, job.wildcards, job.log, 1, job.config)
    ]


# ------------------------------------------------------------ forked jobs


@in_child
def forked_writer(input, output, params, wildcards, log, threads=1, config=None):
    """Writes its pid (a child's) to output[0]."""

    def write(path):
        Path(path).write_text(str(os.getpid()))

    run_job(write, output[0], log=log[0])


@in_child
def forked_bad_input(input, output, params, wildcards, log, threads=1, config=None):
    run_job(bad_input, "data/f.nii.gz", log=log[0])


@in_child
def forked_broken(input, output, params, wildcards, log, threads=1, config=None):
    run_job(lambda: 1 / 0, log=log[0])


def test_in_child_runs_the_adapter_in_another_process(tmp_path: Path) -> None:
    out, log = tmp_path / "out.txt", tmp_path / "job.log"
    forked_writer([], [str(out)], {}, {}, [str(log)])
    assert int(out.read_text()) != os.getpid()
    assert "done in" in log.read_text()
    assert forked_writer.__name__ == "forked_writer"


def test_in_child_bad_input_is_one_line_and_job_failed(tmp_path: Path, capfd) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(JobFailed, match="forked_bad_input: bad input"):
        forked_bad_input([], [], {}, {}, [str(log)])
    err = capfd.readouterr().err
    assert err.count("sparseconn: error:") == 1
    assert "data/f.nii.gz: truncated gzip stream" in err
    assert "truncated gzip stream" in log.read_text()


def test_in_child_other_errors_fail_the_job_with_their_traceback(
    tmp_path: Path,
) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(RuntimeError, match="forked_broken: the job's process failed"):
        forked_broken([], [], {}, {}, [str(log)])
    assert "ZeroDivisionError" in log.read_text()


def test_in_child_works_from_a_thread_while_others_hold_stderr(tmp_path: Path) -> None:
    # Snakemake forks from its job threads while its main thread logs: the child
    # must not wait for a lock another thread held at the fork.
    stop = threading.Event()

    def chatter():
        while not stop.is_set():
            sys.stderr.write("")

    talker = threading.Thread(target=chatter)
    talker.start()
    try:
        outs = [tmp_path / f"out{i}.txt" for i in range(20)]
        workers = [
            threading.Thread(
                target=forked_writer,
                args=([], [str(out)], {}, {}, [str(tmp_path / f"{i}.log")]),
            )
            for i, out in enumerate(outs)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert all(out.is_file() for out in outs)
    finally:
        stop.set()
        talker.join()


def test_a_child_forked_while_another_thread_holds_the_plans_lock_can_take_it(
    tmp_path: Path,
) -> None:
    from sparseconn import signals

    out, log = tmp_path / "out.txt", tmp_path / "job.log"

    def take_plans_lock() -> None:
        with signals._PLANS.lock:
            Path(out).write_text("taken")

    @in_child
    def forked(input, output, params, wildcards, log, **_):
        run_job(take_plans_lock, log=log[0])

    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with signals._PLANS.lock:
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        holding.wait(10)
        worker = threading.Thread(
            target=forked, args=([], [], {}, {}, [str(log)]), daemon=True
        )
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "the child waits for a lock held at the fork"
        assert out.read_text() == "taken"
    finally:
        release.set()
        thread.join()


# ------------------------------------------------ long-lived worker processes


@pytest.mark.parametrize(
    ("main_process", "cores", "n_jobs", "expected"),
    [
        (True, 2, jobs.WORKER_MIN_JOBS, True),
        (True, 16, 10_000, True),
        (True, 2, jobs.WORKER_MIN_JOBS - 1, False),
        (True, 1, 10_000, False),
        (True, None, 10_000, False),
        (False, 2, 10_000, False),  # a cluster job's process: its one job inline
    ],
)
def test_use_workers_only_for_large_local_runs(
    main_process, cores, n_jobs, expected, monkeypatch
) -> None:
    monkeypatch.setattr(jobs, "_WORKERS_ENABLED", False)
    assert jobs.use_workers(main_process, cores, n_jobs) is expected
    assert jobs._WORKERS_ENABLED is expected


@pytest.fixture
def workers_on(monkeypatch):
    """Worker processes on for the test; every worker stopped after it."""
    monkeypatch.setattr(jobs, "_WORKERS_ENABLED", True)
    yield
    jobs.stop_workers()


def write_pid(path: str) -> None:
    """Appends this process's pid to ``path``."""
    with open(path, "a") as stream:
        stream.write(f"{os.getpid()}\n")


def divide_by_zero() -> None:
    1 / 0  # noqa: B018


def kill_myself() -> None:
    os.kill(os.getpid(), 9)


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def test_run_in_worker_inline_when_workers_are_off(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(jobs, "_WORKERS_ENABLED", False)
    out = tmp_path / "pids"
    run_in_worker(write_pid, str(out), log=tmp_path / "job.log")
    assert pids(out) == [os.getpid()]


def test_a_worker_runs_job_after_job_in_one_other_process(
    tmp_path: Path, workers_on
) -> None:
    out = tmp_path / "pids"
    for index in range(3):
        log = tmp_path / f"{index}.log"
        run_in_worker(write_pid, str(out), log=log)
        assert "write_pid: done in" in log.read_text()
    first, *others = pids(out)
    assert first != os.getpid()
    assert others == [first, first]


def test_jobs_at_once_get_a_worker_each(tmp_path: Path, workers_on) -> None:
    out = [tmp_path / f"pids{index}" for index in range(2)]
    start = threading.Barrier(2)

    def job(index: int) -> None:
        start.wait()
        for _ in range(3):
            run_in_worker(write_pid, str(out[index]), log=tmp_path / f"{index}.log")

    threads = [threading.Thread(target=job, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    seen = {pid for path in out for pid in pids(path)}
    assert os.getpid() not in seen
    assert 1 <= len(seen) <= 2  # never more workers than jobs at once
    assert len(jobs._IDLE_WORKERS) == len(seen)


def test_worker_bad_input_is_one_line_and_job_failed(
    tmp_path: Path, capfd, workers_on
) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(JobFailed, match="bad_input: bad input"):
        run_in_worker(bad_input, "data/f.nii.gz", log=log)
    # stderr is shared with the Snakemake process: the line starts a line
    assert capfd.readouterr().err == (
        "\nsparseconn: error: data/f.nii.gz: truncated gzip stream\n"
    )
    assert "truncated gzip stream" in log.read_text()
    out = tmp_path / "pids"  # the worker goes on with the next job
    run_in_worker(write_pid, str(out), log=tmp_path / "next.log")
    assert pids(out)[0] != os.getpid()


def test_worker_other_errors_fail_the_job_with_their_traceback(
    tmp_path: Path, workers_on
) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(RuntimeError, match="divide_by_zero: failed in its worker"):
        run_in_worker(divide_by_zero, log=log)
    assert "ZeroDivisionError" in log.read_text()


def test_a_worker_killed_during_a_job_fails_it_and_the_next_job_gets_another(
    tmp_path: Path, workers_on
) -> None:
    with pytest.raises(RuntimeError, match="kill_myself: its worker process ended"):
        run_in_worker(kill_myself, log=tmp_path / "job.log")
    assert jobs._IDLE_WORKERS == []
    out = tmp_path / "pids"
    run_in_worker(write_pid, str(out), log=tmp_path / "next.log")
    assert pids(out)[0] != os.getpid()


def test_a_worker_killed_while_idle_is_replaced(tmp_path: Path, workers_on) -> None:
    out = tmp_path / "pids"
    run_in_worker(write_pid, str(out), log=tmp_path / "1.log")
    (first,) = pids(out)
    os.kill(first, 9)
    while jobs._IDLE_WORKERS[0].alive():
        pass
    run_in_worker(write_pid, str(out), log=tmp_path / "2.log")
    assert pids(out)[1] not in (first, os.getpid())


def test_extraction_in_a_worker_writes_the_same_bytes(tmp_path, rng, monkeypatch):
    from sparseconn.regions import AtlasSpec
    from sparseconn.steps.subject import run_extract_timeseries
    from tests.helpers import make_func, make_maps

    func, maps = tmp_path / "func.nii.gz", tmp_path / "maps.nii.gz"
    make_func(func, rng, n_volumes=60)
    make_maps(maps, rng)

    def outputs(folder: Path) -> list[Path]:
        return [folder / name for name in ("ts.tsv", "ts.json", "hv.tsv", "r.tsv")]

    for folder, enabled in ((tmp_path / "inline", False), (tmp_path / "worker", True)):
        folder.mkdir()
        monkeypatch.setattr(jobs, "_WORKERS_ENABLED", enabled)
        tsv, sidecar, high_variance, regions = outputs(folder)
        run_in_worker(
            run_extract_timeseries,
            func,
            [AtlasSpec("test", str(maps))],
            [],
            [tsv],
            [sidecar],
            high_variance,
            [regions],
            subject="01",
            log=folder / "job.log",
        )
    jobs.stop_workers()
    for inline, worker in zip(
        outputs(tmp_path / "inline"), outputs(tmp_path / "worker"), strict=True
    ):
        # the sidecar names the high-variance confounds' file, in its own folder
        written = inline.read_bytes().replace(b"/inline/", b"/worker/")
        assert written == worker.read_bytes(), inline.name
