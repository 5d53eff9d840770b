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
    (atlas,) = inputs.atlases
    assert atlas.name == "synthetic" and atlas.kind == "maps"
    assert atlas.image == "res/synthetic/atlas_maps.nii.gz"
    assert inputs.truth_atlases == ["synthetic"]
    assert inputs.sheet_t_r("02") is None and inputs.config_t_r("02") is None
    assert inputs.unit_timeseries("03") == [
        "out/sub-03/func/sub-03_atlas-{atlas}_timeseries.tsv"
    ]
    assert inputs.unit_relmat("01", "precision", "groupsparse") == (
        "out/sub-01/func/sub-01_atlas-{atlas}_stat-precision_desc-groupsparse"
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
    assert inputs.atlas_names == ["MSDL"]
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
    assert inputs.atlas_names == ["custom"]


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
        "_atlas-{atlas}_res-2_timeseries.tsv"
    )
    # every run has its time series (excluded ones too), its QC sidecar and its
    # region table
    assert len(inputs.targets) == 3 * len(inputs.scans) == 15
    tables, scans = inputs.group_region_tables()
    assert scans == [
        name for unit in inputs.group_units for name in inputs.unit_scans[unit]
    ]
    assert tables[0].endswith("_atlas-{atlas}_res-2_desc-coverage_regions.tsv")
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


# ------------------------------------------------------------------ atlases


def test_atlases_list_with_the_generated_parcellation():
    inputs = _build(
        resources_dir="res",
        atlases=[
            {"name": "synthetic"},
            {
                "name": "parc",
                "image": "res/synthetic/atlas_dseg.nii.gz",
                "labels": "res/synthetic/atlas_dseg.tsv",
                "resampling_target": "labels",
            },
        ],
    )
    assert inputs.atlas_names == ["synthetic", "parc"]
    own, parcellation = inputs.atlases
    assert own.image == "res/synthetic/atlas_maps.nii.gz" and own.kind == "maps"
    assert parcellation.kind == "auto"
    assert parcellation.resampling_target == "labels"
    # both have the generated regions: their recovery of the truth is scored
    assert inputs.truth_atlases == ["synthetic", "parc"]
    assert inputs.atlas_files == [
        "res/synthetic/atlas_maps.nii.gz",
        "res/synthetic/atlas_labels.csv",
        "res/synthetic/atlas_dseg.nii.gz",
        "res/synthetic/atlas_dseg.tsv",
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"atlases": [{"name": "A"}, {"name": "A"}]},
            "two atlases are named A",
        ),
        (
            {"atlases": [{"name": "A"}], "atlas_name": "B"},
            "atlases and atlas_name are both given",
        ),
        (
            {"atlases": [{"name": "A", "image": "missing.nii.gz"}]},
            "atlases item 1 \\(A\\): image file 'missing.nii.gz' does not exist",
        ),
        (
            {"atlases": [{"name": "A", "labels": "x.tsv"}]},
            "labels without image",
        ),
    ],
)
def test_atlases_errors_name_the_config(settings, message):
    with pytest.raises(InputError, match=message) as error:
        _build(**settings)
    assert error.value.source == SOURCE


def test_sheet_atlas_item_needs_an_image(tmp_path):
    sheet = _sheet(tmp_path, f"01\t{tmp_path}/a.nii.gz\t\t\t\n")
    with pytest.raises(InputError, match="give image or templateflow"):
        _build(dataset="sheet", subjects_sheet=str(sheet), atlases=[{"name": "A"}])


def _templateflow_home(root: Path, template: str = "MNI152NLin2009cAsym") -> Path:
    folder = root / "templateflow" / f"tpl-{template}"
    folder.mkdir(parents=True)
    from tests.unit.test_templateflow import SCHAEFER_TABLE, _dseg

    stem = f"tpl-{template}_res-02_atlas-Schaefer2018_desc-100Parcels7Networks"
    _dseg(folder / f"{stem}_dseg.nii.gz")
    (folder / f"{stem}_dseg.tsv").write_text(SCHAEFER_TABLE)
    return root / "templateflow"


def test_templateflow_atlas_by_name(tmp_path, monkeypatch):
    home = _templateflow_home(tmp_path)
    item = {
        "name": "Schaefer100",
        "templateflow": {
            "template": "MNI152NLin2009cAsym",
            "atlas": "Schaefer2018",
            "res": 2,
            "desc": "100Parcels7Networks",
        },
    }
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    (atlas,) = _build(atlases=[item]).atlases
    assert atlas.kind == "labels" and atlas.name == "Schaefer100"
    assert atlas.image.endswith("_desc-100Parcels7Networks_dseg.nii.gz")
    assert atlas.labels.endswith("_desc-100Parcels7Networks_dseg.tsv")
    # config templateflow_home wins over the environment
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "nowhere"))
    wrong = {**item, "templateflow": {**item["templateflow"], "desc": "400Parcels"}}
    with pytest.raises(InputError, match="templateflow") as error:
        _build(atlases=[wrong], templateflow_home=str(home))
    assert "100Parcels7Networks" in str(error.value)


def test_fmriprep_templateflow_atlas_of_another_template_is_an_error(tree, tmp_path):
    home = _templateflow_home(tmp_path, "MNI152NLin6Asym")
    item = {
        "name": "Schaefer",
        "templateflow": {"template": "MNI152NLin6Asym", "atlas": "Schaefer2018"},
    }
    with pytest.raises(InputError, match="in template MNI152NLin6Asym") as error:
        _build(
            dataset="fmriprep",
            fmriprep_dir=str(tree.root),
            templateflow_home=str(home),
            atlases=[item],
        )
    assert "space MNI152NLin2009cAsym" in str(error.value)
    assert len(str(error.value).splitlines()) == 1


def test_truth_of_names_the_generated_graph_for_the_generated_atlases_only():
    inputs = _build()
    assert inputs.truth_of("synthetic") == [inputs.paths.synthetic_atlas["truth"]]
    assert inputs.truth_of("other") == []


def test_outputs_to_request_names_others_only_when_their_job_is_complete(tmp_path):
    from sparseconn.workflow.paths import outputs_to_request

    def touch(*names: str) -> None:
        for name in names:
            (tmp_path / name).write_text("")

    done = ([str(tmp_path / "a.npz")], [str(tmp_path / f"a{k}.tsv") for k in range(3)])
    missing_anchor = ([str(tmp_path / "b.npz")], [str(tmp_path / "b0.tsv")])
    touch("a.npz", "a0.tsv", "a2.tsv", "b0.tsv")
    # job a: its anchor exists, so its one missing output is named; job b: its
    # anchor is missing (the job reruns and writes everything), so only the anchor
    assert outputs_to_request([done, missing_anchor]) == [
        str(tmp_path / "a.npz"),
        str(tmp_path / "a1.tsv"),
        str(tmp_path / "b.npz"),
    ]
    touch("a1.tsv")
    assert outputs_to_request([done]) == [str(tmp_path / "a.npz")]
