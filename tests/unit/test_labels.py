"""Label atlases (sparseconn.labels): loading, kind detection, region-mean signals."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from sparseconn.confounds import HighVarianceCollector, high_variance_confounds
from sparseconn.errors import InputError
from sparseconn.io import read_func_info
from sparseconn.labels import atlas_kind, extract_label_signals, load_label_atlas
from tests.helpers import count_reads, make_func, make_maps

AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])


def _labels_image(shape=(9, 10, 8)) -> np.ndarray:
    """Four regions with gapped values 1, 2, 5, 1000, slabs along x."""
    image = np.zeros(shape, dtype=np.int16)
    image[0:2, 1:-1, 1:-1] = 1
    image[2:4, 1:-1, 1:-1] = 2
    image[4:6, 1:-1, 1:-1] = 5
    image[6:9, 1:-1, 1:-1] = 1000
    return image


def _save(path, data, affine=AFFINE):
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


# ------------------------------------------------------------------ loading


def test_templateflow_table(tmp_path):
    image = _save(tmp_path / "dseg.nii.gz", _labels_image())
    table = tmp_path / "dseg.tsv"
    table.write_text(
        "index\tname\tnetwork\tcolor\n"
        "0\tBackground\t\t#000000\n"
        "1000\tVis_1\tVisual\t#ff0000\n"
        "1\tSomMot_1\tSomMot\t#00ff00\n"
        "2\tDefault_1\tDefault\t#0000ff\n"
        "5\tDefault_2\tDefault\t#0000ff\n"
    )
    atlas = load_label_atlas(image, table)
    assert atlas.values.tolist() == [1, 2, 5, 1000]
    assert atlas.names == ["SomMot_1", "Default_1", "Default_2", "Vis_1"]
    networks = ["SomMot", "Default", "Default", "Visual"]
    assert atlas.labels["network"].tolist() == networks
    assert atlas.image.dtype == np.int64


def test_csv_table_in_label_order(tmp_path):
    image = _save(tmp_path / "labels.nii.gz", _labels_image().astype(np.float32))
    table = tmp_path / "labels.csv"
    table.write_text("name,net name\nA,N1\nB,N1\nC,N2\nD,N2\n")
    atlas = load_label_atlas(image, table)
    assert atlas.values.tolist() == [1, 2, 5, 1000]
    assert atlas.names == ["A", "B", "C", "D"]
    assert atlas.labels["network"].tolist() == ["N1", "N1", "N2", "N2"]


def test_csv_table_with_wrong_row_count(tmp_path):
    image = _save(tmp_path / "labels.nii.gz", _labels_image())
    table = tmp_path / "labels.csv"
    table.write_text("name\nA\nB\n")
    with pytest.raises(InputError, match="2 label rows for an atlas of 4"):
        load_label_atlas(image, table)


def test_no_table_names_from_values(tmp_path):
    atlas = load_label_atlas(_save(tmp_path / "labels.nii", _labels_image()))
    assert atlas.names == ["1", "2", "5", "1000"]
    assert atlas.values.tolist() == [1, 2, 5, 1000]


def test_table_and_image_disagree(tmp_path, caplog):
    """Table-only labels are dropped, image-only labels kept and named by value."""
    image = _save(tmp_path / "labels.nii.gz", _labels_image())
    table = tmp_path / "labels.tsv"
    table.write_text("index\tname\n1\tone\n3\tthree\n5\tfive\n1000\tbig\n")
    with caplog.at_level(logging.WARNING):
        atlas = load_label_atlas(image, table)
    assert atlas.names == ["one", "2", "five", "big"]
    assert "[3] are not in the image" in caplog.text
    assert "[2] are not in the table" in caplog.text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("index\tname\n3\tx\n4\ty\n", "no 'index' of the table is a label"),
        ("index\tname\n1\tx\n1\ty\n", "repeated 'index' values [1]"),
        ("index\tname\n1.5\tx\n", "'index' values must be integers"),
        ("index\tlabel\n1\tx\n", "need a 'name' column"),
    ],
)
def test_bad_tables(tmp_path, content, problem):
    image = _save(tmp_path / "labels.nii.gz", _labels_image())
    table = tmp_path / "labels.tsv"
    table.write_text(content)
    with pytest.raises(InputError) as error:
        load_label_atlas(image, table)
    assert problem in str(error.value)
    assert str(error.value).startswith(str(table))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (np.zeros((4, 4, 4, 3), dtype=np.float32), "must be a 3D image"),
        (np.full((4, 4, 4), np.nan, dtype=np.float32), "NaN"),
        (np.full((4, 4, 4), 1.5, dtype=np.float32), "non-integer values"),
        (np.zeros((4, 4, 4), dtype=np.int16), "no region"),
    ],
    ids=["4D", "NaN", "non-integral", "empty"],
)
def test_bad_images(tmp_path, data, problem):
    image = _save(tmp_path / "labels.nii.gz", data)
    with pytest.raises(InputError) as error:
        load_label_atlas(image)
    assert problem in str(error.value)
    assert str(error.value).startswith(str(image))
    assert "\n" not in str(error.value)


def test_atlas_kind(tmp_path, rng):
    assert atlas_kind(_save(tmp_path / "int.nii.gz", _labels_image())) == "labels"
    floats = _labels_image().astype(np.float64)
    assert atlas_kind(_save(tmp_path / "float.nii.gz", floats)) == "labels"
    make_maps(tmp_path / "maps.nii.gz", rng)
    assert atlas_kind(tmp_path / "maps.nii.gz") == "maps"
    probabilities = _save(tmp_path / "prob.nii.gz", floats / 3)
    with pytest.raises(InputError, match="non-integer values"):
        atlas_kind(probabilities)
    not_nifti = tmp_path / "atlas.nii.gz"
    not_nifti.write_text("not an image")
    with pytest.raises(InputError, match="not a readable NIfTI image"):
        atlas_kind(not_nifti)


# --------------------------------------------------------------- extraction


@pytest.mark.parametrize("target", ["data", "labels"])
def test_means_and_coverage_on_a_cut_field_of_view(tmp_path, rng, target):
    """Same grid, func cut at x = 5: region 5 half covered, region 1000 missed."""
    data = make_func(tmp_path / "func.nii.gz", rng, shape=(5, 10, 8), n_volumes=6)
    atlas = load_label_atlas(_save(tmp_path / "labels.nii.gz", _labels_image()))
    result = extract_label_signals(
        read_func_info(tmp_path / "func.nii.gz"), atlas, resampling_target=target
    )
    np.testing.assert_array_equal(result.coverage, [1.0, 1.0, 0.5, 0.0])
    image = atlas.image[:5]
    for column, value in enumerate([1, 2]):
        expected = data[image == value].mean(axis=0)
        np.testing.assert_allclose(result.signals[:, column], expected, rtol=1e-12)
    inside = data[image == 5].mean(axis=0)
    # "data" averages the covered voxels; "labels" counts the others as 0 (nilearn)
    factor = 1.0 if target == "data" else 0.5
    np.testing.assert_allclose(result.signals[:, 2], factor * inside, rtol=1e-12)
    assert np.all(result.signals[:, 3] == 0)


def test_region_lost_by_nearest_neighbour(tmp_path, rng):
    """A region no func voxel samples ("data" target) has coverage 0 and signal 0."""
    make_func(tmp_path / "func.nii.gz", rng, n_volumes=4)
    image = np.zeros((25, 28, 22), dtype=np.int16)
    image[:, :, :12] = 1
    image[4, 4, 16] = 2  # 1 mm voxel between the 3 mm func voxels
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    atlas = load_label_atlas(_save(tmp_path / "labels.nii.gz", image, affine))
    info = read_func_info(tmp_path / "func.nii.gz")
    result = extract_label_signals(info, atlas, "data")
    assert result.coverage.tolist() == [1.0, 0.0]
    assert np.all(result.signals[:, 1] == 0)
    assert extract_label_signals(info, atlas, "labels").coverage.tolist() == [1, 1]


def test_no_overlap_is_an_error(tmp_path, rng):
    make_func(tmp_path / "func.nii.gz", rng, n_volumes=4)
    far = AFFINE.copy()
    far[:3, 3] = 500.0
    atlas = load_label_atlas(_save(tmp_path / "labels.nii.gz", _labels_image(), far))
    with pytest.raises(InputError, match="does not overlap any region"):
        extract_label_signals(read_func_info(tmp_path / "func.nii.gz"), atlas)


def test_labels_target_clips_to_the_whole_scan_range(tmp_path, rng):
    """Spline overshoots are clipped to the scan's range, whatever the chunking.

    Steps of height 10 make the cubic spline overshoot below 0 (clipped) and
    above 10; the last volume widens the range to 1000, so the overshoots above
    10 seen in earlier chunks must not be clipped.
    """
    func = tmp_path / "func.nii.gz"
    data = (rng.random((9, 10, 8, 9)) > 0.5) * 10.0
    data[0, 0, 0, 8] = 1000.0
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), func)
    labels_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    labels_affine[:3, 3] = [1.0, 2.0, 1.0]
    atlas = load_label_atlas(
        _save(tmp_path / "labels.nii.gz", _labels_image((12, 13, 11)), labels_affine)
    )
    transform = np.linalg.inv(AFFINE) @ labels_affine
    expected = np.empty((9, 4))
    for volume in range(9):
        resampled = ndimage.affine_transform(
            data[..., volume],
            np.diag(transform[:3, :3]),
            offset=transform[:3, 3],
            output_shape=atlas.image.shape,
            order=3,
        ).clip(0.0, 1000.0)
        for column, value in enumerate(atlas.values):
            expected[volume, column] = resampled[atlas.image == value].mean()
    info = read_func_info(func)
    for chunk_volumes in (1, 4, 9):
        result = extract_label_signals(info, atlas, "labels", chunk_volumes)
        np.testing.assert_allclose(result.signals, expected, rtol=1e-12)


@pytest.mark.parametrize("target", ["data", "labels"])
def test_one_read_gives_confounds_and_signals(tmp_path, rng, monkeypatch, target):
    """on_chunk is called as extract_map_signals calls it: one decompression."""
    make_func(tmp_path / "func.nii.gz", rng, n_volumes=30)
    atlas = load_label_atlas(_save(tmp_path / "labels.nii.gz", _labels_image()))
    info = read_func_info(tmp_path / "func.nii.gz")
    expected_confounds = high_variance_confounds(info, n_confounds=4, percentile=10)
    expected_signals = extract_label_signals(info, atlas, target).signals

    reads = count_reads(monkeypatch)
    collector = HighVarianceCollector(info, n_confounds=4, percentile=10)
    starts = []

    def on_chunk(start, raw, volumes):
        starts.append(start)
        assert volumes.dtype == np.float64
        np.testing.assert_array_equal(volumes, info.to_float(raw))
        collector.add(start, raw, volumes)

    signals = extract_label_signals(info, atlas, target, on_chunk=on_chunk).signals
    assert len(reads) == 1
    assert starts == list(range(0, 30, 4))
    np.testing.assert_array_equal(signals, expected_signals)
    np.testing.assert_allclose(
        collector.confounds(), expected_confounds, rtol=0, atol=1e-12
    )
