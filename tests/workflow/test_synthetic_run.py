"""The default synthetic workflow, run for real: complete, deterministic, idempotent.

Two subjects with fewer volumes keep it quick; everything else is the default.
Runs with ``--cores 1`` and ``--cores 2`` in two folders must write the same bytes,
a forced rerun must too, and a dry run after a complete run has nothing to do.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

SETTINGS = {"n_subjects": 2, "synthetic": {"n_volumes": 100}}


def _files(folder: Path) -> list[Path]:
    return sorted(
        path.relative_to(folder)
        for sub in ("results", "resources")
        for path in (folder / sub).rglob("*")
        if path.is_file()
    )


def _run(run_snakemake, folder: Path, *args: str):
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, *args, cwd=folder, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


ROOT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, run_snakemake):
    first = tmp_path_factory.mktemp("cores1")
    second = tmp_path_factory.mktemp("cores2")
    _run(run_snakemake, first, "--cores", "1")
    _run(run_snakemake, second, "--cores", "2")
    return first, second


def test_outputs_follow_the_file_contract(two_runs):
    folder, _ = two_runs
    results = folder / "results"
    assert (results / "dataset_description.json").is_file()
    for subject in ("01", "02"):
        func = results / f"sub-{subject}" / "func"
        confounds = pd.read_csv(
            func / f"sub-{subject}_desc-highvariance_confounds.tsv", sep="\t"
        )
        assert confounds.shape == (100, 5)
        series = pd.read_csv(
            func / f"sub-{subject}_atlas-synthetic_timeseries.tsv", sep="\t"
        )
        assert series.shape == (100, 39)
        assert series.columns[0] == "R01"
        assert (series.std(ddof=1) - 1).abs().max() < 1e-6
        assert (func / f"sub-{subject}_atlas-synthetic_timeseries.json").is_file()


def test_cores_1_and_2_give_identical_bytes(two_runs):
    first, second = two_runs
    files = _files(first)
    assert files == _files(second)
    assert len(files) >= 10
    _, mismatch, errors = filecmp.cmpfiles(first, second, files, shallow=False)
    assert mismatch == [] and errors == []


def test_dry_run_after_a_complete_run_has_nothing_to_do(two_runs, run_snakemake):
    folder, _ = two_runs
    result = _run(run_snakemake, folder, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_forced_rerun_rewrites_the_same_bytes(two_runs, run_snakemake, tmp_path):
    folder, _ = two_runs
    before = {path: (folder / path).read_bytes() for path in _files(folder)}
    _run(run_snakemake, folder, "--cores", "2", "--forceall")
    after = {path: (folder / path).read_bytes() for path in _files(folder)}
    assert before.keys() == after.keys()
    changed = [str(path) for path in before if before[path] != after[path]]
    assert changed == []
