"""fMRIPrep denoising strategies: parity with nilearn (the oracle).

For every scan of the generated fMRIPrep tree (both confounds layouts) and every
strategy, our confounds, sample mask and cleaned signals equal nilearn's
``load_confounds_strategy`` + ``NiftiMapsMasker(maps, resampling_target="maps",
detrend=True, high_pass=0.01, t_r=TR, standardize="zscore_sample").fit_transform(
img, confounds=conf, sample_mask=mask)``; ``highvariance`` equals the same masker
with ``confounds=[high_variance_confounds(img), columns]`` and no mask.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from sparseconn.fmriprep import clean_scan_signals, denoise, find_scans
from tests.fmriprep_tree import make_fmriprep_tree

nilearn = pytest.importorskip("nilearn")
from nilearn.image import high_variance_confounds  # noqa: E402
from nilearn.interfaces.fmriprep import load_confounds_strategy  # noqa: E402
from nilearn.maskers import NiftiMapsMasker  # noqa: E402

pytestmark = [pytest.mark.parity, pytest.mark.slow]

TOLERANCE = 1e-4
PRESETS = ("simple", "scrubbing", "compcor")
HV_COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf"]


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
    compared = 0
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
            assert ours.signals is None and "0 of 200" in ours.excluded
            continue
        reference = _quiet(
            masker.fit_transform, str(scan.bold), confounds=confounds, sample_mask=mask
        )
        assert ours.signals.shape == reference.shape
        difference = np.abs(ours.signals - reference).max()
        assert difference <= TOLERANCE, (scan.name, difference)
        compared += 1
    assert compared >= 3


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
