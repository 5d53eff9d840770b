"""High-variance confounds (sparseconn.confounds)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import linalg

from sparseconn import io
from sparseconn.atlas import load_atlas
from sparseconn.confounds import (
    HighVarianceCollector,
    high_variance_confounds,
    high_variance_confounds_from_array,
)
from sparseconn.io import read_func_info
from sparseconn.signals import extract_map_signals
from tests.helpers import count_reads, make_func, make_maps


def _brute_force(series, n_confounds=5, percentile=2.0):
    """The definition, written plainly: SVD of the detrended top-variance series."""
    t = np.arange(series.shape[0], dtype=float)
    design = np.column_stack([np.ones_like(t), t])
    residual = series - design @ np.linalg.lstsq(design, series, rcond=None)[0]
    variance = (residual**2).mean(axis=0)
    kept = residual[:, variance > np.percentile(variance, 100 - percentile)]
    left, _, _ = np.linalg.svd(kept, full_matrices=False)
    return left[:, :n_confounds]


def test_matches_the_definition(rng):
    n_samples, n_voxels = 80, 3000
    latent = rng.standard_normal((n_samples, 6)) * [9, 7, 5, 4, 3, 1]
    loadings = np.zeros((6, n_voxels))
    loadings[:, :200] = rng.standard_normal((6, 200))
    series = latent @ loadings + rng.standard_normal((n_samples, n_voxels))
    series += 0.05 * np.arange(n_samples)[:, None] + 10
    got = high_variance_confounds_from_array(series)
    assert got.shape == (n_samples, 5)
    np.testing.assert_allclose(got.T @ got, np.eye(5), atol=1e-10)
    angles = linalg.subspace_angles(got, _brute_force(series))
    assert angles.max() < 1e-8


def test_confounds_are_orthogonal_to_mean_and_trend(rng):
    series = rng.standard_normal((50, 500)) + np.linspace(0, 5, 50)[:, None]
    got = high_variance_confounds_from_array(series, n_confounds=3, percentile=10)
    design = np.column_stack([np.ones(50), np.arange(50.0)])
    assert np.abs(design.T @ got).max() < 1e-10


# int16, float32: kept at stored precision; float64: a second pass for the kept voxels
@pytest.mark.parametrize("dtype", ["int16", "float32", "float64"])
def test_from_file_equals_from_array(tmp_path, rng, dtype):
    data = make_func(tmp_path / "func.nii.gz", rng, dtype=dtype, n_volumes=30)
    info = read_func_info(tmp_path / "func.nii.gz")
    got = high_variance_confounds(info, n_confounds=4, percentile=10)
    # voxel values are read as float32, float64 images as float64 (as the
    # extraction reads them)
    series = data.reshape(-1, data.shape[3], order="F").T.astype(info.float_dtype)
    expected = high_variance_confounds_from_array(series, 4, 10)
    assert linalg.subspace_angles(got, expected).max() < 1e-8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percentile": 0}, "percentile"),
        ({"n_confounds": 0}, "n_confounds"),
        ({"n_confounds": 5, "percentile": 0.1}, "fewer than"),
    ],
)
def test_rejects_bad_parameters(rng, kwargs, message):
    with pytest.raises(ValueError, match=message):
        high_variance_confounds_from_array(rng.standard_normal((20, 600)), **kwargs)


@pytest.mark.parametrize("dtype", ["int16", "float32", "float64"])
def test_one_read_gives_confounds_and_signals(tmp_path, rng, monkeypatch, dtype):
    """The extraction's pass feeds the collector: the file is decompressed once."""
    make_func(tmp_path / "func.nii.gz", rng, dtype=dtype, n_volumes=30)
    make_maps(tmp_path / "maps.nii.gz", rng)
    info = read_func_info(tmp_path / "func.nii.gz")
    atlas = load_atlas(tmp_path / "maps.nii.gz")
    expected_confounds = high_variance_confounds(info, n_confounds=4, percentile=10)
    expected_signals = extract_map_signals(info, atlas).signals

    reads = count_reads(monkeypatch)
    collector = HighVarianceCollector(info, n_confounds=4, percentile=10)
    signals = extract_map_signals(info, atlas, on_chunk=collector.add).signals
    confounds = collector.confounds()
    # 8-byte images keep no copy: a second read gathers the kept voxels only
    assert len(reads) == (2 if dtype == "float64" else 1)
    np.testing.assert_array_equal(signals, expected_signals)
    np.testing.assert_allclose(confounds, expected_confounds, rtol=0, atol=1e-12)


