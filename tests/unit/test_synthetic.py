"""Tests of the synthetic dataset generator (sparseconn.synthetic)."""

from __future__ import annotations

import filecmp
import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from sparseconn import synthetic

# A small geometry: 12 regions on an 8 mm grid covering the whole brain.
SMALL_SHAPE = (20, 24, 18)
SMALL_AFFINE = np.array(
    [[8.0, 0, 0, -78.0], [0, 8.0, 0, -111.0], [0, 0, 8.0, -51.0], [0, 0, 0, 1.0]]
)
# The same grid with the x axis reversed (same world points, other voxel order).
FLIPPED_AFFINE = np.array(
    [[-8.0, 0, 0, 74.0], [0, 8.0, 0, -111.0], [0, 0, 8.0, -51.0], [0, 0, 0, 1.0]]
)
N_REGIONS = 12


def _atlas(directory: Path, **kwargs) -> dict[str, Path]:
    paths = {
        "maps": directory / "maps.nii.gz",
        "labels": directory / "labels.csv",
        "truth": directory / "group.npz",
    }
    options = {"n_regions": N_REGIONS, "shape": SMALL_SHAPE, "affine": SMALL_AFFINE}
    options.update(kwargs)
    synthetic.generate_atlas(paths["maps"], paths["labels"], paths["truth"], **options)
    return paths


def _subject(
    directory: Path, atlas_truth: Path, index: int, **kwargs
) -> dict[str, Path]:
    label = synthetic.subject_ids(index + 1)[index] if index >= 0 else "x"
    paths = {
        "func": directory / f"sub-{label}_bold.nii.gz",
        "confounds": directory / f"sub-{label}_confounds.tsv",
        "truth": directory / f"sub-{label}_truth.npz",
    }
    options = {
        "n_volumes": 40,
        "shape": SMALL_SHAPE,
        "affine": SMALL_AFFINE,
    }
    options.update(kwargs)
    synthetic.generate_subject(
        paths["func"],
        paths["confounds"],
        paths["truth"],
        atlas_truth_path=atlas_truth,
        subject_index=index,
        subject=label,
        **options,
    )
    return paths


def _raw_header(path: Path) -> nib.Nifti1Header:
    with gzip.open(path, "rb") as handle:
        return nib.Nifti1Header.from_fileobj(handle)


def _detrend(series: np.ndarray) -> np.ndarray:
    """Remove mean and linear trend along axis 0, shape (n, k)."""
    n = series.shape[0]
    design = np.column_stack([np.ones(n), np.arange(n, dtype=np.float64)])
    coef, *_ = np.linalg.lstsq(design, series, rcond=None)
    return series - design @ coef


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _atlas(tmp_path_factory.mktemp("atlas"))


def test_subject_ids() -> None:
    assert synthetic.subject_ids(3) == ["01", "02", "03"]
    assert synthetic.subject_ids(10)[-1] == "10"
    ids = synthetic.subject_ids(120)
    assert ids[0] == "001" and ids[-1] == "120" and len(set(ids)) == 120
    assert all(label.isalnum() for label in ids)
    assert synthetic.subject_ids(0) == []


def test_atlas_maps(atlas: dict[str, Path]) -> None:
    image = nib.load(atlas["maps"])
    assert image.shape == (*SMALL_SHAPE, N_REGIONS)
    assert image.get_data_dtype() == np.float64
    np.testing.assert_allclose(image.affine, SMALL_AFFINE)
    maps = np.asarray(image.dataobj).reshape(-1, N_REGIONS, order="F")
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    support = maps > 0
    # Every map is present and compact.
    assert support.any(axis=0).all()
    assert (support.mean(axis=0) < 0.25).all()
    # Maps overlap: each map shares voxels with at least one other map.
    shared = support.T.astype(int) @ support.astype(int)
    np.fill_diagonal(shared, 0)
    assert (shared.max(axis=1) > 0).all()
    # ... and form a well-conditioned design.
    singular = np.linalg.svd(maps, compute_uv=False)
    assert singular[0] / singular[-1] < 10.0
    # The atlas grid evaluates the same continuous maps as any other grid.
    truth = synthetic.load_group_truth(atlas["truth"])
    coords = synthetic.grid_coordinates(SMALL_SHAPE, SMALL_AFFINE)
    np.testing.assert_allclose(maps, synthetic.map_values(truth, coords))


def test_atlas_labels_and_truth(atlas: dict[str, Path]) -> None:
    labels = pd.read_csv(atlas["labels"])
    assert list(labels.columns) == ["x", "y", "z", "name", "net name"]
    assert len(labels) == N_REGIONS
    assert labels["name"].is_unique
    assert all(name.replace(" ", "").isalnum() for name in labels["name"])
    truth = synthetic.load_group_truth(atlas["truth"])
    assert list(truth["regions"]) == list(labels["name"])
    assert list(truth["networks"]) == list(labels["net name"])
    assert truth["networks"].dtype.kind == "U" and len(set(truth["networks"])) == 2
    np.testing.assert_allclose(
        labels[["x", "y", "z"]].to_numpy(), truth["centres"], atol=0.01
    )
    support = truth["support"]
    assert support.dtype == bool and support.shape == (N_REGIONS, N_REGIONS)
    assert np.array_equal(support, support.T)
    assert not support.diagonal().any()
    assert support.any(axis=1).all()
    # Sparse: a few edges per node.
    assert 1.0 <= support.sum(axis=1).mean() <= 4.0
    partial = truth["partial_correlation"]
    assert np.array_equal(partial != 0, support)


