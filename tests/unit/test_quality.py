"""Results that would mean nothing are never written silently (issue 13, 3/7/10).

Degrees of freedom left by cleaning, recorded and enforced; constant (dropout)
volumes censored; warnings in the sidecars and in the scans' QC table; BIDS entity
order and source URIs.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn.atlas import load_atlas
from sparseconn.bids import bids_uri, output_name
from sparseconn.errors import InputError
from sparseconn.fmriprep import exclusion_reason
from sparseconn.io import read_func_info
from sparseconn.regions import AtlasSpec
from sparseconn.signals import (
    CleaningSettings,
    clean,
    clean_with_report,
    extract_map_signals,
    filter_degrees_of_freedom,
)
from sparseconn.steps.describe import run_scan_qc
from sparseconn.steps.subject import run_extract_timeseries
from tests.helpers import make_func, make_maps, write_table

N_VOLUMES = 80


@pytest.fixture
def scan(tmp_path, rng):
    """A small 4D image, its atlas and a 6-column motion-like confounds file."""
    func = tmp_path / "func.nii.gz"
    make_func(func, rng, n_volumes=N_VOLUMES)
    maps = tmp_path / "maps.nii.gz"
    make_maps(maps, rng)
    motion = pd.DataFrame(
        rng.standard_normal((N_VOLUMES, 6)).cumsum(axis=0),
        columns=[f"m{i}" for i in range(6)],
    )
    confounds = write_table(tmp_path / "confounds.tsv", motion)
    return func, maps, confounds


#: High-variance confounds the extraction computes and regresses (its default).
HIGH_VARIANCE = 5


def _extract(scan, tmp_path, confounds=None, **settings):
    func, maps, default_confounds = scan
    out_tsv, out_json = tmp_path / "out.tsv", tmp_path / "out.json"
    run_extract_timeseries(
        func,
        [AtlasSpec("test", str(maps))],
        [default_confounds] if confounds is None else confounds,
        [out_tsv],
        [out_json],
        tmp_path / "hv.tsv",
        subject="01",
        **settings,
    )
    return pd.read_csv(out_tsv, sep="\t"), json.loads(out_json.read_text())


# ---------------------------------------------------------- degrees of freedom


@pytest.mark.parametrize(
    ("n", "t_r", "high", "low"),
    [(176, 2.5, 0.01, None), (100, 2.0, 0.01, 0.1), (31, 0.8, 0.008, 0.2)],
)
def test_filter_degrees_of_freedom_counts_the_fourier_basis(n, t_r, high, low):
    frequencies = np.fft.rfftfreq(n, d=t_r)[1:]
    outside = (frequencies < high) | (low is not None and frequencies > low)
    nyquist = n % 2 == 0
    expected = 2 * outside.sum() - (1 if nyquist and outside[-1] else 0)
    assert filter_degrees_of_freedom(n, t_r, high, low) == expected


def test_176_volumes_at_2_5_s_lose_8_degrees_of_freedom_to_a_0_01_hz_high_pass():
    # frequencies k / 440 s below 0.01 Hz: k = 1..4, two each (sine and cosine)
    assert filter_degrees_of_freedom(176, 2.5, 0.01, None) == 8
    assert filter_degrees_of_freedom(176, 2.5, None, None) == 0


def test_clean_reports_what_each_step_took(rng):
    signals = rng.standard_normal((120, 3))
    confounds = np.hstack(
        [
            rng.standard_normal((120, 4)),
            np.ones((120, 1)),  # constant: nothing left after detrending
            np.arange(120.0)[:, None],  # linear trend: likewise
        ]
    )
    result = clean_with_report(signals, confounds, 2.0, high_pass=0.01)
    assert result.degenerate_confounds == [4, 5]
    dof = result.degrees_of_freedom
    assert dof == {
        "Volumes": 120,
        "Detrending": 2,
        "Filter": filter_degrees_of_freedom(120, 2.0, 0.01, None),
        "Confounds": 4,
        "Remaining": 120 - 2 - dof["Filter"] - 4,
    }
    np.testing.assert_array_equal(
        result.signals, clean(signals, confounds, 2.0, high_pass=0.01)
    )


def test_censored_cleaning_counts_the_kept_volumes(rng):
    signals = rng.standard_normal((100, 2))
    kept = np.r_[0:40, 45:100]
    result = clean_with_report(signals, None, 2.0, sample_mask=kept)
    assert result.signals.shape == (95, 2)
    assert result.degrees_of_freedom["Volumes"] == 95
    assert result.degrees_of_freedom["Confounds"] == 0


def test_more_regressors_than_volumes_is_an_error_naming_the_image(scan, tmp_path, rng):
    # 205 confound columns for 80 volumes: the "cleaned" signals would be noise.
    many = pd.DataFrame(
        rng.standard_normal((N_VOLUMES, 205)), columns=[f"c{i}" for i in range(205)]
    )
    path = write_table(tmp_path / "many.tsv", many)
    with pytest.raises(InputError, match="min_degrees_of_freedom 10") as error:
        _extract(scan, tmp_path, confounds=[path])
    assert str(scan[0]) in str(error.value)
    assert "exclude the subject" in str(error.value)
    assert not (tmp_path / "out.tsv").exists()
    assert not (tmp_path / "out.json").exists()


def test_the_sidecar_records_degrees_of_freedom_and_warns_when_low(scan, tmp_path, rng):
    table, sidecar = _extract(scan, tmp_path)
    dof = sidecar["DegreesOfFreedom"]
    assert dof["Volumes"] == N_VOLUMES == len(table)
    # the 5 high-variance confounds of the image, then the file's 6 columns
    assert dof["Confounds"] == HIGH_VARIANCE + 6 and dof["Detrending"] == 2
    assert dof["Remaining"] == N_VOLUMES - 2 - dof["Filter"] - HIGH_VARIANCE - 6
    assert sidecar["Warnings"] == []
    # 40 regressors for 80 volumes: allowed, but the sidecar says so.
    forty = pd.DataFrame(
        rng.standard_normal((N_VOLUMES, 40)), columns=[f"c{i}" for i in range(40)]
    )
    path = write_table(tmp_path / "forty.tsv", forty)
    _, sidecar = _extract(scan, tmp_path, confounds=[path])
    assert sidecar["DegreesOfFreedom"]["Confounds"] == HIGH_VARIANCE + 40
    assert any("degrees of freedom" in w for w in sidecar["Warnings"])


def test_degenerate_confound_columns_are_listed_in_the_sidecar(scan, tmp_path, rng):
    frame = pd.DataFrame(
        {
            "constant": np.ones(N_VOLUMES),
            "linearTrend": np.arange(N_VOLUMES, dtype=float),
            "motion": rng.standard_normal(N_VOLUMES),
        }
    )
    path = write_table(tmp_path / "regressors.tsv", frame)
    _, sidecar = _extract(scan, tmp_path, confounds=[path])
    assert sidecar["ConfoundsDropped"] == ["constant", "linearTrend"]
    assert sidecar["DegreesOfFreedom"]["Confounds"] == HIGH_VARIANCE + 1
    assert any("constant, linearTrend" in w for w in sidecar["Warnings"])


def test_exclusion_reason_by_censoring_and_by_degrees_of_freedom():
    limits = CleaningSettings(high_pass=0.01, low_pass=None, detrend=True)
    assert exclusion_reason(176, 170, 20, 2.5, limits) is None
    assert "fewer than min_volumes 50%" in exclusion_reason(176, 80, 20, 2.5, limits)
    # 158 kept volumes at TR 2 (316 s): 2 detrending, 6 filter (k / 316 s < 0.01
    # Hz for k = 1..3), 150 regressors
    reason = exclusion_reason(158, 158, 150, 2.0, limits)
    assert "leave 0 degrees of freedom" in reason
    assert "min_degrees_of_freedom 10" in reason


# -------------------------------------------------------------- dropout volumes


def test_constant_volumes_are_found_in_the_streamed_pass(tmp_path, rng):
    func = tmp_path / "func.nii.gz"
    data = make_func(func, rng, n_volumes=30)
    data[..., [4, 5, 20]] = 0.0
    data[..., 9] = 7.0
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.diag([3.0] * 3 + [1])), func)
    make_maps(tmp_path / "maps.nii.gz", rng)
    info = read_func_info(func, min_volumes=3)
    _, _, constant = extract_map_signals(info, load_atlas(tmp_path / "maps.nii.gz"))
    assert constant.tolist() == [4, 5, 9, 20]


def test_dropout_volumes_are_censored_and_said(scan, tmp_path, rng):
    func, maps, confounds = scan
    image = nib.load(func)
    data = np.asarray(image.dataobj, dtype=np.float32)
    dropouts = [30, 31, 32, 33, 34]
    data[..., dropouts] = 0.0
    dropped = tmp_path / "dropout.nii.gz"
    nib.save(nib.Nifti1Image(data, image.affine, image.header), dropped)
    table, sidecar = _extract((dropped, maps, confounds), tmp_path)
    kept = np.setdiff1d(np.arange(N_VOLUMES), dropouts)
    assert len(table) == kept.size
    assert sidecar["CensoredVolumes"] == dropouts
    assert sidecar["CensoringReasons"] == {"constant_volume": dropouts}
    assert sidecar["NumberOfVolumesKept"] == kept.size
    assert any("constant volume" in w for w in sidecar["Warnings"])
    # Equal to cleaning the raw signals with those volumes censored.
    info = read_func_info(dropped)
    signals, _, _ = extract_map_signals(info, load_atlas(maps))
    regressors = [
        pd.read_csv(path, sep="\t") for path in (tmp_path / "hv.tsv", confounds)
    ]
    expected = clean(
        signals,
        np.hstack([table.to_numpy() for table in regressors]),
        2.5,
        sample_mask=kept,
    )
    np.testing.assert_allclose(table.to_numpy(), expected, atol=1e-10)


def test_a_scan_mostly_dropped_out_is_an_error(scan, tmp_path):
    func, maps, confounds = scan
    image = nib.load(func)
    data = np.asarray(image.dataobj, dtype=np.float32)
    data[..., 10:60] = 0.0
    dropped = tmp_path / "dropout.nii.gz"
    nib.save(nib.Nifti1Image(data, image.affine, image.header), dropped)
    with pytest.raises(InputError, match="50 of 80 volumes are constant"):
        _extract((dropped, maps, confounds), tmp_path)
    assert not (tmp_path / "out.tsv").exists()


# ------------------------------------------------------------- QC table, BIDS


def test_scan_qc_lists_every_scan_with_its_reason_and_warnings(tmp_path):
    sidecars = []
    for name, extra in (
        ("sub-01", {"Warnings": ["a", "b"], "DegreesOfFreedom": {"Remaining": 50}}),
        ("sub-02", {"ExcludedFromGroup": "0 of 30 volumes kept"}),
        ("sub-03", {"ConfoundsDropped": ["constant"]}),
    ):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"NumberOfVolumes": 30, **extra}))
        sidecars.append(path)
    out = tmp_path / "qc.tsv"
    run_scan_qc(
        sidecars,
        ["sub-01", "sub-02", "sub-03"],
        {"sub-03": "excluded in the subjects sheet"},
        out,
    )
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert table["included"].tolist() == [True, False, False]
    assert table["reason"].tolist() == [
        "",
        "0 of 30 volumes kept",
        "excluded in the subjects sheet",
    ]
    assert table["warnings"].tolist() == ["a | b", "", ""]
    assert table["degrees_of_freedom"].tolist() == ["50", "", ""]
    assert table["confounds_dropped"].tolist() == [0, 0, 1]


@pytest.mark.parametrize(
    ("stem", "entities", "expected"),
    [
        (
            "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_res-2",
            {"atlas": "MSDL"},
            "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_atlas-MSDL_res-2",
        ),
        (
            "sub-01_task-rest_space-T1w_den-91k",
            {"atlas": "A", "stat": "precision", "desc": "groupsparse"},
            "sub-01_task-rest_space-T1w_atlas-A_den-91k_stat-precision_desc-groupsparse",
        ),
        ("sub-01", {"desc": "x", "atlas": "A"}, "sub-01_atlas-A_desc-x"),
    ],
)
def test_output_names_follow_the_bids_schema_order(stem, entities, expected):
    assert output_name(stem, "", **entities) == expected
    assert output_name(stem, "relmat.tsv", **entities) == f"{expected}_relmat.tsv"


def test_sources_are_bids_uris_of_the_deepest_linked_dataset(tmp_path):
    links = {"": str(tmp_path / "results"), "data": str(tmp_path), "atlas": "atl"}
    assert (
        bids_uri(tmp_path / "results/sub-01/func/x.tsv", links)
        == "bids::sub-01/func/x.tsv"
    )
    assert (
        bids_uri(tmp_path / "sub-01/bold.nii.gz", links)
        == "bids:data:sub-01/bold.nii.gz"
    )
    assert bids_uri("atl/maps.nii.gz", links) == "bids:atlas:maps.nii.gz"
    assert (
        bids_uri("/elsewhere/file.nii", {"data": str(tmp_path)})
        == "/elsewhere/file.nii"
    )


def test_timing_fields_follow_bep012():
    from sparseconn.steps.subject import timing_fields

    assert timing_fields(2.5, np.arange(10)) == {
        "SamplingFrequency": 0.4,
        "StartTime": 0.0,
    }
    # the first two volumes censored: the first row is volume 2
    assert timing_fields(2.0, np.arange(2, 10)) == {
        "SamplingFrequency": 0.5,
        "StartTime": 4.0,
    }
