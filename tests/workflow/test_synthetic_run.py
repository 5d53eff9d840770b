"""The default synthetic workflow, run for real: complete, deterministic, idempotent.

Two subjects with fewer volumes keep it quick; everything else is the default.
Runs with ``--cores 1`` and ``--cores 2`` in two folders must write the same bytes,
a forced rerun must too, and a dry run after a complete run has nothing to do.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import output_files

pytestmark = pytest.mark.slow

SETTINGS = {"n_subjects": 2, "synthetic": {"n_volumes": 100}}


def _files(folder: Path) -> list[Path]:
    return output_files(folder)


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


def test_group_stage_outputs(two_runs):
    folder, _ = two_runs
    group = folder / "results" / "group"
    with np.load(group / "atlas-synthetic_desc-groupsparse_connectome.npz") as fit:
        assert fit["precisions"].shape == (2, 39, 39)
        assert list(fit["subjects"]) == ["01", "02"]
        assert fit["alpha"] in fit["cv_alphas"]
    with np.load(group / "atlas-synthetic_desc-graphlasso_connectome.npz") as fit:
        assert str(fit["subject"]) == "01"
        assert fit["precision"].shape == (39, 39)
    for subject in ("01", "02"):
        for stat in ("covariance", "precision"):
            name = f"sub-{subject}_atlas-synthetic_stat-{stat}_desc-groupsparse_relmat"
            relmat = pd.read_csv(
                folder / "results" / f"sub-{subject}" / "func" / f"{name}.tsv",
                sep="\t",
            )
            assert relmat.shape == (39, 40) and relmat.columns[0] == "Node"


def test_science_check_fits_each_subject_in_batches_not_graph_lasso_subject(two_runs):
    # The recovery scores need every subject's graph lasso: the science check's
    # batch jobs fit it (with the held-out folds); graph_lasso_subject runs only
    # with graph_lasso: {per_subject: true}, so only the plotted subject's
    # relmats are written (rule graph_lasso).
    folder, _ = two_runs
    names = {
        subject: f"sub-{subject}_atlas-synthetic_stat-precision_desc-graphlasso_relmat"
        for subject in ("01", "02")
    }
    func = folder / "results" / "sub-{}" / "func"
    assert (Path(str(func).format("01")) / f"{names['01']}.tsv").is_file()
    assert not (Path(str(func).format("02")) / f"{names['02']}.tsv").exists()
    logs = folder / "results" / "logs"
    assert not (logs / "graph_lasso_subject").exists()
    assert sorted(p.name for p in (logs / "heldout_subjects").iterdir()) == [
        "atlas-synthetic_batch-1.log"
    ]
    with np.load(
        folder
        / "results"
        / "group"
        / "heldout"
        / "atlas-synthetic_batch-1_desc-single_precisions.npz"
    ) as fits:
        assert list(fits["subjects"]) == ["01", "02"]
        assert fits["graph_lasso"].shape == (2, 39, 39)


def test_science_check_outputs(two_runs):
    group = two_runs[0] / "results" / "group"
    heldout = pd.read_csv(
        group / "atlas-synthetic_desc-heldout_loglikelihood.tsv", sep="\t"
    )
    assert list(heldout.columns) == ["subject", "estimator", "fold", "log_likelihood"]
    assert len(heldout) == 2 * 4 * 2  # subjects x estimators x halves
    recovery = pd.read_csv(group / "atlas-synthetic_desc-recovery_scores.tsv", sep="\t")
    assert set(recovery["estimator"]) == {
        "group_sparse",
        "graph_lasso",
        "ledoit_wolf",
        "empirical",
    }
    assert recovery["f1"].between(0, 1).all()


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
