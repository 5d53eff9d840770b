"""Where we deliberately differ from nilearn 0.13.1, measured (README: "Where we
differ from nilearn, and why").

Each test computes an exact answer, then nilearn's error and ours against it, and
asserts that ours is tiny and nilearn's at least the size the README documents:
a test fails if nilearn fixes its defect (then update the README) or if we copy
it. Data: the small generated fMRIPrep tree (20 x 24 x 20 float32 voxels, 6 maps,
100 volumes) or random signals.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from sparseconn.atlas import load_atlas
from sparseconn.confounds import high_variance_confounds
from sparseconn.io import read_func_info
from sparseconn.signals import clean, extract_map_signals
from tests.fmriprep_tree import make_fmriprep_tree
from tests.nilearn_reference import clean_censored_exactly

nilearn = pytest.importorskip("nilearn")
from nilearn.image import high_variance_confounds as nilearn_hv  # noqa: E402
from nilearn.maskers import NiftiMapsMasker  # noqa: E402
from nilearn.signal import clean as nilearn_clean  # noqa: E402

pytestmark = pytest.mark.parity

#: A run of the tree with the older confounds table (no motion outlier).
SCAN = "sub-01_ses-1_task-rest_run-2_space-MNI152NLin2009cAsym_res-2"
COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf"]
CLEANING = {"detrend": True, "high_pass": 0.01, "standardize": "zscore_sample"}


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _nilearn_signals(maps, image, confounds):
    masker = NiftiMapsMasker(maps, resampling_target="maps", t_r=2.0, **CLEANING)
    return _quiet(masker.fit_transform, image, confounds=confounds)


def _error(signals, exact):
    assert signals.shape == exact.shape
    return np.abs(signals - exact).max()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One float32 run of the tree (100 volumes), its file confounds, the maps."""
    tree = make_fmriprep_tree(
        tmp_path_factory.mktemp("tree"), extra_space=None, n_volumes=100
    )
    scan = tree.scan(SCAN)
    confounds = pd.read_csv(scan.confounds, sep="\t")[COLUMNS].to_numpy()
    return scan.bold, confounds, tree.maps


def test_float32_maps_are_solved_in_float64(run, tmp_path):
    bold, confounds, maps = run
    image = nib.load(bold)
    assert image.get_data_dtype() == np.float32
    single = np.asarray(nib.load(maps).dataobj, dtype=np.float32)
    maps32 = tmp_path / "maps32.nii.gz"
    nib.save(nib.Nifti1Image(single, nib.load(maps).affine), maps32)
    # exact: the same float32 map values, solved in float64
    maps64 = nib.Nifti1Image(single.astype(np.float64), nib.load(maps).affine)
    exact = _nilearn_signals(maps64, image, confounds)
    nilearn_error = _error(_nilearn_signals(str(maps32), image, confounds), exact)
    signals, _, _ = extract_map_signals(read_func_info(bold), load_atlas(maps32))
    ours_error = _error(clean(signals, confounds, 2.0), exact)
    assert ours_error <= 1e-10
    assert nilearn_error >= 1e-5  # 3.1e-5 here; 4e-4 to 4e-3 on MSDL (ADHD)


def test_float32_images_high_variance_confounds_in_float64(run):
    bold, confounds, maps = run
    single = nib.load(bold)
    double = nib.Nifti1Image(
        np.asarray(single.dataobj, dtype=np.float64), single.affine, single.header
    )
    double.set_data_dtype(np.float64)
    exact_hv = _quiet(nilearn_hv, double)
    nilearn_hv_angle = linalg.subspace_angles(_quiet(nilearn_hv, single), exact_hv)
    ours_hv = high_variance_confounds(read_func_info(bold))
    assert linalg.subspace_angles(ours_hv, exact_hv).max() <= 1e-12
    assert nilearn_hv_angle.max() >= 1e-7  # 1.0e-6 rad here

    exact = _nilearn_signals(str(maps), double, [exact_hv, confounds])
    nilearn_error = _error(
        _nilearn_signals(str(maps), single, [_quiet(nilearn_hv, single), confounds]),
        exact,
    )
    signals, _, _ = extract_map_signals(read_func_info(bold), load_atlas(maps))
    ours = clean(signals, np.hstack([ours_hv, confounds]), 2.0)
    # We keep the resampled volumes in float32, as nilearn does for a float32
    # image: that part of the error we share with nilearn.
    shared = _nilearn_signals(str(maps), single, [exact_hv, confounds])
    assert _error(ours, shared) <= 1e-10
    ours_error = _error(ours, exact)
    assert ours_error <= 5e-6  # 3.3e-6 here, all from the float32 resampling
    assert nilearn_error >= 2e-5  # 3.2e-5 here


