"""Several atlases in one run, for real: a maps atlas and a label atlas.

The synthetic default with its own probabilistic atlas and the parcellation the
generator derives from it (``atlas_dseg.nii.gz``): every per-scan and group
output is written per atlas, each scan is read once for both, and the bad
atlas settings stop the workflow with one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.workflow.test_config_sheet_errors import ERROR_PREFIX, error_line

pytestmark = pytest.mark.slow

ROOT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
# the README's example: the generated maps and their parcellation
ATLASES = yaml.safe_load(ROOT_CONFIG.with_name("two_atlases.yaml").read_text())[
    "atlases"
]
SETTINGS = {"n_subjects": 2, "synthetic": {"n_volumes": 100}, "atlases": ATLASES}


@pytest.fixture(scope="module")
def run(tmp_path_factory, run_snakemake):
    folder = tmp_path_factory.mktemp("atlases")
    config = folder / "test.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "2", cwd=folder, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_every_output_per_atlas(run):
    results = run / "results"
    for atlas in ("synthetic", "parc"):
        for subject in ("01", "02"):
            func = results / f"sub-{subject}" / "func"
            series = pd.read_csv(
                func / f"sub-{subject}_atlas-{atlas}_timeseries.tsv", sep="\t"
            )
            assert series.shape == (100, 39) and series.columns[0] == "R01"
            sidecar = json.loads(
                (func / f"sub-{subject}_atlas-{atlas}_timeseries.json").read_text()
            )
            assert sidecar["Atlas"] == atlas
            for stat in ("covariance", "precision"):
                assert (
                    func / f"sub-{subject}_atlas-{atlas}_stat-{stat}"
                    "_desc-groupsparse_relmat.tsv"
                ).is_file()
        group = results / "group"
        with np.load(group / f"atlas-{atlas}_desc-groupsparse_connectome.npz") as fit:
            assert fit["precisions"].shape == (2, 39, 39)
        for name in (
            f"atlas-{atlas}_desc-scans_qc.tsv",
            f"atlas-{atlas}_desc-heldout_loglikelihood.tsv",
            f"atlas-{atlas}_desc-recovery_scores.tsv",
        ):
            assert (group / name).is_file(), name
        figures = results / "figures"
        assert (
            figures / f"sub-01_atlas-{atlas}_desc-groupsparse_connectome.png"
        ).is_file()
        assert (figures / f"sub-02_atlas-{atlas}_qc.png").is_file()
    description = json.loads((results / "dataset_description.json").read_text())
    assert description["Atlases"] == [
        {
            "Name": "synthetic",
            "Image": "bids:synthetic:atlas_maps.nii.gz",
            "Labels": "bids:synthetic:atlas_labels.csv",
        },
        {
            "Name": "parc",
            "Image": "bids:synthetic:atlas_dseg.nii.gz",
            "Labels": "bids:synthetic:atlas_dseg.tsv",
        },
    ]
    parcellation = json.loads(
        (results / "sub-01/func/sub-01_atlas-parc_timeseries.json").read_text()
    )
    assert parcellation["Extraction"]["Method"].startswith("mean of each region")
    assert any(uri.endswith("atlas_dseg.nii.gz") for uri in parcellation["Sources"])


def test_each_scan_read_once_for_both_atlases(run):
    logs = sorted((run / "results/logs/extract_timeseries").glob("*.log"))
    assert [log.name for log in logs] == ["01.log", "02.log"]
    for log in logs:
        text = log.read_text()
        assert text.count("one streamed pass") == 1
        assert "region signals of 2 atlas(es): synthetic, parc" in text


@pytest.mark.parametrize(
    ("atlases", "message"),
    [
        ([{"name": "A"}, {"name": "A"}], "atlases: two atlases are named A"),
        (
            [{"name": "A", "image": "nowhere.nii.gz"}],
            "atlases item 1 (A): image file 'nowhere.nii.gz' does not exist",
        ),
    ],
)
def test_bad_atlases_are_one_line(run_snakemake, tmp_path, atlases, message):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"atlases": atlases}))
    result = run_snakemake("-n", "--configfile", ROOT_CONFIG, config, cwd=tmp_path)
    line = error_line(result)
    assert line.startswith(ERROR_PREFIX) and message in line
    assert not (tmp_path / "results").exists()


def test_maps_forced_as_labels_fail_their_job_with_one_line(run_snakemake, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "n_subjects": 1,
                "science_check": False,
                "atlases": [{"name": "synthetic", "kind": "labels"}],
            }
        )
    )
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "1", cwd=tmp_path
    )
    line = error_line(result)
    assert "resources/synthetic/atlas_maps.nii.gz: a label atlas must be a 3D" in line
    assert not list((tmp_path / "results").glob("sub-01/func/*_timeseries.*"))
