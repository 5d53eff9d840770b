"""The cluster profile on a real SLURM: jobs go through sbatch, bytes equal local.

A one-node SLURM on localhost (fixture ``local_slurm``, conftest.py) runs the
synthetic workflow (two subjects of 100 volumes) with ``--profile
profiles/slurm``, as a user would (profiles/default is read too), with the
partition and account overridden for this cluster: partition ``debug``, no
account, job status from ``squeue`` (no accounting database here), first status
check after 1 s, SLURM logs kept. The same workflow runs locally in another
folder; both must write the same bytes, and SLURM must have run every job but the
local rules, all completed.
"""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SNAKEMAKE
from tests.helpers import output_files

pytestmark = pytest.mark.slow

PROFILE = ROOT / "profiles" / "slurm"
ROOT_CONFIG = ROOT / "config" / "config.yaml"
SETTINGS = {"n_subjects": 2, "synthetic": {"n_volumes": 100}}
#: Jobs SLURM must run, by SLURM log folder: one per subject for the group
#: "subject" (synthetic_subject, extract_timeseries),
#: one drawing every group-level figure and one every subject's QC figure.
SUBMITTED = {
    "synthetic_atlas": 1,
    "subject": 2,
    "group_sparse_covariance": 1,
    "graph_lasso": 1,
    "plot_group_figures": 1,
    "plot_subjects_qc": 1,
}
#: Local rules of the workflow (run on the submit host).
LOCAL_RULES = {
    "dataset_description",
    "scan_qc",
    "fetch_atlas",
    "fetch_subject",
    "fetch_phenotypes",
    "fetch_sheet_file",
}


def _files(folder: Path) -> list[Path]:
    return output_files(folder)


def _config(folder: Path) -> Path:
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    return config


def cluster_command(folder: Path, config: Path, partition: str) -> list[str]:
    """``snakemake --profile profiles/slurm``, overridden for the test cluster."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    defaults = {**profile["default-resources"], "slurm_partition": partition}
    return [
        str(SNAKEMAKE),
        "--snakefile", ROOT / "Snakefile",
        "--directory", folder,
        "--profile", PROFILE,
        "--configfile", ROOT_CONFIG, config,
        "--default-resources", *(f"{key}={value}" for key, value in defaults.items()),
        "--slurm-no-account",
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, run_snakemake) -> Path:
    folder = tmp_path_factory.mktemp("local")
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, _config(folder), "--cores", "2", cwd=folder
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, local_slurm):
    from tests.cluster.slurm_localhost import PARTITION

    folder = tmp_path_factory.mktemp("slurm")
    command = cluster_command(folder, _config(folder), PARTITION)
    result = subprocess.run(
        list(map(str, command)),
        cwd=folder,
        env=local_slurm.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (
        result.stderr[-4000:] + "\n" + local_slurm.logs("slurmctld")
    )
    return folder, result, local_slurm.jobs()


def test_every_job_but_the_local_rules_went_through_sbatch(cluster_run):
    folder, _, jobs = cluster_run
    assert jobs, "SLURM knows no job"
    assert {job["state"] for job in jobs} == {"COMPLETED"}, jobs
    # The plugin's SLURM logs, one folder per rule (rule_<rule>) or group
    # (group_<group>_<its rules>), one file per SLURM job.
    logs = folder / ".snakemake" / "slurm_logs"
    by_kind: dict[str, int] = {}
    for log in logs.rglob("*.log"):
        top = log.relative_to(logs).parts[0]
        if top.startswith("group_"):
            kind = top.removeprefix("group_").split("_")[0]
        else:
            kind = top.removeprefix("rule_")
        by_kind[kind] = by_kind.get(kind, 0) + 1
    assert sum(by_kind.values()) == len(jobs)
    assert {kind: by_kind.get(kind) for kind in SUBMITTED} == SUBMITTED, by_kind
    # the local rules ran here, not through SLURM
    assert not {kind for kind in by_kind if kind in LOCAL_RULES}, by_kind


def test_cluster_outputs_equal_a_local_run_byte_for_byte(cluster_run, local_run):
    folder, _, _ = cluster_run
    files = _files(local_run)
    assert files == _files(folder)
    assert len(files) >= 10
    _, mismatch, errors = filecmp.cmpfiles(local_run, folder, files, shallow=False)
    assert mismatch == [] and errors == []
