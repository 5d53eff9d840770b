"""The run's inputs built from a config, for each dataset kind, without Snakemake."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from sparseconn.errors import InputError
from sparseconn.fetch import ADHD_SUBJECTS
from sparseconn.workflow.inputs import (
    KINDS,
    AdhdInputs,
    FmriprepInputs,
    SheetInputs,
    SyntheticInputs,
    build_inputs,
)
from tests.fmriprep_tree import make_fmriprep_tree

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "config.yaml"


def _config(**settings) -> dict:
    """The shipped config (every key with its default), with ``settings``."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config.update(settings)
    return config


def _build(**settings):
    return build_inputs(_config(**settings), source=SOURCE, basedir=ROOT)


def test_every_dataset_kind_of_the_schema_has_its_class():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert sorted(KINDS) == sorted(schema["properties"]["dataset"]["enum"])


def test_synthetic():
    inputs = _build(n_subjects=3, results_dir="out", resources_dir="res")
    assert isinstance(inputs, SyntheticInputs)
    assert inputs.subjects == inputs.group_units == ("01", "02", "03")
    assert inputs.plot_unit == "01" and inputs.excluded == {}
    assert inputs.func("02") == "res/synthetic/sub-02_bold.nii.gz"
    assert inputs.confounds("02") == [
        "res/synthetic/sub-02_desc-confounds_timeseries.tsv",
    ]
    assert inputs.atlas.name == "synthetic"
    assert inputs.atlas.maps == "res/synthetic/atlas_maps.nii.gz"
    assert inputs.sheet_t_r("02") is None and inputs.config_t_r("02") is None
    assert inputs.unit_timeseries("03") == [
        "out/sub-03/func/sub-03_atlas-synthetic_timeseries.tsv"
    ]
    assert inputs.unit_relmat("01", "precision", "groupsparse") == (
        "out/sub-01/func/sub-01_atlas-synthetic_stat-precision_desc-groupsparse"
        "_relmat.tsv"
    )
    assert inputs.synthetic_index("03") == 2
    assert inputs.other_subjects_pattern == "02|03"
    assert inputs.scan_names == ["sub-01", "sub-02", "sub-03"]
    assert inputs.targets == []
    assert inputs.dataset_links == {"": "out", "synthetic": "res/synthetic"}
    assert inputs.dataset_links_from_results == {
        "": ".",
        "synthetic": "../res/synthetic",
    }
    assert inputs.paths.logs == "out/logs"
    assert inputs.has_ground_truth


