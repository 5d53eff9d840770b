"""fMRIPrep denoising strategies: parity with nilearn (the oracle).

For every scan of the generated fMRIPrep tree (both confounds layouts) and every
strategy, our confounds, sample mask and cleaned signals equal nilearn's
``load_confounds_strategy`` + ``NiftiMapsMasker(maps, resampling_target="maps",
detrend=True, high_pass=0.01, t_r=TR, standardize="zscore_sample").fit_transform(
img, confounds=conf, sample_mask=mask)``; ``highvariance`` equals the same masker
with ``confounds=[high_variance_confounds(img), columns]`` and no mask.

Where nilearn 0.13.1 censors wrongly (volumes censored at both ends of a run: it
interpolates the mirror image of the kept volumes), the reference is nilearn's
cleaning with its interpolation corrected (``tests.nilearn_reference``), and the
test checks that nilearn's own answer is far from it.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from sparseconn.fmriprep import clean_scan_signals, denoise, find_scans
from sparseconn.signals import clean
from tests.fmriprep_tree import make_fmriprep_tree
from tests.nilearn_reference import clean_censored_exactly

nilearn = pytest.importorskip("nilearn")
from nilearn.image import high_variance_confounds  # noqa: E402
from nilearn.interfaces.fmriprep import load_confounds_strategy  # noqa: E402
from nilearn.maskers import NiftiMapsMasker  # noqa: E402
from nilearn.signal import clean as nilearn_clean  # noqa: E402

pytestmark = [pytest.mark.parity, pytest.mark.slow]

TOLERANCE = 1e-4
PRESETS = ("simple", "scrubbing", "compcor")
HV_COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf"]
CLEANING = {"detrend": True, "high_pass": 0.01, "standardize": "zscore_sample"}


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _masker(tree):
    return NiftiMapsMasker(
        str(tree.maps),
        resampling_target="maps",
        detrend=True,
        high_pass=0.01,
        t_r=2.0,
        standardize="zscore_sample",
    )


def _extractor(tree):
    """The same masker without cleaning: nilearn's region signals as extracted."""
    return NiftiMapsMasker(str(tree.maps), resampling_target="maps")


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory):
    """The real 30-volume tables: confounds and masks only (too short to clean)."""
    return make_fmriprep_tree(tmp_path_factory.mktemp("real"), extra_space=None)


@pytest.fixture(scope="module")
def long_tree(tmp_path_factory):
    """The tables lengthened to 200 volumes: signals can be compared."""
    return make_fmriprep_tree(
        tmp_path_factory.mktemp("long"), extra_space=None, n_volumes=200
    )


@pytest.mark.parametrize("strategy", PRESETS)
def test_confounds_and_sample_mask_equal_nilearn(real_tree, strategy):
    for scan in find_scans(real_tree.root):
        ours = denoise(scan.confounds, strategy, 30)
        confounds, mask = _quiet(
            load_confounds_strategy, str(scan.bold), denoise_strategy=strategy
        )
        assert list(ours.confounds.columns) == list(confounds.columns), scan.name
        if mask is None:
            assert ours.sample_mask is None
        else:
            np.testing.assert_array_equal(ours.sample_mask, mask)
            assert ours.censored == sorted(set(range(30)) - set(mask.tolist()))
        if ours.sample_mask is None or ours.sample_mask.size:
            np.testing.assert_allclose(
                ours.confounds.to_numpy(), confounds.to_numpy(), rtol=0, atol=1e-8
            )


