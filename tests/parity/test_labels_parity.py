"""Label-atlas extraction against nilearn's ``NiftiLabelsMasker`` (the oracle).

nilearn computes ``NiftiLabelsMasker(labels_img, resampling_target=target,
detrend=False, standardize=False).fit_transform(func)``; we compare it with
:func:`sparseconn.labels.extract_label_signals` on generated images.
"""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn.io import read_func_info
from sparseconn.labels import extract_label_signals, load_label_atlas
from sparseconn.regions import AtlasSpec
from sparseconn.steps.subject import run_extract_timeseries
from tests.helpers import make_func

nilearn = pytest.importorskip("nilearn")
from nilearn.maskers import NiftiLabelsMasker  # noqa: E402

pytestmark = [pytest.mark.parity]

TOLERANCE = 1e-5
GAPPED_VALUES = (1, 2, 5, 1000)


def _affine(diagonal, origin):
    affine = np.diag([*diagonal, 1.0])
    affine[:3, 3] = origin
    return affine


def _write_labels(path, affine, shape=(15, 16, 13), values=GAPPED_VALUES):
    """Blocks of labels ``values`` tiling the grid along x, background borders."""
    image = np.zeros(shape, dtype=np.int32)
    edges = np.linspace(1, shape[0] - 1, len(values) + 1).round().astype(int)
    for value, low, high in zip(values, edges[:-1], edges[1:], strict=True):
        image[low:high, 2:-2, 2:-2] = value
    nib.save(nib.Nifti1Image(image, affine), path)


# Labels at 2 mm on a 30 x 32 x 26 mm box from (-14, -16, -12); each func case
# sets its grid in world space against it.
LABELS_AFFINE = _affine([2, 2, 2], [-14, -16, -12])
CASES = {
    "same-grid": {"shape": (15, 16, 13), "affine": LABELS_AFFINE},
    "func-3mm": {"shape": (11, 12, 10), "affine": _affine([3, 3, 3], [-15, -17, -14])},
    "x-flipped": {"shape": (11, 12, 10), "affine": _affine([-3, 3, 3], [16, -17, -14])},
    # x from -15 to 3 mm only: the regions at larger x are cut or missed entirely
    "fov-cuts-regions": {
        "shape": (7, 12, 10),
        "affine": _affine([3, 3, 3], [-15, -17, -14]),
    },
}


def _nilearn_signals(func, labels, target):
    masker = NiftiLabelsMasker(
        str(labels), resampling_target=target, detrend=False, standardize=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = masker.fit_transform(str(func))
    region_ids = masker.region_ids_
    keys = sorted(key for key in region_ids if key != "background")
    ids = [region_ids[key] for key in keys]
    return np.asarray(signals, dtype=np.float64), [int(i) for i in ids]


def _assert_close(ours, theirs):
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE * scale)


@pytest.mark.parametrize("target", ["data", "labels"])
@pytest.mark.parametrize("case", sorted(CASES), ids=sorted(CASES))
def test_signals_equal_nilearn(tmp_path, rng, case, target):
    func, labels = tmp_path / "func.nii.gz", tmp_path / "labels.nii.gz"
    make_func(func, rng, n_volumes=12, **CASES[case])
    _write_labels(labels, LABELS_AFFINE)
    atlas = load_label_atlas(labels)
    ours = extract_label_signals(read_func_info(func), atlas, resampling_target=target)
    theirs, ids = _nilearn_signals(func, labels, target)
    # nilearn drops the regions resampling removed; we keep them at 0
    kept = [list(atlas.values).index(i) for i in ids]
    _assert_close(ours.signals[:, kept], theirs)
    dropped = sorted(set(range(atlas.n_regions)) - set(kept))
    assert np.all(ours.signals[:, dropped] == 0)
    assert np.all(ours.coverage[dropped] == 0)


def test_fov_cut_coverage_and_dropped_region(tmp_path, rng):
    """A func whose field of view misses label 1000 and cuts label 5."""
    func, labels = tmp_path / "func.nii.gz", tmp_path / "labels.nii.gz"
    make_func(func, rng, n_volumes=8, **CASES["fov-cuts-regions"])
    _write_labels(labels, LABELS_AFFINE)
    atlas = load_label_atlas(labels)
    info = read_func_info(func)
    for target in ("data", "labels"):
        ours = extract_label_signals(info, atlas, resampling_target=target)
        assert ours.coverage[:2].tolist() == [1.0, 1.0]
        assert 0 < ours.coverage[2] < 1
        assert ours.coverage[3] == 0
        assert np.all(ours.signals[:, 3] == 0)
    _, ids = _nilearn_signals(func, labels, "data")
    assert ids == [1, 2, 5]