def test_the_value_is_immutable():
    inputs = _build(n_subjects=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        inputs.subjects = ("09",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        inputs.config["n_subjects"] = 5  # type: ignore[index]


def test_plot_subject_as_typed():
    assert _build(n_subjects=3, plot_subject=2).plot_unit == "02"
    assert _build(n_subjects=3, plot_subject="sub-03").plot_unit == "03"
    with pytest.raises(InputError, match="plot_subject 7 is not one of the subjects"):
        _build(n_subjects=3, plot_subject=7)


def test_adhd():
    inputs = _build(dataset="adhd", n_subjects=2)
    assert isinstance(inputs, AdhdInputs)
    assert inputs.subjects == tuple(sorted(ADHD_SUBJECTS[:2]))
    subject = inputs.subjects[0]
    assert inputs.func(subject).endswith(
        f"adhd/{subject}/{subject}_rest_tshift_RPI_voreg_mni.nii.gz"
    )
    assert inputs.file_confounds(subject).endswith(f"{subject}_regressors.csv")
    assert inputs.atlas.name == "MSDL"
    assert inputs.targets == [inputs.paths.adhd_phenotypes]
    # the canonical hosts of config/adhd.yaml
    assert inputs.adhd.subject_url(subject).endswith(f"adhd40_{subject}.tgz")
    with pytest.raises(InputError, match="n_subjects 41 is out of range"):
        _build(dataset="adhd", n_subjects=41)


def _sheet(folder: Path, rows: str) -> Path:
    for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz", "a.tsv", "maps.nii.gz"):
        (folder / name).write_bytes(b"")
    sheet = folder / "subjects.tsv"
    sheet.write_text("subject\tfunc\tconfounds\tt_r\texclude\n" + rows)
    return sheet


def test_sheet(tmp_path):
    sheet = _sheet(
        tmp_path,
        f"02\t{tmp_path}/b.nii.gz\t\t2.0\tno\n"
        f"01\t{tmp_path}/a.nii.gz\t{tmp_path}/a.tsv\t\tno\n"
        f"03\t{tmp_path}/c.nii.gz\t\t\tyes\n"
        "04\thttps://example.org/data/d_bold.nii.gz\t\t\tno\n",
    )
    inputs = _build(
        dataset="sheet",
        subjects_sheet=str(sheet),
        atlas_maps=str(tmp_path / "maps.nii.gz"),
        t_r=2.5,
        plot_subject="02",
    )
    assert isinstance(inputs, SheetInputs)
    assert inputs.subjects == ("01", "02", "03", "04")
    assert inputs.group_units == ("01", "02", "04")
    assert inputs.excluded == {"sub-03": "excluded in the subjects sheet"}
    assert inputs.plot_unit == "02"
    assert inputs.func("01") == f"{tmp_path}/a.nii.gz"
    assert inputs.confounds("01") == [f"{tmp_path}/a.tsv"]
    assert inputs.confounds("02") == []
    # repetition time: the sheet's, else the config's
    assert (inputs.sheet_t_r("02"), inputs.config_t_r("02")) == (2.0, None)
    assert (inputs.sheet_t_r("01"), inputs.config_t_r("01")) == (None, 2.5)
    # a URL cell is downloaded to resources/sheet
    assert inputs.func("04") == "resources/sheet/04/func/d_bold.nii.gz"
    assert inputs.urls["04", "func"] == "https://example.org/data/d_bold.nii.gz"
    assert inputs.atlas.name == "custom"


def test_sheet_errors(tmp_path):
    sheet = _sheet(tmp_path, f"01\t{tmp_path}/a.nii.gz\t\t\tyes\n")
    settings = {"dataset": "sheet", "subjects_sheet": str(sheet)}
    with pytest.raises(InputError, match="atlas_maps is required"):
        _build(**settings)
    settings["atlas_maps"] = str(tmp_path / "maps.nii.gz")
    with pytest.raises(InputError, match="every subject is excluded") as error:
        _build(**settings)
    assert error.value.source == str(sheet)
    with pytest.raises(InputError, match="highvariance only"):
        _build(**settings, denoise_strategy="scrubbing")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_fmriprep_tree(tmp_path_factory.mktemp("inputs"), n_volumes=100)


def _fmriprep(tree, **settings):
    return _build(
        dataset="fmriprep",
        fmriprep_dir=str(tree.root),
        atlas_maps=str(tree.maps),
        atlas_labels=str(tree.labels),
        atlas_name="test",
        **settings,
    )


def test_fmriprep_units_exclusions_and_plotted_subject(tree):
    inputs = _fmriprep(tree, denoise_strategy="scrubbing", plot_subject="02")
    assert isinstance(inputs, FmriprepInputs)
    assert inputs.subjects == ()
    v21 = sorted(scan.name for scan in tree.scans if scan.source == "v21")
    assert sorted(inputs.excluded) == v21
    assert all("0 of 100 volumes kept" in r for r in inputs.excluded.values())
    space = "space-MNI152NLin2009cAsym_res-2"
    assert inputs.group_units == (
        f"sub-01_ses-1_task-rest_{space}",
        f"sub-01_ses-2_task-rest_{space}",
        f"sub-02_task-rest_{space}",
    )
    assert inputs.plot_unit == f"sub-02_task-rest_{space}"
    (kept,) = inputs.unit_timeseries(inputs.group_units[0])
    assert kept.endswith(
        "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym"
        "_atlas-test_res-2_timeseries.tsv"
    )
    # every run has its time series (excluded ones too), and its QC sidecar
    assert len(inputs.targets) == 2 * len(inputs.scans) == 10
    assert inputs.scan_names == list(inputs.scans)
    stem = inputs.paths.timeseries_stem(v21[0])
    assert inputs.scan(stem).name == v21[0]
    assert set(inputs.confounds_input(stem)) == {"confounds"}
    assert inputs.denoise_strategy == "scrubbing"
    assert inputs.dataset_links["preprocessed"] == str(tree.root)


def test_fmriprep_runs_alone_and_defaults(tree):
    inputs = _fmriprep(tree, concatenate_runs=False)
    assert inputs.denoise_strategy == "simple"
    assert len(inputs.group_units) == 5 and inputs.excluded == {}
    assert inputs.plot_unit == inputs.group_units[0]
    stem = inputs.paths.timeseries_stem(inputs.group_units[0])
    assert set(_fmriprep(tree, denoise_strategy="compcor").confounds_input(stem)) == {
        "confounds",
        "confounds_json",
    }


def test_fmriprep_errors(tree):
    with pytest.raises(InputError, match="fmriprep_dir is required"):
        _build(dataset="fmriprep", fmriprep_dir=None)
    with pytest.raises(InputError, match=r"graph_lasso\.per_subject"):
        _fmriprep(tree, graph_lasso={"per_subject": True})
    with pytest.raises(InputError, match="is not one of"):
        _fmriprep(tree, denoise_strategy="aroma")
