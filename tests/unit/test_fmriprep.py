"""fMRIPrep derivatives: discovery, strategies, censoring (sparseconn.fmriprep)."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn.errors import InputError
from sparseconn.fmriprep import (
    STRATEGIES,
    Scan,
    _scrub_segments,
    clean_scan_signals,
    denoise,
    find_scans,
    parse_bold_name,
)
from sparseconn.regions import AtlasSpec
from sparseconn.signals import (
    CleaningSettings,
    check_sample_mask,
    clean,
    filtered_volumes,
)
from sparseconn.steps.subject import run_fmriprep_timeseries
from tests.fmriprep_tree import make_fmriprep_tree

pytest.importorskip("nilearn")  # the tree's confounds tables come with nilearn

MNI = "MNI152NLin2009cAsym"
RUN = "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_res-2"  # v21 table
OLD = "sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym_res-2"  # older table
SPIKY = "sub-01_ses-2_task-rest_run-1_space-MNI152NLin2009cAsym_res-2"
MOTION24 = [
    f"{base}{suffix}"
    for base in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
    for suffix in ("", "_derivative1", "_power2", "_derivative1_power2")
]


@pytest.fixture(scope="module")
def shared_tree(tmp_path_factory):
    return make_fmriprep_tree(tmp_path_factory.mktemp("fmriprep"))


@pytest.fixture
def tree(shared_tree, tmp_path):
    """A private copy, for tests that damage files."""
    root = tmp_path / "fmriprep"
    shutil.copytree(shared_tree.root, root)
    return root


def _scans(shared_tree):
    return {scan.name: scan for scan in find_scans(shared_tree.root)}


# ------------------------------------------------------------------ discovery


def test_find_scans_lists_every_mni_run_sorted(shared_tree):
    scans = find_scans(shared_tree.root)
    assert [s.name for s in scans] == [
        "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_res-2",
        "sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym_res-2",
        "sub-01_ses-2_task-rest_run-1_space-MNI152NLin2009cAsym_res-2",
        "sub-01_ses-2_task-rest_run-2_space-MNI152NLin2009cAsym_res-2",
        "sub-02_task-rest_space-MNI152NLin2009cAsym_res-2",
    ]
    assert [s.group_key for s in scans] == [
        "sub-01_ses-1",
        "sub-01_ses-1",
        "sub-01_ses-2",
        "sub-01_ses-2",
        "sub-02",
    ]
    first, last = scans[0], scans[-1]
    assert first.entities == (
        ("sub", "01"),
        ("ses", "1"),
        ("task", "rest"),
        ("run", "1"),
        ("space", MNI),
        ("res", "2"),
    )
    assert first.subject == "01" and first.get("run") == "1"
    assert first.confounds.name == (
        "sub-01_ses-1_task-rest_run-1_desc-confounds_timeseries.tsv"
    )
    assert last.confounds.name == "sub-02_task-rest_desc-confounds_regressors.tsv"
    assert all(s.bold.is_file() and s.confounds.is_file() for s in scans)
    assert first.confounds_json.is_file()
    assert find_scans(shared_tree.root) == scans  # deterministic


def test_scan_is_frozen_and_hashable(shared_tree):
    scan = find_scans(shared_tree.root)[0]
    with pytest.raises(AttributeError):
        scan.bold = scan.confounds  # type: ignore[misc]
    assert len({scan, find_scans(shared_tree.root)[0]}) == 1
    assert isinstance(scan, Scan)


@pytest.mark.parametrize("label", ["02", "sub-02", ["02"]])
def test_participant_label_with_or_without_prefix(shared_tree, label):
    scans = find_scans(shared_tree.root, participant_label=label)
    assert [s.name for s in scans] == [
        "sub-02_task-rest_space-MNI152NLin2009cAsym_res-2"
    ]


def test_filters_space_session_run(shared_tree):
    t1w = find_scans(shared_tree.root, space="T1w")
    assert [s.name for s in t1w] == ["sub-02_task-rest_space-T1w"]
    assert t1w[0].confounds.name == "sub-02_task-rest_desc-confounds_regressors.tsv"
    assert [s.group_key for s in find_scans(shared_tree.root, session="2")] == [
        "sub-01_ses-2",
        "sub-01_ses-2",
    ]
    runs = find_scans(shared_tree.root, run="01")  # run indices compare as numbers
    assert [s.get("ses") for s in runs] == ["1", "2"]
    assert len(find_scans(shared_tree.root, run=[1, 2], session="ses-1")) == 2
    assert len(find_scans(shared_tree.root, res="2")) == 5


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"space": "XYZ"},
            f"no scan has space-XYZ .* space labels present: {MNI}, T1w",
        ),
        ({"task": "nback"}, "no scan has task-nback .* task labels present: rest"),
        ({"session": "3"}, "no scan has ses-3 .* ses labels present: .none., 1, 2"),
        (
            {"participant_label": "02", "run": "1"},
            "no scan has run-1 .* run labels present: .none.",
        ),
        (
            {"participant_label": ["01", "07"]},
            "participant.s. 07; participants present: 01, 02",
        ),
    ],
)
def test_empty_selection_names_the_filter(shared_tree, options, expected):
    with pytest.raises(InputError, match=expected):
        find_scans(shared_tree.root, **options)


def test_missing_folder_or_no_bold(tmp_path):
    with pytest.raises(InputError, match="not found"):
        find_scans(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"no sub-.*desc-preproc_bold"):
        find_scans(tmp_path)


def test_bold_without_confounds_is_an_error(tree):
    target = next(tree.glob("sub-02/func/*_regressors.tsv"))
    target.unlink()
    with pytest.raises(InputError) as error:
        find_scans(tree)
    assert error.value.source.endswith(
        "sub-02_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz"
    )
    assert "sub-02_task-rest_desc-confounds_timeseries.tsv" in error.value.problem
    # the other participant alone is fine
    assert len(find_scans(tree, participant_label="01")) == 4


def test_two_confounds_files_is_an_error(tree):
    source = next(tree.glob("sub-02/func/*_regressors.tsv"))
    shutil.copyfile(
        source, source.with_name(source.name.replace("regressors", "timeseries"))
    )
    with pytest.raises(InputError, match="two confounds files"):
        find_scans(tree, participant_label="02")


def _copy_image(bold, **changes):
    """A copy of a BOLD image (and its JSON) under entities changed as given."""
    name = bold.name
    for key, (old, new) in changes.items():
        name = name.replace(f"_{key}-{old}_", f"_{key}-{new}_")
    copy = bold.with_name(name)
    shutil.copyfile(bold, copy)
    json_name = name.replace(".nii.gz", ".json")
    shutil.copyfile(
        bold.with_name(bold.name.replace(".nii.gz", ".json")), copy.parent / json_name
    )
    return copy


def test_one_run_at_two_resolutions_is_an_error_naming_both(tree):
    bold = next(tree.glob("sub-01/ses-1/func/*run-1*_res-2_desc-preproc_bold.nii.gz"))
    other = _copy_image(bold, res=("2", "1"))
    with pytest.raises(InputError) as error:
        find_scans(tree)
    assert error.value.source == str(other)
    assert error.value.problem == (
        f"same run (sub-01_ses-1_task-rest_run-1) as {bold.name} (res-1 and res-2): "
        "both would enter the group stage, counting the run twice; choose one with "
        "the config key res (res labels present: 1, 2)"
    )
    assert len(find_scans(tree, res="2")) == 5
    assert [s.name for s in find_scans(tree, res="res-1")] == [
        "sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym_res-1"
    ]


def test_one_run_in_two_spaces_is_an_error_naming_both(shared_tree):
    with pytest.raises(InputError) as error:
        find_scans(shared_tree.root, space=None)
    assert error.value.source.endswith(
        "sub-02_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz"
    )
    assert error.value.problem.startswith(
        "same run (sub-02_task-rest) as sub-02_task-rest_space-T1w_desc-preproc_bold"
        ".nii.gz (space-MNI152NLin2009cAsym_res-2 and space-T1w): "
    )
    assert "choose one with the config key space (space labels present: " in (
        error.value.problem
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"participant_label": 2}, ["sub-02"]),  # --config participant_label=02
        (
            {"participant_label": [1, "sub-02"]},
            ["sub-01_ses-1", "sub-01_ses-2", "sub-02"],
        ),
    ],
)
def test_numbers_name_the_label_of_that_value(shared_tree, options, expected):
    scans = find_scans(shared_tree.root, **options)
    assert sorted({s.group_key for s in scans}) == expected


def test_number_matching_two_participants_is_an_error(tree):
    source = tree / "sub-02"
    copy = tree / "sub-2"
    shutil.copytree(source, copy)
    for path in copy.glob("func/*"):
        path.rename(path.with_name(path.name.replace("sub-02", "sub-2")))
    with pytest.raises(InputError) as error:
        find_scans(tree, participant_label=2)
    assert error.value.problem.startswith(
        "participant_label 2 matches '02' and '2': --config reads 02 as the number 2"
    )
    assert len(find_scans(tree, participant_label="2")) == 1


def test_parse_bold_name():
    assert parse_bold_name(
        "sub-1_task-rest_acq-mb_run-2_space-MNI_desc-preproc_bold.nii.gz"
    ) == (("sub", "1"), ("task", "rest"), ("acq", "mb"), ("run", "2"), ("space", "MNI"))
    for bad in (
        "sub-1_task-rest_desc-confounds_timeseries.tsv",
        "task-rest_sub-1_desc-preproc_bold.nii.gz",  # out of order
        "sub-1_space-MNI_desc-preproc_bold.nii.gz",  # no task
        "sub-1_task-rest_foo-1_desc-preproc_bold.nii.gz",  # unknown entity
        "sub-1_task-re_st_desc-preproc_bold.nii.gz",
    ):
        assert parse_bold_name(bad) is None


# ------------------------------------------------------------------ strategies


def test_unknown_strategy_lists_valid_ones(shared_tree):
    scan = _scans(shared_tree)[RUN]
    with pytest.raises(InputError, match="unknown denoising strategy 'aroma'") as e:
        denoise(scan.confounds, "aroma", 30)
    for name in STRATEGIES:
        assert name in e.value.problem
    assert "ica_aroma" not in STRATEGIES


def test_row_count_mismatch_names_the_file(shared_tree, tree):
    scan = _scans(shared_tree)[RUN]
    with pytest.raises(InputError, match=r"30 rows of confounds but .* 31 volumes"):
        denoise(scan.confounds, "simple", 31)
    # a truncated table beside an intact image: clean_scan_signals says so
    table = next(tree.glob("sub-02/func/*_regressors.tsv"))
    lines = table.read_text().splitlines(keepends=True)
    table.write_text("".join(lines[:-2]))
    damaged = find_scans(tree, participant_label="02")[0]
    with pytest.raises(InputError) as error:
        clean_scan_signals(damaged.bold, shared_tree.maps, damaged.confounds)
    assert error.value.source == str(table)
    assert "28 rows of confounds but the functional image has 30" in str(error.value)


def test_missing_columns_are_named(shared_tree, tmp_path):
    scan = _scans(shared_tree)[RUN]
    table = pd.read_csv(scan.confounds, sep="\t").drop(
        columns=["trans_x", "rot_z_power2", "csf"]
    )
    path = tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError, match="trans_x, rot_z_power2 missing"):
        denoise(path, "simple", 30)
    with pytest.raises(InputError, match="csf"):
        denoise(path, "highvariance", 30, confound_columns=["csf"])
    table = pd.read_csv(scan.confounds, sep="\t").drop(columns=["csf"])
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(InputError, match="confounds JSON not found"):
        denoise(path, "compcor", 30)
    with pytest.raises(InputError, match=r"csf missing, needed by wm_csf='basic'"):
        denoise(path, "simple", 30)


def test_strategy_columns(shared_tree):
    scans = _scans(shared_tree)
    simple = denoise(scans[RUN].confounds, "simple", 30)
    expected = sorted([*MOTION24, "csf", "white_matter", "cosine00"])
    assert list(simple.confounds.columns) == expected
    scrubbing = denoise(scans[OLD].confounds, "scrubbing", 30)
    wm_csf = [
        f"{b}{s}"
        for b in ("csf", "white_matter")
        for s in ("", "_derivative1", "_power2", "_derivative1_power2")
    ]
    cosines = [f"cosine{i:02d}" for i in range(4)]
    assert list(scrubbing.confounds.columns) == sorted([*MOTION24, *wm_csf, *cosines])
    compcor = denoise(scans[OLD].confounds, "compcor", 30)
    combined = [f"a_comp_cor_{i:02d}" for i in range(57)]  # WM and CSF ones left
    assert list(compcor.confounds.columns) == sorted([*MOTION24, *cosines, *combined])
    assert denoise(scans[RUN].confounds, "compcor", 30).confounds.shape == (30, 30)
    for result in (simple, scrubbing, compcor):
        values = result.confounds.to_numpy()
        assert np.isfinite(values).all()  # first-row NaN of derivatives filled
        kept = values[result.sample_mask]
        np.testing.assert_allclose(kept.mean(axis=0), 0, atol=1e-10)  # demeaned
    assert simple.parameters == {"name": "simple", **STRATEGIES["simple"]}
    json.dumps(compcor.parameters)  # serialisable for the sidecar


def test_highvariance_takes_listed_columns_without_censoring(shared_tree):
    scan = _scans(shared_tree)[RUN]
    result = denoise(
        scan.confounds,
        "highvariance",
        30,
        confound_columns=["trans_x", "trans_x_derivative1"],
    )
    raw = pd.read_csv(scan.confounds, sep="\t")
    assert result.sample_mask is None and result.censored == []
    assert list(result.confounds.columns) == ["trans_x", "trans_x_derivative1"]
    np.testing.assert_array_equal(result.confounds["trans_x"], raw["trans_x"])
    derivative = result.confounds["trans_x_derivative1"].to_numpy()
    assert derivative[0] == derivative[1] == raw["trans_x_derivative1"][1]
    assert result.parameters["confound_columns"] == ["trans_x", "trans_x_derivative1"]
    assert list(denoise(scan.confounds, "highvariance", 30).confounds.columns) == []
    with pytest.raises(InputError, match="confound_columns are for the highvar"):
        denoise(scan.confounds, "simple", 30, confound_columns=["csf"])


def test_sample_masks(shared_tree):
    scans = _scans(shared_tree)
    v21 = denoise(scans[RUN].confounds, "simple", 30)
    assert v21.censored == [0, 1, 2]
    np.testing.assert_array_equal(v21.sample_mask, np.arange(3, 30))
    assert v21.outliers == {"non_steady_state": [0, 1, 2], "motion": []}
    old = denoise(scans[OLD].confounds, "scrubbing", 30)
    assert old.censored == [0]  # no motion outlier in that table
    spiky = denoise(scans[SPIKY].confounds, "scrubbing", 30)
    # FD spikes at 10, 13, 29: 11-12 (a 2-volume segment) censored with them
    assert spiky.censored == [0, 10, 11, 12, 13, 29]
    assert spiky.outliers["motion"] == [10, 11, 12, 13, 29]
    np.testing.assert_array_equal(
        spiky.kept, np.setdiff1d(np.arange(30), spiky.censored)
    )
    everything = denoise(scans[RUN].confounds, "scrubbing", 30)
    assert everything.censored == list(range(30))
    assert everything.sample_mask.size == 0


def test_no_outlier_column_means_no_sample_mask(shared_tree, tmp_path):
    scan = _scans(shared_tree)[OLD]
    table = pd.read_csv(scan.confounds, sep="\t").drop(
        columns=["non_steady_state_outlier00"]
    )
    path = tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    assert denoise(path, "simple", 30).sample_mask is None
    assert denoise(path, "scrubbing", 30).sample_mask is None


@pytest.mark.parametrize(
    ("outliers", "n", "expected"),
    [
        ([10], 30, [10]),
        ([3], 30, [0, 1, 2, 3]),  # leading segment shorter than 5
        ([25], 30, [25, 26, 27, 28, 29]),  # trailing segment shorter than 5
        ([10, 14], 30, [10, 11, 12, 13, 14]),  # 3-volume segment between
        ([10, 16], 30, [10, 16]),  # 5-volume segment kept
        ([10, 15], 30, [10, 11, 12, 13, 14, 15]),  # 4-volume segment censored
    ],
)
def test_scrub_segments(outliers, n, expected):
    result = _scrub_segments(np.array(outliers), n, 5)
    assert result.tolist() == expected


# ------------------------------------------------------------------ per scan


def test_entirely_censored_scan_is_reported_not_raised(shared_tree):
    scan = _scans(shared_tree)[RUN]
    result = clean_scan_signals(
        scan.bold, shared_tree.maps, scan.confounds, strategy="scrubbing"
    )
    assert result.n_kept == 0
    assert result.censored == list(range(30)) and result.n_volumes == 30
    assert "0 of 30 volumes kept" in result.excluded
    # Still cleaned, uncensored, so that it can be inspected; and said so.
    assert result.signals.shape == (30, 6) and not result.censoring_applied


def test_min_kept_fraction_excludes(shared_tree):
    scan = _scans(shared_tree)[SPIKY]
    kept = clean_scan_signals(
        scan.bold,
        shared_tree.maps,
        scan.confounds,
        labels=shared_tree.labels,
        strategy="scrubbing",
        # 30 volumes leave scrubbing's regressors no degrees of freedom; this
        # test is about the censoring fraction alone.
        cleaning=CleaningSettings(
            low_pass=None, high_pass=None, min_degrees_of_freedom=-100
        ),
    )
    assert kept.excluded is None and kept.signals.shape == (24, 6)
    assert kept.t_r == 2.0 and kept.regions == [f"R{i:02d}" for i in range(1, 7)]
    excluded = clean_scan_signals(
        scan.bold,
        shared_tree.maps,
        scan.confounds,
        strategy="scrubbing",
        cleaning=CleaningSettings(min_kept_fraction=0.9, min_degrees_of_freedom=-100),
    )
    assert excluded.n_kept == 24 and excluded.censoring_applied
    assert excluded.signals.shape == (24, 6)
    assert "24 of 30 volumes kept" in excluded.excluded and "90%" in excluded.excluded


def test_repetition_time_from_sidecar_checked_against_header(tree, shared_tree):
    scan = find_scans(tree, participant_label="02")[0]
    sidecar = scan.bold.with_name(scan.bold.name.replace(".nii.gz", ".json"))
    sidecar.write_text(json.dumps({"RepetitionTime": 2.5}))
    with pytest.raises(InputError, match=r"2\.5"):
        clean_scan_signals(scan.bold, shared_tree.maps, scan.confounds)


@pytest.fixture(scope="module")
def long_tree(tmp_path_factory):
    """The tables lengthened to 100 volumes: enough to clean with scrubbing."""
    return make_fmriprep_tree(
        tmp_path_factory.mktemp("long"), extra_space=None, n_volumes=100
    )


def _timeseries(bold, scan, tree, folder):
    """Rows and sidecar written by ``run_fmriprep_timeseries`` (scrubbing)."""
    folder.mkdir()
    out_tsv, out_json = folder / "ts.tsv", folder / "ts.json"
    run_fmriprep_timeseries(
        bold,
        scan.confounds,
        [AtlasSpec("test", str(tree.maps), str(tree.labels))],
        [out_tsv],
        [out_json],
        scan=scan.name,
        strategy="scrubbing",
    )
    rows = pd.read_csv(out_tsv, sep="\t").to_numpy()
    return rows, json.loads(out_json.read_text())


def _edited_bold(bold, folder, edit):
    """A copy of ``bold`` in ``folder`` whose (x, y, z, t) data went through edit."""
    image = nib.load(bold)
    data = edit(np.asarray(image.dataobj).copy())
    path = folder / bold.name
    nib.save(nib.Nifti1Image(data, image.affine, image.header), path)
    return path


def test_written_rows_are_exactly_the_kept_volumes_of_the_sidecar(long_tree, tmp_path):
    scan = long_tree.scan(SPIKY)
    rows, sidecar = _timeseries(scan.bold, scan, long_tree, tmp_path / "plain")
    censored = sidecar["CensoredVolumes"]
    # both ends: non-steady-state volume 0 and the last volume's FD spike
    assert censored == [0, 10, 11, 12, 13, 29, 99]
    kept = np.setdiff1d(np.arange(100), censored)
    assert rows.shape == (kept.size, 6) == (sidecar["NumberOfVolumesKept"], 6)
    assert "RowsAreVolumes" not in sidecar

    # the data of the censored volumes never reach the rows (a permutation of
    # them keeps the image's range, which bounds the resampled values)
    def permute_censored(data):
        data[..., censored] = data[..., censored[::-1]]
        return data

    permuted = _edited_bold(scan.bold, tmp_path, permute_censored)
    again, _ = _timeseries(permuted, scan, long_tree, tmp_path / "permuted")
    np.testing.assert_allclose(again, rows, rtol=0, atol=1e-8)

    # a small spike in a kept volume shows in that volume's row, near both ends
    # too (on the first and last filtered volumes, the odd padding of the
    # zero-phase filter turns a spike into a step: too faint to locate)
    for volume in (kept[1], 50, kept[-2]):

        def spike(data, volume=volume):
            data[..., volume] += 1.0
            return data

        spiked = _edited_bold(scan.bold, tmp_path, spike)
        moved, _ = _timeseries(spiked, scan, long_tree, tmp_path / f"spike{volume}")
        change = np.abs(moved - rows).max(axis=1)
        assert change.argmax() == np.searchsorted(kept, volume), volume


def test_sidecar_t_r_wins_over_a_header_without_time_unit(tree, shared_tree):
    scan = find_scans(tree, participant_label="02")[0]
    image = nib.load(scan.bold)
    header = image.header.copy()
    header.set_xyzt_units("mm", "unknown")
    header["pixdim"][4] = 1.0  # nibabel's default: states no repetition time
    nib.save(
        nib.Nifti1Image(np.asarray(image.dataobj), image.affine, header), scan.bold
    )
    result = clean_scan_signals(
        scan.bold,
        shared_tree.maps,
        scan.confounds,
        cleaning=CleaningSettings(high_pass=None),
    )
    assert result.t_r == 2.0
    assert result.t_r_source == (
        "BOLD JSON sidecar (RepetitionTime); the NIfTI header's pixdim[4] 1 was "
        "ignored: its time unit is unknown"
    )
    scan.bold.with_name(scan.bold.name.replace(".nii.gz", ".json")).unlink()
    with pytest.raises(InputError) as error:
        clean_scan_signals(scan.bold, shared_tree.maps, scan.confounds)
    assert error.value.source == str(scan.bold)
    assert "does not state its time unit (xyzt_units)" in error.value.problem
    assert error.value.problem.endswith(
        "set RepetitionTime in "
        "sub-02_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.json "
        "or t_r in the config"
    )


# ------------------------------------------------------------ signals.clean


def test_clean_with_full_mask_or_none_is_unchanged(rng):
    signals = rng.standard_normal((60, 4)).cumsum(axis=0)
    confounds = rng.standard_normal((60, 3))
    plain = clean(signals, confounds, 2.0)
    np.testing.assert_allclose(
        clean(signals, confounds, 2.0, sample_mask=np.arange(60)), plain, atol=1e-12
    )
    np.testing.assert_array_equal(
        clean(signals, confounds, 2.0, sample_mask=None), plain
    )


def test_clean_boolean_mask_equals_indices(rng):
    signals = rng.standard_normal((60, 4)).cumsum(axis=0)
    keep = np.ones(60, dtype=bool)
    keep[[0, 1, 20, 21, 22]] = False
    by_index = clean(signals, None, 2.0, sample_mask=np.flatnonzero(keep))
    np.testing.assert_array_equal(clean(signals, None, 2.0, sample_mask=keep), by_index)
    assert by_index.shape == (55, 4)


def test_clean_without_filter_censors_first(rng):
    signals = rng.standard_normal((50, 3)).cumsum(axis=0)
    confounds = rng.standard_normal((50, 2))
    kept = np.setdiff1d(np.arange(50), [0, 7, 8, 30, 49])
    ours = clean(signals, confounds, 2.0, high_pass=None, sample_mask=kept)
    np.testing.assert_allclose(
        ours, clean(signals[kept], confounds[kept], 2.0, high_pass=None), atol=1e-12
    )


def test_filtered_volumes_span_the_kept_ones_and_interpolate_the_gaps():
    span, interpolated = filtered_volumes(30, np.arange(3, 30))
    np.testing.assert_array_equal(span, np.arange(3, 30))
    assert interpolated.size == 0
    kept = np.setdiff1d(np.arange(30), [0, 10, 11, 12, 13, 29])
    span, interpolated = filtered_volumes(30, kept)
    np.testing.assert_array_equal(span, np.arange(1, 29))
    assert interpolated.tolist() == [10, 11, 12, 13]
    # a censored pair symmetric about the middle (nilearn 0.13.1 skips it)
    span, interpolated = filtered_volumes(30, np.setdiff1d(np.arange(30), [8, 21]))
    assert span.size == 30 and interpolated.tolist() == [8, 21]


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.array([], dtype=int), "every one of the 30 volumes is censored"),
        (np.array([3, 2, 5]), "strictly increasing"),
        (np.array([0, 30]), r"in \[0, 29\]"),
        (np.ones(29, dtype=bool), "boolean sample_mask of shape"),
        (np.array([0.5, 1.5]), "volume indices"),
    ],
)
def test_bad_sample_masks(mask, message):
    with pytest.raises(ValueError, match=message):
        check_sample_mask(mask, 30)
    with pytest.raises(ValueError, match=message):
        clean(np.ones((30, 2)), None, 2.0, sample_mask=mask)
