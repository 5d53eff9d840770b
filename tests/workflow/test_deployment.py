"""The workflow as the Snakemake catalog uses it: `.test` configs and a module.

The catalog's CI runs ``snakemake --directory .test``; ``snakedeploy
deploy-workflow`` writes a ``workflow/Snakefile`` in another folder that uses this
repository's ``workflow/Snakefile`` as a module (``config: config``, ``use rule *``)
beside a copy of ``config/``. Both run here to completion on a copy of the
``.test`` configs, in temporary folders: the outputs land in the working
directory, none in this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, SNAKEMAKE

pytestmark = pytest.mark.slow

TEST_DIR = ROOT / ".test"
SUBJECTS = ("01", "02", "03")

#: What ``snakedeploy deploy-workflow`` writes (its template), with a local path
#: in place of ``github(...)``.
DEPLOYING_SNAKEFILE = """\
configfile: "config/config.yaml"


# declare sparseconn as a module
module sparseconn:
    snakefile:
        "{snakefile}"
    config:
        config


# use all rules from sparseconn
use rule * from sparseconn
"""


def _checkout_products() -> dict[str, list[str]]:
    """Files under this checkout's output folders (none may appear)."""
    folders = ["results", "resources", "logs", ".test/results", ".test/resources"]
    return {
        name: sorted(str(path) for path in (ROOT / name).rglob("*")) for name in folders
    }


def _series(folder: Path, subject: str, atlas: str) -> Path:
    name = f"sub-{subject}_atlas-{atlas}_timeseries.tsv"
    return folder / "results" / f"sub-{subject}" / "func" / name


def _assert_complete(folder: Path, atlases: tuple[str, ...]) -> None:
    results = folder / "results"
    assert (results / "dataset_description.json").is_file()
    for atlas in atlases:
        for subject in SUBJECTS:
            assert _series(folder, subject, atlas).is_file()
        group = results / "group"
        assert (group / f"atlas-{atlas}_desc-groupsparse_connectome.npz").is_file()
        assert (group / f"atlas-{atlas}_desc-recovery_scores.tsv").is_file()


def test_the_test_configs_run(tmp_path, run_snakemake):
    """What CI runs: the root Snakefile with --directory .test, both configs."""
    before = _checkout_products()
    folder = tmp_path / ".test"
    shutil.copytree(TEST_DIR, folder)
    first = run_snakemake("--cores", "2", cwd=folder, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    _assert_complete(folder, ("synthetic",))
    header = _series(folder, "01", "synthetic").read_text().splitlines()[0]
    assert len(header.split("\t")) == 12  # the .test config's n_regions

    second = run_snakemake(
        "--cores",
        "2",
        "--configfile",
        folder / "config" / "two_atlases.yaml",
        cwd=folder,
        timeout=900,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    _assert_complete(folder, ("synthetic", "parc"))
    assert _checkout_products() == before


def test_deployed_as_a_module_from_another_folder(tmp_path):
    """snakedeploy's layout: workflow/Snakefile + config/ in the deploying folder."""
    before = _checkout_products()
    deploy = tmp_path / "deployed"
    (deploy / "workflow").mkdir(parents=True)
    shutil.copytree(TEST_DIR / "config", deploy / "config")
    (deploy / "workflow" / "Snakefile").write_text(
        DEPLOYING_SNAKEFILE.format(snakefile=ROOT / "workflow" / "Snakefile")
    )

    def snakemake(*args: str) -> subprocess.CompletedProcess[str]:
        # No --snakefile: Snakemake finds workflow/Snakefile, as after snakedeploy.
        return subprocess.run(
            [str(SNAKEMAKE), "--force-use-threads", *args],
            cwd=deploy,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    run = snakemake("--cores", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    # rule all of the module is the default target: everything was made, here.
    _assert_complete(deploy, ("synthetic",))
    assert (deploy / "results" / "figures").is_dir()
    assert _checkout_products() == before

    again = snakemake("--cores", "2", "--dry-run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr

    report = snakemake("--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    assert (deploy / "report.html").stat().st_size > 0