def test_collector_needs_every_volume(tmp_path, rng):
    make_func(tmp_path / "func.nii.gz", rng, n_volumes=20)
    info = read_func_info(tmp_path / "func.nii.gz")
    collector = HighVarianceCollector(info, n_confounds=3, percentile=10)
    for start, raw in io.iter_volume_chunks(info, 8):
        if start == 0:
            collector.add(start, raw)
    with pytest.raises(RuntimeError, match="8 of the 20 volumes"):
        collector.confounds()


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("given", ["float32", "float64"])
def test_only_the_voxels_that_move_are_stored_and_the_kept_series_are_exact(
    tmp_path, rng, dtype, given
):
    """Background voxels are never copied; a voxel that starts moving late, or
    moves in one chunk only, is rebuilt exactly (its other values: the first)
    and its sums start when it moves; with the chunks' values given as float32
    (as ``to_float`` gives them) or float64 (as the extraction's pass does)."""
    data = np.zeros((10, 9, 8, 30))
    data[2:8, 2:7, 2:6] = 100 + 20 * rng.standard_normal((6, 5, 4, 30))
    data[0, 0, 0, 17:] = 500 + 300 * rng.standard_normal(13)  # late mover
    data[9, 8, 7, 11] = -400  # one volume only
    data = np.round(data) if dtype == "int16" else data
    nib.save(nib.Nifti1Image(data.astype(dtype), np.eye(4)), tmp_path / "f.nii.gz")
    info = read_func_info(tmp_path / "f.nii.gz")
    series = data.reshape(-1, 30, order="F").T.astype(dtype).astype(np.float64)
    collector = HighVarianceCollector(info, n_confounds=3, percentile=10)
    for start, raw in io.iter_volume_chunks(info, 4):
        collector.add(start, raw, info.to_float(raw).astype(given))
    assert collector._moved.sum() == 6 * 5 * 4 + 2
    stored = sum(values.size for _, _, values in collector._chunks)
    assert stored < series.size / 3
    everything = np.arange(info.n_voxels)
    np.testing.assert_array_equal(
        info.to_float(collector._stored_series(everything)), series
    )
    expected = high_variance_confounds_from_array(series, 3, 10)
    got = collector.confounds()
    # same subspace as the definition on the whole array
    np.testing.assert_allclose(np.abs(got.T @ expected), np.eye(3), atol=1e-10)


def test_chunks_of_any_sizes_give_the_same_confounds(tmp_path, rng):
    """Chunks may grow (buffers follow), voxels may start moving in any chunk."""
    data = np.zeros((8, 7, 6, 30))
    data[1:7, 1:6, 1:5] = 100 + 20 * rng.standard_normal((6, 5, 4, 30))
    data[0, 0, 0, 9:] = 300 + 50 * rng.standard_normal(21)  # moves in a later chunk
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "f.nii.gz")
    info = read_func_info(tmp_path / "f.nii.gz")
    expected = high_variance_confounds(info, n_confounds=3, percentile=10)
    raw = np.concatenate([raw for _, raw in io.iter_volume_chunks(info, 30)])
    collector = HighVarianceCollector(info, n_confounds=3, percentile=10)
    for start, stop in [(0, 1), (1, 5), (5, 12), (12, 13), (13, 30)]:
        chunk = raw[start:stop]
        collector.add(start, chunk, info.to_float(chunk).astype(np.float64))
    np.testing.assert_allclose(collector.confounds(), expected, rtol=0, atol=1e-12)