def test_determinism(tmp_path: Path) -> None:
    first = _atlas(tmp_path / "a")
    second = _atlas(tmp_path / "b")
    for key in first:
        assert filecmp.cmp(first[key], second[key], shallow=False), key
    # Subject 2 generated alone or after others: same bytes.
    alone = _subject(tmp_path / "alone", first["truth"], 2)
    for index in range(3):
        among = _subject(tmp_path / "among", second["truth"], index)
    for key in alone:
        assert filecmp.cmp(alone[key], among[key], shallow=False), key
    other = _subject(tmp_path / "other", first["truth"], 1)
    assert not filecmp.cmp(alone["func"], other["func"], shallow=False)
    # Another seed gives another dataset.
    reseeded = _atlas(tmp_path / "c", seed=1)
    assert not filecmp.cmp(first["truth"], reseeded["truth"], shallow=False)


def test_func_header_and_confounds(tmp_path: Path, atlas: dict[str, Path]) -> None:
    paths = _subject(tmp_path, atlas["truth"], 0, n_volumes=30, t_r=2.0)
    image = nib.load(paths["func"])
    assert image.shape == (*SMALL_SHAPE, 30)
    assert image.get_data_dtype() == np.int16
    np.testing.assert_allclose(image.affine, SMALL_AFFINE)
    header = _raw_header(paths["func"])
    assert header.get_xyzt_units() == ("mm", "sec")
    assert float(header["pixdim"][4]) == 2.0
    assert float(header["scl_slope"]) == 1.0 and float(header["scl_inter"]) == 0.0
    data = np.asarray(image.dataobj)
    inside = data.mean(axis=-1)
    assert 700 < np.median(inside[inside > 0]) < 1300
    assert (data[0, 0, 0] == 0).all()  # a corner, outside the head

    confounds = pd.read_csv(paths["confounds"], sep="\t")
    assert list(confounds.columns) == list(synthetic.MOTION_COLUMNS)
    assert len(confounds) == 30
    assert np.isfinite(confounds.to_numpy()).all()
    assert np.abs(confounds[["trans_x", "trans_y", "trans_z"]].to_numpy()).max() < 5.0
    assert np.abs(confounds[["rot_x", "rot_y", "rot_z"]].to_numpy()).max() < 0.1

    three = _subject(tmp_path / "three", atlas["truth"], 0, n_file_confounds=3)
    confounds = pd.read_csv(three["confounds"], sep="\t")
    assert list(confounds.columns) == ["trans_x", "trans_y", "trans_z"]
    assert len(confounds) == 40


def test_float32_flipped_and_partial_fov(
    tmp_path: Path, atlas: dict[str, Path]
) -> None:
    plain = _subject(tmp_path / "plain", atlas["truth"], 0)
    as_float = _subject(tmp_path / "float", atlas["truth"], 0, dtype="float32")
    stored = nib.load(as_float["func"])
    assert stored.get_data_dtype() == np.float32
    reference = np.asarray(nib.load(plain["func"]).dataobj).astype(np.float32)
    np.testing.assert_array_equal(np.rint(np.asarray(stored.dataobj)), reference)

    # x-flipped affine: the same world, voxels stored in the other x order.
    flipped = _subject(tmp_path / "flipped", atlas["truth"], 0, affine=FLIPPED_AFFINE)
    image = nib.load(flipped["func"])
    np.testing.assert_allclose(image.affine, FLIPPED_AFFINE)
    np.testing.assert_array_equal(np.asarray(image.dataobj)[::-1], reference)

    # A field of view covering only the lower part of the brain.
    partial = _subject(tmp_path / "partial", atlas["truth"], 0, shape=(20, 24, 8))
    data = np.asarray(nib.load(partial["func"]).dataobj)
    assert data.shape == (20, 24, 8, 40)
    np.testing.assert_array_equal(
        (data != 0).any(axis=-1), (reference[:, :, :8] != 0).any(axis=-1)
    )


def test_invalid_arguments(tmp_path: Path, atlas: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="dtype"):
        _subject(tmp_path, atlas["truth"], 0, dtype="float64")
    with pytest.raises(ValueError, match="n_file_confounds"):
        _subject(tmp_path, atlas["truth"], 0, n_file_confounds=7)
    with pytest.raises(ValueError, match="subject_index"):
        _subject(tmp_path, atlas["truth"], -1)
    assert not list(tmp_path.glob("*.nii.gz"))


