"""Rule all names few of the group jobs' per-subject outputs, yet a deleted one
reruns its job (``sparseconn.workflow.paths.outputs_to_request``)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.workflow.conftest import ROOT_CONFIG


@pytest.mark.parametrize(
    ("relative", "job"),
    [
        (
            "results/sub-02/func/sub-02_atlas-synthetic_stat-precision"
            "_desc-groupsparse_relmat.tsv",
            "group_sparse_covariance",
        ),
        ("results/figures/sub-03_atlas-synthetic_qc.png", "plot_subjects_qc"),
        ("results/figures/sub-01_atlas-synthetic_qc.png", "plot_subjects_qc"),
        (
            "results/sub-03/func/sub-03_atlas-synthetic_timeseries.json",
            "extract_timeseries",
        ),
    ],
)
def test_a_deleted_output_reruns_its_job(
    default_run, tmp_path, run_snakemake, relative, job
):
    folder = tmp_path / "run"
    shutil.copytree(default_run, folder, symlinks=True)  # mtimes kept
    args = ("--configfile", ROOT_CONFIG, folder / "test.yaml", "--cores", "2", "-n")
    complete = run_snakemake(*args, cwd=folder)
    assert complete.returncode == 0, complete.stderr[-3000:]
    assert "Nothing to be done" in complete.stdout + complete.stderr
    (folder / relative).unlink()
    result = run_snakemake(*args, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert re.search(rf"^{job}\s+1$", output, re.MULTILINE), output[-3000:]
    if job == "plot_subjects_qc":  # one job writes every subject's figure
        assert f"Missing output files: {relative}" in output