@pytest.mark.parametrize("strategy", PRESETS)
def test_signals_equal_nilearn(long_tree, strategy):
    masker = _masker(long_tree)
    compared = both_ends = 0
    for scan in find_scans(long_tree.root):
        ours = clean_scan_signals(
            scan.bold,
            long_tree.maps,
            scan.confounds,
            labels=long_tree.labels,
            strategy=strategy,
        )
        confounds, mask = _quiet(
            load_confounds_strategy, str(scan.bold), denoise_strategy=strategy
        )
        if mask is not None:
            np.testing.assert_array_equal(ours.kept, mask)
            assert ours.censored == sorted(set(range(200)) - set(mask.tolist()))
        if mask is not None and mask.size == 0:
            # v21 table: scrubbing censors every volume; nilearn raises.
            # (ours: left out of the group, written uncensored for inspection)
            assert not ours.censoring_applied and "0 of 200" in ours.excluded
            continue
        reference = _quiet(
            masker.fit_transform, str(scan.bold), confounds=confounds, sample_mask=mask
        )
        if mask is not None and mask[0] > 0 and mask[-1] < 199:
            # censored at both ends (the spiky table under scrubbing): nilearn
            # filters rows of censored volumes and returns shifted rows
            extracted = _quiet(_extractor(long_tree).fit_transform, str(scan.bold))
            exact = _quiet(
                clean_censored_exactly,
                extracted,
                confounds.to_numpy(),
                mask,
                t_r=2.0,
                **CLEANING,
            )
            assert np.abs(reference - exact).max() >= 1.0, scan.name
            reference = exact
            both_ends += 1
        assert ours.signals.shape == reference.shape
        difference = np.abs(ours.signals - reference).max()
        assert difference <= TOLERANCE, (scan.name, difference)
        compared += 1
    assert compared >= 3
    assert both_ends == (strategy == "scrubbing")


def test_highvariance_equals_nilearn(long_tree):
    masker = _masker(long_tree)
    for scan in find_scans(long_tree.root):
        ours = clean_scan_signals(
            scan.bold,
            long_tree.maps,
            scan.confounds,
            labels=long_tree.labels,
            strategy="highvariance",
            confound_columns=HV_COLUMNS,
        )
        assert ours.censored == [] and ours.n_kept == 200
        assert ours.confound_names[5:] == HV_COLUMNS
        # nilearn computes the high-variance confounds in the image's precision
        # (float32 here: ~1e-6 off in subspace angle); we compute in float64, so
        # the reference is nilearn's on a float64 copy of the image.
        image = nib.load(scan.bold)
        double = nib.Nifti1Image(np.asarray(image.dataobj, np.float64), image.affine)
        hv = _quiet(high_variance_confounds, double)
        single = _quiet(high_variance_confounds, str(scan.bold))
        assert linalg.subspace_angles(hv, single).max() < 1e-4
        table = denoise(
            scan.confounds, "highvariance", 200, confound_columns=HV_COLUMNS
        ).confounds
        raw = pd.read_csv(scan.confounds, sep="\t")[HV_COLUMNS].to_numpy()
        np.testing.assert_array_equal(table.to_numpy(), raw)  # the file's values
        reference = _quiet(masker.fit_transform, str(scan.bold), confounds=[hv, raw])
        assert np.abs(ours.signals - reference).max() <= TOLERANCE


#: Censored volumes of 120 for which nilearn 0.13.1 interpolates the right ones:
#: at one end only, or inside without two of them symmetric about the middle.
ONE_SIDED = {
    "start": [0, 1, 2],
    "end": [117, 118, 119],
    "inside": [30, 31, 32, 70],
    "start-and-inside": [0, 1, 30, 31, 32, 70],
    "inside-and-end": [30, 31, 32, 70, 119],
}


@pytest.mark.parametrize("case", sorted(ONE_SIDED), ids=sorted(ONE_SIDED))
def test_censoring_where_nilearn_is_right_equals_nilearn(rng, case):
    signals = rng.standard_normal((120, 5)).cumsum(axis=0)
    confounds = rng.standard_normal((120, 4))
    censored = np.array(ONE_SIDED[case])
    signals[censored] += 10 * signals.std(axis=0)  # motion artefacts
    kept = np.setdiff1d(np.arange(120), censored)
    reference = _quiet(
        nilearn_clean,
        signals,
        confounds=confounds,
        sample_mask=kept.copy(),
        t_r=2.0,
        **CLEANING,
    )
    ours = clean(signals, confounds, 2.0, high_pass=0.01, sample_mask=kept)
    assert ours.shape == reference.shape == (kept.size, 5)
    assert np.abs(ours - reference).max() <= 1e-10
    # the corrected reference used where nilearn is wrong agrees here too
    exact = _quiet(
        clean_censored_exactly, signals, confounds, kept, t_r=2.0, **CLEANING
    )
    assert np.abs(exact - reference).max() <= 1e-10