def test_subject_ground_truth(tmp_path: Path, atlas: dict[str, Path]) -> None:
    group = synthetic.load_group_truth(atlas["truth"])
    support = group["support"]
    off_diagonal = ~np.eye(N_REGIONS, dtype=bool)
    precisions = []
    for index in range(3):
        truth = np.load(
            _subject(tmp_path, atlas["truth"], index, n_volumes=20)["truth"]
        )
        covariance, precision = truth["covariance"], truth["precision"]
        assert str(truth["subject"]) == synthetic.subject_ids(index + 1)[index]
        assert covariance.dtype == precision.dtype == np.float64
        np.testing.assert_allclose(np.diag(covariance), 1.0)
        np.testing.assert_allclose(covariance, covariance.T)
        np.testing.assert_allclose(precision, precision.T)
        np.testing.assert_allclose(
            precision @ covariance, np.eye(N_REGIONS), atol=1e-10
        )
        eigenvalues = np.linalg.eigvalsh(precision)
        assert eigenvalues[0] > 0 and eigenvalues[-1] / eigenvalues[0] < 30
        # Exactly zero off the group support, clearly non-zero on it.
        assert (precision[off_diagonal & ~support] == 0).all()
        scale = np.sqrt(np.diag(precision))
        partial = -precision / np.outer(scale, scale)
        assert np.abs(partial[support]).min() > 0.1
        assert np.abs(partial[support]).max() < 0.7
        # Same sign pattern as the group.
        assert np.array_equal(
            np.sign(partial[support]), np.sign(group["partial_correlation"][support])
        )
        assert truth["timeseries"].shape == (20, N_REGIONS)
        precisions.append(precision)
    assert not np.allclose(precisions[0], precisions[1])


def test_region_signals_are_recoverable(tmp_path: Path, atlas: dict[str, Path]) -> None:
    """Least-squares map signals, after removing the true nuisances, match z(t)."""
    paths = _subject(tmp_path, atlas["truth"], 0, n_volumes=200)
    data = np.asarray(nib.load(paths["func"]).dataobj, dtype=np.float64)
    data = data.reshape(-1, 200, order="F")
    maps = np.asarray(nib.load(atlas["maps"]).dataobj, dtype=np.float64)
    maps = maps.reshape(-1, N_REGIONS, order="F")
    signals = np.linalg.lstsq(maps, data, rcond=None)[0].T  # (200, p)
    truth = np.load(paths["truth"])
    nuisance = np.column_stack(
        [
            np.ones(200),
            np.arange(200.0),
            truth["drifts"],
            truth["motion"],
            truth["physio"],
        ]
    )
    projector = np.linalg.lstsq(nuisance, np.eye(200), rcond=None)[0]
    cleaned = signals - nuisance @ (projector @ signals)
    expected = truth["timeseries"] - nuisance @ (projector @ truth["timeseries"])
    for region in range(N_REGIONS):
        r = np.corrcoef(cleaned[:, region], expected[:, region])[0, 1]
        assert r > 0.9, (region, r)
    # The sample covariance of the signals approaches the true covariance.
    sample = np.corrcoef(truth["timeseries"].T)
    assert np.abs(sample - truth["covariance"]).max() < 0.35


@pytest.mark.slow
def test_high_variance_spectrum_default_geometry(tmp_path: Path) -> None:
    """The 2 % highest-variance voxels have well-separated top-5 eigenvalues."""
    group = tmp_path / "group.npz"
    # Only the group truth matters to the subject; a coarse atlas grid is enough.
    synthetic.generate_atlas(
        tmp_path / "maps.nii.gz",
        tmp_path / "labels.csv",
        group,
        shape=SMALL_SHAPE,
        affine=SMALL_AFFINE,
    )
    func = tmp_path / "func.nii.gz"
    synthetic.generate_subject(
        func,
        tmp_path / "confounds.tsv",
        tmp_path / "truth.npz",
        atlas_truth_path=group,
        subject_index=0,
        subject="01",
    )
    image = nib.load(func)
    assert image.shape == (*synthetic.DEFAULT_FUNC_SHAPE, 176)
    np.testing.assert_allclose(image.affine, synthetic.DEFAULT_FUNC_AFFINE)
    series = np.asarray(image.dataobj, dtype=np.float32).reshape(-1, 176).T
    series = series[:, (series != 0).any(axis=0)].astype(np.float64)
    n_total = int(np.prod(synthetic.DEFAULT_FUNC_SHAPE))
    # Voxels that are zero throughout rank lowest: percentile over all voxels.
    power = (_detrend(series) ** 2).mean(axis=0)
    n_keep = n_total - int(np.ceil(0.98 * n_total))
    kept = _detrend(series[:, np.argsort(power)[-n_keep:]])
    eigenvalues = np.linalg.eigvalsh(kept @ kept.T)[::-1][:7]
    ratios = eigenvalues[:5] / eigenvalues[1:6]
    assert (ratios >= 1.2).all(), eigenvalues
    assert eigenvalues[5] / eigenvalues[6] >= 1.2, eigenvalues