def test_degenerate_confound_columns_are_dropped(rng):
    signals = rng.standard_normal((176, 6)).cumsum(axis=0)
    motion = 0.1 * rng.standard_normal((176, 6)).cumsum(axis=0)
    # the ADHD regressors files' `constant` and `linearTrend` columns
    constant, trend = np.ones((176, 1)), np.arange(1.0, 177.0)[:, None]
    confounds = np.hstack([motion, constant, trend])
    # exact: both columns lie in the span that detrending removes
    exact = _quiet(nilearn_clean, signals, confounds=motion, t_r=2.0, **CLEANING)
    nilearn_error = _error(
        _quiet(nilearn_clean, signals, confounds=confounds, t_r=2.0, **CLEANING),
        exact,
    )
    ours_error = _error(clean(signals, confounds, 2.0), exact)
    assert ours_error <= 1e-10
    assert nilearn_error >= 0.1  # 0.46 here; up to 1.1 on the ADHD files


def test_censoring_at_both_ends_interpolates_the_censored_volumes(rng):
    signals = rng.standard_normal((120, 5)).cumsum(axis=0)
    confounds = rng.standard_normal((120, 4))
    # non-steady-state volumes, a motion spike inside and one at the end
    censored = np.array([0, 1, 2, 40, 41, 118, 119])
    signals[censored] += 6 * signals.std(axis=0)
    kept = np.setdiff1d(np.arange(120), censored)
    exact = _quiet(
        clean_censored_exactly, signals, confounds, kept, t_r=2.0, **CLEANING
    )
    nilearn_error = _error(
        _quiet(
            nilearn_clean,
            signals,
            confounds=confounds,
            sample_mask=kept.copy(),
            t_r=2.0,
            **CLEANING,
        ),
        exact,
    )
    ours = clean(signals, confounds, 2.0, high_pass=0.01, sample_mask=kept)
    assert _error(ours, exact) <= 1e-10
    assert nilearn_error >= 1.0  # 4.9 here


@pytest.mark.parametrize("target", ["data", "labels"])
def test_label_means_of_float32_images_in_float64(tmp_path, target):
    """nilearn averages a float32 image's voxels in float32; we average in float64.

    Exact: nilearn on a float64 copy of the same voxel values. A 20 x 24 x 20
    float32 image of values around 1000 (1 % fluctuations, as BOLD), six regions,
    the reference cleaning.
    """
    from nilearn.maskers import NiftiLabelsMasker

    from sparseconn.labels import extract_label_signals, load_label_atlas

    rng = np.random.default_rng(0)
    shape, affine = (20, 24, 20), np.diag([3.0, 3.0, 3.0, 1.0])
    data = (1000 + rng.standard_normal((*shape, 100)) * 10).astype(np.float32)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "f32.nii.gz")
    nib.save(nib.Nifti1Image(data.astype(np.float64), affine), tmp_path / "f64.nii.gz")
    labels = np.zeros(shape, np.int16)
    for k in range(6):
        labels[2 + 3 * k : 5 + 3 * k, 2:22, 2:18] = k + 1
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "labels.nii.gz")

    def nilearn_signals(image):
        masker = NiftiLabelsMasker(
            str(tmp_path / "labels.nii.gz"),
            resampling_target=target,
            t_r=2.0,
            **CLEANING,
        )
        return _quiet(masker.fit_transform, str(image))

    exact = nilearn_signals(tmp_path / "f64.nii.gz")
    theirs = nilearn_signals(tmp_path / "f32.nii.gz")
    raw = extract_label_signals(
        read_func_info(tmp_path / "f32.nii.gz"),
        load_label_atlas(tmp_path / "labels.nii.gz"),
        target,
    ).signals
    ours = clean(raw, None, 2.0, high_pass=0.01)
    assert _error(ours, exact) <= 1e-10
    assert _error(theirs, exact) >= 5e-5
