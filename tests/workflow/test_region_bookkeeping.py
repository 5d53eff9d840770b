"""A region outside one subject's field of view, for real: dropped for the group.

A subjects sheet with a 4-region parcellation, where one subject's image stops
short of region 4: its region table says so, the group's region table drops
region 4 naming the subject, every relmat of the run has the same 3 nodes; with
``strict_regions`` the run stops with one line instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import make_func
from tests.workflow.test_config_sheet_errors import ERROR_PREFIX, error_line

pytestmark = pytest.mark.slow

N_VOLUMES = 40
NAMES = ["left", "middle", "right", "far"]


def _parcellation(path: Path, table: Path) -> None:
    """Labels 1-4 in slabs along x at 4, 8, 12 and 20 mm (4 mm voxels)."""
    image = np.zeros((7, 8, 6), dtype=np.int16)
    for label, x in zip((1, 2, 3, 4), (1, 2, 3, 5), strict=True):
        image[x, 1:7, 1:5] = label
    nib.save(nib.Nifti1Image(image, np.diag([4.0, 4.0, 4.0, 1.0])), path)
    pd.DataFrame({"index": [1, 2, 3, 4], "name": NAMES}).to_csv(
        table, sep="\t", index=False
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("regions")
    data = folder / "data"
    data.mkdir()
    _parcellation(data / "dseg.nii.gz", data / "dseg.tsv")
    rows = []
    for subject in ("a", "b", "cut"):
        func = data / f"{subject}_bold.nii.gz"
        # 3 mm voxels from 0 mm: x to 24 mm, or to 15 mm for "cut"
        shape = (6, 10, 8) if subject == "cut" else (9, 10, 8)
        make_func(func, rng, shape=shape, n_volumes=N_VOLUMES)
        rows.append({"subject": subject, "func": str(func)})
    sheet = folder / "subjects.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    settings = {
        "dataset": "sheet",
        "subjects_sheet": str(sheet),
        "atlas_maps": str(data / "dseg.nii.gz"),
        "atlas_labels": str(data / "dseg.tsv"),
        "atlas_name": "four",
        "science_check": False,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    return folder


@pytest.fixture(scope="module")
def run(dataset, run_snakemake):
    result = run_snakemake(
        "--configfile", dataset / "config.yaml", "--cores", "2", cwd=dataset
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dataset / "results"


def test_scan_region_table_names_the_missing_region(run):
    table = pd.read_csv(
        run / "sub-cut/func/sub-cut_atlas-four_desc-coverage_regions.tsv",
        sep="\t",
        keep_default_na=False,
    )
    assert list(table.columns) == ["index", "name", "coverage", "usable", "reason"]
    assert list(table["name"]) == NAMES
    assert list(table["usable"]) == [True, True, True, False]
    assert table["reason"].iloc[3] == "outside the field of view"
    assert table["coverage"].iloc[3] == 0
    whole = pd.read_csv(
        run / "sub-a/func/sub-a_atlas-four_desc-coverage_regions.tsv", sep="\t"
    )
    assert whole["usable"].all() and (whole["coverage"] == 1).all()


def test_region_dropped_for_the_whole_group_with_its_reason(run):
    group = pd.read_csv(
        run / "group/atlas-four_desc-coverage_regions.tsv",
        sep="\t",
        keep_default_na=False,
    )
    assert list(group["kept"]) == [True, True, True, False]
    assert group["reason"].iloc[3] == "sub-cut: outside the field of view"
    with np.load(run / "group/atlas-four_desc-groupsparse_connectome.npz") as fit:
        assert list(fit["regions"]) == NAMES[:3]
        assert fit["precisions"].shape == (3, 3, 3)
        assert list(fit["dropped_regions"]) == ["far"]
        assert list(fit["dropped_reasons"]) == ["sub-cut: outside the field of view"]


def test_every_relmat_has_the_same_nodes(run):
    relmats = sorted(run.glob("sub-*/func/*_relmat.tsv"))
    # group-sparse for 3 subjects, graph lasso for the plotted one; 2 stats each
    assert len(relmats) == 8
    for path in relmats:
        table = pd.read_csv(path, sep="\t")
        assert list(table["Node"]) == NAMES[:3], path
        assert list(table.columns[1:]) == NAMES[:3], path
        # its BEP017 sidecar: what the matrix is, from what, without which regions;
        # the group-sparse relmats inherit one per statistic (BIDS inheritance)
        own = path.with_suffix(".json")
        inherited = run / "_".join(path.name.split("_")[1:]).replace(".tsv", ".json")
        assert own.is_file() != inherited.is_file(), path
        sidecar = json.loads((own if own.is_file() else inherited).read_text())
        assert sidecar["Measure"] in ("covariance", "precision")
        assert sidecar["Measure"] in path.name
        for key, value in (
            ("Weighted", True),
            ("Directed", False),
            ("ValidDiagonal", True),
            ("StorageFormat", "Full"),
            ("Atlas", "four"),
        ):
            assert sidecar[key] == value, (path, key)
        assert sidecar["MeasureDescription"]
        estimator = sidecar["Estimator"]
        assert estimator["Name"] == (
            "GroupSparseCovarianceCV"
            if "groupsparse" in path.name
            else "GraphicalLassoCV"
        )
        assert estimator["Alpha"] > 0
        assert sidecar["RegionsDropped"] == {
            "far": "sub-cut: outside the field of view"
        }
        subject = path.name.split("_")[0]
        sources = sidecar["Sources"]
        assert all(s.startswith("bids::") for s in sources)
        assert all(s.endswith("_atlas-four_timeseries.tsv") for s in sources)
        assert any(f"/{subject}_" in s for s in sources)
        if "groupsparse" in path.name:
            assert inherited.is_file() and len(sources) == 3  # every subject's
    assert (run / "figures/sub-a_atlas-four_desc-groupsparse_connectome.png").is_file()


def test_strict_regions_stops_with_one_line(dataset, run_snakemake, tmp_path):
    config = yaml.safe_load((dataset / "config.yaml").read_text())
    config["strict_regions"] = True
    config["results_dir"] = str(tmp_path / "strict")
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("--configfile", path, "--cores", "2", cwd=dataset)
    line = error_line(result)
    assert line.startswith(ERROR_PREFIX)
    assert "sub-cut_atlas-four_desc-coverage_regions.tsv: region far: outside" in line
    assert "strict_regions" in line
    group = tmp_path / "strict" / "group"
    assert not (group / "atlas-four_desc-coverage_regions.tsv").exists()
    assert not list(group.glob("*_connectome.npz"))
    assert not list((tmp_path / "strict").rglob("*_relmat.tsv"))