def test_table_label_absent_from_image(tmp_path, rng):
    """A table row whose label is not in the image: dropped, as nilearn drops it."""
    func, labels = tmp_path / "func.nii.gz", tmp_path / "labels.nii.gz"
    table = tmp_path / "labels.tsv"
    make_func(func, rng, n_volumes=10, **CASES["func-3mm"])
    _write_labels(labels, LABELS_AFFINE)
    pd.DataFrame(
        {"index": [1, 2, 3, 5, 1000], "name": ["a", "b", "absent", "e", "z"]}
    ).to_csv(table, sep="\t", index=False)
    atlas = load_label_atlas(labels, table)
    assert atlas.names == ["a", "b", "e", "z"]
    for target in ("data", "labels"):
        ours = extract_label_signals(
            read_func_info(func), atlas, resampling_target=target
        )
        masker = NiftiLabelsMasker(
            str(labels),
            lut=pd.read_csv(table, sep="\t"),
            resampling_target=target,
            detrend=False,
            standardize=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = masker.fit_transform(str(func))
        assert list(masker.region_names_.values()) == ["a", "b", "e", "z"]
        _assert_close(ours.signals, theirs)


def test_spline_overshoot_clipped_as_nilearn(tmp_path, rng):
    """Steps in the data make the spline overshoot: clipped as nilearn clips."""
    func, labels = tmp_path / "func.nii.gz", tmp_path / "labels.nii.gz"
    data = (rng.random((11, 12, 10, 9)) > 0.5) * 10.0
    data[0, 0, 0, 8] = 1000.0  # the last volume widens the range
    affine = CASES["x-flipped"]["affine"]
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), func)
    _write_labels(labels, LABELS_AFFINE)
    atlas = load_label_atlas(labels)
    ours = extract_label_signals(read_func_info(func), atlas, "labels")
    theirs, ids = _nilearn_signals(func, labels, "labels")
    assert ids == list(atlas.values)
    _assert_close(ours.signals, theirs)


#: Cleaned signals (z-scored): compared on an absolute scale.
CLEANED_TOLERANCE = 1e-6


#: Tables of the cleaned parity test: one with a label the image lacks (3), one
#: lacking a label of the image (5, named "5" by us, "unknown" by nilearn).
TABLES = {
    "table-extra-label": ([1, 2, 3, 5, 1000], ["a", "b", "absent", "e", "z"]),
    "table-missing-label": ([1, 2, 1000], ["a", "b", "z"]),
}


@pytest.mark.parametrize("table_case", sorted(TABLES))
@pytest.mark.parametrize("target", ["data", "labels"])
@pytest.mark.parametrize("case", ["x-flipped", "fov-cuts-regions"])
def test_cleaned_signals_equal_nilearn(tmp_path, rng, case, target, table_case):
    """The whole per-scan step with a label atlas, against nilearn's masker.

    ``run_extract_timeseries`` (high-variance confounds, extraction, detrend,
    high-pass, confound regression, z-score) against ``NiftiLabelsMasker`` with
    the same cleaning and our high-variance confounds file as its confounds
    (as written, so both regress the same numbers); label values with gaps; a
    table with a label the image lacks, or lacking one the image has.
    """
    func, labels = tmp_path / "func.nii.gz", tmp_path / "labels.nii.gz"
    table = tmp_path / "labels.tsv"
    # float64 data: nilearn averages float32 data in float32 (README: deviation 5)
    make_func(func, rng, n_volumes=60, dtype="float64", **CASES[case])
    _write_labels(labels, LABELS_AFFINE)
    index, names = TABLES[table_case]
    pd.DataFrame({"index": index, "name": names}).to_csv(table, sep="\t", index=False)
    out_tsv, hv = tmp_path / "ts.tsv", tmp_path / "hv.tsv"
    spec = AtlasSpec("test", str(labels), str(table), "labels", target)
    run_extract_timeseries(
        func, [spec], [], [out_tsv], [tmp_path / "ts.json"], hv, subject="01"
    )
    ours = pd.read_csv(out_tsv, sep="\t")
    expected_names = {
        "table-extra-label": ["a", "b", "e", "z"],
        "table-missing-label": ["a", "b", "5", "z"],
    }[table_case]
    assert list(ours.columns) == expected_names
    masker = NiftiLabelsMasker(
        str(labels),
        lut=pd.read_csv(table, sep="\t"),
        resampling_target=target,
        detrend=True,
        high_pass=0.01,
        t_r=2.5,
        standardize="zscore_sample",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = masker.fit_transform(str(func), confounds=str(hv))
    # compare by label value: nilearn names labels missing from its table otherwise
    ids = sorted(int(v) for k, v in masker.region_ids_.items() if k != "background")
    columns = [list(GAPPED_VALUES).index(value) for value in ids]
    np.testing.assert_allclose(
        ours.to_numpy()[:, columns], theirs, rtol=0, atol=CLEANED_TOLERANCE
    )
    if case == "fov-cuts-regions":
        # 1000 is outside the field of view: nilearn drops it on the data grid
        assert ids == [1, 2, 5, 1000][: 3 if target == "data" else 4]
        sidecar = json.loads((tmp_path / "ts.json").read_text())
        assert sidecar["RegionsOutsideFieldOfView"] == ["z"]
