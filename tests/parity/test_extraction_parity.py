"""Per-subject parity with nilearn (the oracle): high-variance confounds and signals.

nilearn computes ``NiftiMapsMasker(maps, resampling_target="maps", detrend=True,
high_pass=0.01, t_r=TR, standardize="zscore_sample").transform(func,
confounds=[high_variance_confounds(func), confounds_file])``; we run the workflow's
own task functions on the same generated subject and compare what they wrote.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from sparseconn import synthetic
from sparseconn.regions import AtlasSpec
from sparseconn.steps.subject import run_extract_timeseries

nilearn = pytest.importorskip("nilearn")
from nilearn.image import high_variance_confounds as nilearn_hv  # noqa: E402
from nilearn.maskers import NiftiMapsMasker  # noqa: E402

pytestmark = [pytest.mark.parity, pytest.mark.slow]

TOLERANCE = 1e-4


def _affine(diagonal, origin, rotation_deg=0.0):
    affine = np.diag([*diagonal, 1.0])
    if rotation_deg:
        angle = np.deg2rad(rotation_deg)
        rotation = np.array(
            [
                [1, 0, 0],
                [0, np.cos(angle), -np.sin(angle)],
                [0, np.sin(angle), np.cos(angle)],
            ]
        )
        affine[:3, :3] = rotation @ affine[:3, :3]
    affine[:3, 3] = origin
    return affine


CASES = {
    "tr2.5-176vol-6conf": {},
    "tr2.0-150vol-3conf": {"t_r": 2.0, "n_volumes": 150, "n_file_confounds": 3},
    "x-flipped": {"affine": _affine([-3, 3, 3], [90, -126, -72])},
    "partial-fov": {
        "shape": (61, 40, 36),
        "affine": _affine([3, 3, 3], [-90, -100, -30]),
        "n_volumes": 150,
    },
    "oblique-float32": {
        "affine": _affine([3, 3, 3], [-90, -120, -80], rotation_deg=6),
        "n_volumes": 120,
        "dtype": "float32",
        "n_file_confounds": 3,
    },
}


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    folder = tmp_path_factory.mktemp("atlas")
    paths = {
        "maps": folder / "maps.nii.gz",
        "labels": folder / "labels.csv",
        "truth": folder / "truth.npz",
    }
    synthetic.generate_atlas(paths["maps"], paths["labels"], paths["truth"], seed=3)
    return paths


@pytest.mark.parametrize("case", sorted(CASES), ids=sorted(CASES))
def test_signals_and_confounds_equal_nilearn(tmp_path, atlas, case):
    options = {"t_r": 2.5, **CASES[case]}
    func, confounds_file = tmp_path / "func.nii.gz", tmp_path / "confounds.tsv"
    synthetic.generate_subject(
        func,
        confounds_file,
        tmp_path / "truth.npz",
        atlas_truth_path=atlas["truth"],
        subject_index=sorted(CASES).index(case),
        subject="01",
        seed=3,
        **options,
    )
    hv_file, out_tsv = tmp_path / "hv.tsv", tmp_path / "ts.tsv"
    run_extract_timeseries(
        func,
        [AtlasSpec("synthetic", str(atlas["maps"]), str(atlas["labels"]))],
        [confounds_file],
        [out_tsv],
        [tmp_path / "ts.json"],
        hv_file,
        subject="01",
        config_t_r=options["t_r"],
    )
    ours_hv = pd.read_csv(hv_file, sep="\t").to_numpy()
    ours = pd.read_csv(out_tsv, sep="\t").to_numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_hv = nilearn_hv(str(func))
        masker = NiftiMapsMasker(
            str(atlas["maps"]),
            resampling_target="maps",
            detrend=True,
            high_pass=0.01,
            t_r=options["t_r"],
            standardize="zscore_sample",
        )
        reference = masker.fit_transform(
            str(func), confounds=[reference_hv, str(confounds_file)]
        )

    assert ours_hv.shape == reference_hv.shape
    assert linalg.subspace_angles(ours_hv, reference_hv).max() <= TOLERANCE
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= TOLERANCE
    # the images really were what the case says
    image = nib.load(func)
    assert image.shape[3] == options.get("n_volumes", 176)


def test_float32_maps_are_solved_in_double_precision(tmp_path, atlas):
    """With float32 maps nilearn solves the least squares in single precision.

    We always solve in double precision, so our signals equal nilearn's computed
    on a float64 copy of the same maps (and are closer to it than nilearn's own
    float32 result is).
    """
    image = nib.load(atlas["maps"])
    maps32 = tmp_path / "maps32.nii.gz"
    nib.save(
        nib.Nifti1Image(image.get_fdata().astype(np.float32), image.affine), maps32
    )
    func, confounds_file = tmp_path / "func.nii.gz", tmp_path / "confounds.tsv"
    synthetic.generate_subject(
        func,
        confounds_file,
        tmp_path / "truth.npz",
        atlas_truth_path=atlas["truth"],
        subject_index=9,
        subject="01",
        seed=3,
        n_volumes=100,
    )
    hv_file, out_tsv = tmp_path / "hv.tsv", tmp_path / "ts.tsv"
    run_extract_timeseries(
        func,
        [AtlasSpec("synthetic", str(maps32))],
        [],
        [out_tsv],
        [tmp_path / "ts.json"],
        hv_file,
        subject="01",
    )
    ours = pd.read_csv(out_tsv, sep="\t").to_numpy()
    confounds = pd.read_csv(hv_file, sep="\t").to_numpy()
    single = nib.load(maps32)
    double = nib.Nifti1Image(np.asarray(single.dataobj, np.float64), single.affine)
    results = {}
    for name, maps in (("float64", double), ("float32", single)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            masker = NiftiMapsMasker(
                maps,
                resampling_target="maps",
                detrend=True,
                high_pass=0.01,
                t_r=2.5,
                standardize="zscore_sample",
            )
            results[name] = masker.fit_transform(str(func), confounds=[confounds])
    ours_error = np.abs(ours - results["float64"]).max()
    assert ours_error <= TOLERANCE
    assert ours_error < np.abs(results["float32"] - results["float64"]).max()
