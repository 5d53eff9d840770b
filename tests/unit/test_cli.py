"""One-line errors and running tasks, shared by the scripts (sparseconn.cli)."""

from __future__ import annotations

import logging
from pathlib import Path

import jsonschema
import pytest

from sparseconn.cli import as_list, exit_on_input_error, run_task, schema_error
from sparseconn.errors import InputError


@pytest.fixture(autouse=True)
def _restore_logging():
    """run_task reconfigures the root logger: put it back after each test."""
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


def test_input_error_exits_with_one_line(tmp_path: Path, capsys) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exit_info:
        run_task(bad_input, "data/f.nii.gz", log=log)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == "sparseconn: error: data/f.nii.gz: truncated gzip stream\n"
    assert "sparseconn: error: data/f.nii.gz: truncated gzip stream" in log.read_text()


def test_success_is_logged(tmp_path: Path, capsys) -> None:
    log = tmp_path / "job.log"

    def task(a, *, b):
        logging.getLogger("sparseconn.test").info("working on %s", a)
        return a + b

    assert run_task(task, 1, b=2, log=log) == 3
    text = log.read_text()
    assert "task: started" in text
    assert "working on 1" in text
    assert "task: done in" in text
    assert capsys.readouterr().err == ""


def test_other_errors_propagate_with_traceback_in_log(tmp_path: Path) -> None:
    log = tmp_path / "job.log"

    def broken():
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_task(broken, log=log)
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
