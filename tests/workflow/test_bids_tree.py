"""The results of a synthetic run as a BIDS-derivatives tree (issue 19).

Every relmat TSV has, directly or by BIDS inheritance, a sidecar with BEP017's
fields, the estimator and its alpha, and its sources; every time series
BEP012's timing fields; ``dataset_description.json`` lists the atlases; and
``participants.tsv`` lists every participant and whether it entered the group
stage. Sidecars are resolved the BIDS way (inheritance principle): every JSON
of the file's folder or of a folder above it, up to the dataset's root, whose
entities are a subset of the file's and whose suffix is the file's, merged from
the root down (a deeper or more specific sidecar wins).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow.conftest import ROOT_CONFIG

pytestmark = pytest.mark.slow

RELMAT_FIELDS = (
    "Measure",
    "MeasureDescription",
    "Weighted",
    "Directed",
    "ValidDiagonal",
    "StorageFormat",
    "NonNegative",
    "Estimator",
    "Sources",
)
TIMESERIES_FIELDS = ("SamplingFrequency", "StartTime", "Sources")
#: Folders of the results that are not BIDS (listed in .bidsignore).
NOT_BIDS = {"figures", "group", "logs", "benchmarks"}


def _entities_and_suffix(name: str) -> tuple[dict[str, str], str]:
    stem = name.split(".", 1)[0]
    *pairs, suffix = stem.split("_")
    if not all("-" in pair for pair in pairs):  # not a BIDS name
        return {"": stem}, ""
    return dict(pair.split("-", 1) for pair in pairs), suffix


def inherited_sidecar(data_file: Path, root: Path) -> dict:
    """The metadata of ``data_file`` by BIDS inheritance (root first, then deeper)."""
    entities, suffix = _entities_and_suffix(data_file.name)
    folders = [data_file.parent, *data_file.parent.parents]
    folders = folders[: folders.index(root) + 1][::-1]
    merged: dict = {}
    for folder in folders:
        candidates = []
        for path in folder.glob("*.json"):
            found, found_suffix = _entities_and_suffix(path.name)
            if found_suffix == suffix and found.items() <= entities.items():
                candidates.append((len(found), path))
        for _, path in sorted(candidates):
            merged.update(json.loads(path.read_text()))
    return merged


def _bids_files(results: Path, pattern: str) -> list[Path]:
    return sorted(
        path
        for path in results.rglob(pattern)
        if not set(path.relative_to(results).parts) & NOT_BIDS
    )


def check_tree(results: Path, n_subjects: int) -> dict[str, int]:
    """Assert the sidecar fields of every relmat and time series; count them."""
    relmats = _bids_files(results, "*_relmat.tsv")
    series = _bids_files(results, "*_timeseries.tsv")
    for relmat in relmats:
        sidecar = inherited_sidecar(relmat, results)
        missing = [field for field in RELMAT_FIELDS if field not in sidecar]
        assert not missing, f"{relmat}: no {missing}"
        entities, _ = _entities_and_suffix(relmat.name)
        assert sidecar["Measure"] == entities["stat"]
        assert sidecar["Estimator"]["Alpha"] > 0, relmat
        assert sidecar["Estimator"]["Name"], relmat
        assert sidecar["Sources"], relmat
        assert sidecar["Atlas"] == entities["atlas"]
        # a subject's graph lasso comes from that subject's series only
        if entities["desc"] == "graphlasso":
            assert sidecar["Sources"] == [
                f"bids::sub-{entities['sub']}/func/"
                f"sub-{entities['sub']}_atlas-{entities['atlas']}_timeseries.tsv"
            ]
        else:
            assert len(sidecar["Sources"]) == n_subjects
    for path in series:
        sidecar = inherited_sidecar(path, results)
        missing = [field for field in TIMESERIES_FIELDS if field not in sidecar]
        assert not missing, f"{path}: no {missing}"
        assert sidecar["SamplingFrequency"] == pytest.approx(1 / 2.5)
        assert sidecar["StartTime"] == 0
        assert sidecar["MeanFramewiseDisplacement"] > 0
    description = json.loads((results / "dataset_description.json").read_text())
    assert [atlas["Name"] for atlas in description["Atlases"]] == ["synthetic"]
    participants = pd.read_csv(
        results / "participants.tsv", sep="\t", keep_default_na=False
    )
    assert participants["participant_id"].tolist() == sorted(
        path.name for path in results.glob("sub-*")
    )
    assert participants["in_group_stage"].all()
    assert (participants["reason"] == "n/a").all()  # BIDS: no empty cell
    columns = json.loads((results / "participants.json").read_text())
    assert set(columns) == set(participants.columns)
    return {"relmats": len(relmats), "timeseries": len(series)}


def test_every_relmat_and_time_series_of_the_default_run_has_its_sidecar(
    default_run,
):
    counts = check_tree(default_run / "results", n_subjects=3)
    # group-sparse covariance and precision of 3 subjects, the plotted
    # subject's graph lasso (2); one time series per subject
    assert counts == {"relmats": 8, "timeseries": 3}


def test_every_relmat_has_its_sidecar_with_graph_lasso_per_subject(
    tmp_path, run_snakemake
):
    settings = {
        "n_subjects": 3,
        "synthetic": {"n_volumes": 60},
        "graph_lasso": {"per_subject": True},
        "science_check": False,
        "figures": {"subject_qc": False},
    }
    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump(settings))
    result = run_snakemake(
        "--configfile", ROOT_CONFIG, config, "--cores", "2", cwd=tmp_path, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = check_tree(tmp_path / "results", n_subjects=3)
    assert counts == {"relmats": 12, "timeseries": 3}


BIDS_VALIDATOR = shutil.which("bids-validator")


@pytest.mark.skipif(BIDS_VALIDATOR is None, reason="bids-validator is not on PATH")
def test_the_bids_validator_finds_no_error_but_unknown_derivative_names(default_run):
    """npm's bids-validator 1.x knows raw BIDS only: BEP017/BEP012 file names are
    not in it (NOT_INCLUDED, and so no data for the subjects); nothing else."""
    result = subprocess.run(
        [BIDS_VALIDATOR, str(default_run / "results"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    issues = json.loads(result.stdout)["issues"]
    errors = {issue["key"] for issue in issues["errors"]}
    assert errors <= {"NOT_INCLUDED", "NO_VALID_DATA_FOUND_FOR_SUBJECT"}
    not_included = next(
        (i for i in issues["errors"] if i["key"] == "NOT_INCLUDED"), {"files": []}
    )
    for item in not_included["files"]:
        name = item["file"]["name"]
        assert name.endswith(
            (
                "_relmat.tsv",
                "_relmat.json",
                "_timeseries.tsv",
                "_timeseries.json",
                "_regions.tsv",
                "_confounds.tsv",
            )
        ), name
