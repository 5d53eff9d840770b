"""Resampling, least-squares extraction and cleaning (sparseconn.signals)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy import signal as sp_signal
from scipy.interpolate import CubicSpline

from sparseconn import signals as signals_module
from sparseconn.atlas import load_atlas
from sparseconn.errors import InputError
from sparseconn.io import read_func_info
from sparseconn.signals import (
    Resampler,
    VolumeStream,
    butterworth_sos,
    clean,
    confound_basis,
    detrend,
    extract_map_signals,
)
from tests.helpers import make_func, make_maps


def _affine(scale, origin, rotation_deg=0.0):
    affine = np.diag([*scale, 1.0])
    if rotation_deg:
        angle = np.deg2rad(rotation_deg)
        rot = np.array(
            [
                [np.cos(angle), -np.sin(angle), 0],
                [np.sin(angle), np.cos(angle), 0],
                [0, 0, 1],
            ]
        )
        affine[:3, :3] = rot @ affine[:3, :3]
    affine[:3, 3] = origin
    return affine


@pytest.mark.parametrize(
    ("source_affine", "separable"),
    [
        (_affine([3, 3, 3], [-2, -3, -1]), True),
        (_affine([-3, 3, 3], [25, -3, -1]), True),  # x flipped
        (_affine([3, 3, 3], [-2, -3, -1], rotation_deg=7), False),  # oblique
    ],
)
def test_resampler_equals_scipy_affine_transform(rng, source_affine, separable):
    source_shape, target_shape = (9, 11, 8), (7, 8, 6)
    target_affine = _affine([4, 4, 4], [0, 0, 0])
    resampler = Resampler.between(
        source_affine, source_shape, target_affine, target_shape
    )
    assert (resampler.axes is not None) == separable
    volumes = rng.standard_normal((3, np.prod(source_shape)))
    transform = np.linalg.inv(source_affine) @ target_affine
    for i, volume in enumerate(volumes):
        expected = ndimage.affine_transform(
            volume.reshape(source_shape, order="F"),
            transform[:3, :3],
            offset=transform[:3, 3],
            output_shape=target_shape,
            order=3,
        )
        got = resampler.apply(volumes)[i].reshape(target_shape, order="F")
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_covered_marks_target_voxels_inside_the_source_grid():
    resampler = Resampler.between(
        _affine([4, 4, 4], [8, 0, 0]),
        (3, 8, 6),
        _affine([4, 4, 4], [0, 0, 0]),
        (7, 8, 6),
    )
    covered = resampler.covered()
    assert covered[2:5].all()
    assert not covered[:2].any() and not covered[5:].any()


def test_extract_map_signals_recovers_mixture_on_the_atlas_grid(tmp_path, rng):
    maps = make_maps(tmp_path / "maps.nii.gz", rng)
    truth = rng.standard_normal((30, maps.shape[3]))
    data = 50.0 + np.einsum("xyzr,tr->xyzt", maps, truth)
    import nibabel as nib

    image = nib.Nifti1Image(data, np.diag([4.0, 4.0, 4.0, 1.0]))
    nib.save(image, tmp_path / "func.nii.gz")
    info = read_func_info(tmp_path / "func.nii.gz")
    atlas = load_atlas(tmp_path / "maps.nii.gz")
    signals, coverage, _ = extract_map_signals(info, atlas)
    baseline = np.linalg.lstsq(
        maps.reshape(-1, maps.shape[3]), np.full(maps[..., 0].size, 50.0), rcond=None
    )[0]
    np.testing.assert_allclose(signals - baseline, truth, atol=1e-4)
    np.testing.assert_allclose(coverage, 1.0)


def test_extract_map_signals_rejects_func_outside_the_atlas(tmp_path, rng):
    make_maps(tmp_path / "maps.nii.gz", rng)
    far = _affine([3, 3, 3], [500, 500, 500])
    make_func(tmp_path / "func.nii.gz", rng, affine=far)
    info = read_func_info(tmp_path / "func.nii.gz")
    with pytest.raises(InputError, match="does not overlap"):
        extract_map_signals(info, load_atlas(tmp_path / "maps.nii.gz"))


def test_detrend_removes_mean_and_linear_trend(rng):
    ramp = np.arange(50.0)
    series = np.column_stack([3 + 0.5 * ramp, rng.standard_normal(50)])
    out = detrend(series)
    np.testing.assert_allclose(out[:, 0], 0, atol=1e-12)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    assert abs(np.corrcoef(out[:, 1], ramp)[0, 1]) < 1e-12


def test_clean_follows_detrend_filter_regress_zscore(rng):
    n = 120
    signals = rng.standard_normal((n, 4)).cumsum(axis=0)
    confounds = rng.standard_normal((n, 2))
    got = clean(signals, confounds, t_r=2.0, high_pass=0.01)
    sos = sp_signal.butter(5, 0.01, "high", output="sos", fs=0.5)
    filtered = sp_signal.sosfiltfilt(sos, detrend(signals), axis=0)
    conf = sp_signal.sosfiltfilt(sos, detrend(confounds), axis=0)
    conf -= conf.mean(axis=0)
    q, _ = np.linalg.qr(conf)
    expected = filtered - q @ (q.T @ filtered)
    expected = (expected - expected.mean(0)) / expected.std(0, ddof=1)
    np.testing.assert_allclose(got, expected, atol=1e-10)
    np.testing.assert_allclose(got.std(axis=0, ddof=1), 1.0)
    # the cleaned signals are orthogonal to the processed confounds
    assert np.abs(conf.T @ got).max() < 1e-8


def test_constant_and_trend_confound_columns_are_dropped(rng):
    n = 100
    signals = rng.standard_normal((n, 3))
    useful = rng.standard_normal((n, 1))
    degenerate = np.column_stack([np.full(n, 7.0), 1000 + 0.3 * np.arange(n)])
    with_degenerate = clean(signals, np.hstack([useful, degenerate]), t_r=2.5)
    without = clean(signals, useful, t_r=2.5)
    np.testing.assert_allclose(with_degenerate, without, atol=1e-10)


def test_confound_basis_handles_collinear_columns(rng):
    base = rng.standard_normal((60, 2))
    confounds = np.column_stack([base, base @ [1.0, -2.0]])
    basis = confound_basis(confounds, confounds)
    assert basis.shape == (60, 2)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)


@pytest.mark.parametrize(
    ("high_pass", "low_pass", "message"),
    [(0.3, None, "outside"), (0.05, 0.02, "below"), (-0.1, None, "outside")],
)
def test_butterworth_rejects_bad_cutoffs(high_pass, low_pass, message):
    with pytest.raises(ValueError, match=message):
        butterworth_sos(2.5, high_pass, low_pass)


def test_clean_rejects_too_short_series_and_bad_standardize(rng):
    with pytest.raises(ValueError, match="too few"):
        clean(rng.standard_normal((10, 2)), None, t_r=2.5)
    with pytest.raises(ValueError, match="standardize"):
        clean(rng.standard_normal((50, 2)), None, t_r=2.5, standardize="psc")


# ------------------------------------------------------------------- censoring

#: 80 volumes censored at both ends (non-steady-state start, motion spike at the
#: end) and inside the run.
BOTH_ENDS = np.array([0, 1, 30, 31, 32, 77, 78, 79])


def _exact_censored_clean(signals, confounds, kept, t_r, high_pass):
    """Textbook censoring: spline the censored volumes between the first and last
    kept ones, detrend, filter, keep the kept volumes, regress, z-score."""
    times = np.arange(len(signals)) * t_r
    span = np.arange(kept[0], kept[-1] + 1)
    gaps = np.setdiff1d(span, kept)

    def filtered(series):
        series = series.copy()
        series[gaps] = CubicSpline(times[kept], series[kept])(times[gaps])
        series = series[span]
        design = np.column_stack([np.ones(span.size), np.arange(span.size)])
        series -= design @ np.linalg.lstsq(design, series, rcond=None)[0]
        sos = sp_signal.butter(5, high_pass, "high", output="sos", fs=1 / t_r)
        return sp_signal.sosfiltfilt(sos, series, axis=0)[kept - kept[0]]

    out, conf = filtered(signals), filtered(confounds)
    conf -= conf.mean(axis=0)
    q, _ = np.linalg.qr(conf)
    out -= q @ (q.T @ out)
    return (out - out.mean(axis=0)) / out.std(axis=0, ddof=1)


def test_censoring_at_both_ends_is_spline_filter_keep(rng):
    signals = rng.standard_normal((80, 4)).cumsum(axis=0)
    confounds = rng.standard_normal((80, 3))
    kept = np.setdiff1d(np.arange(80), BOTH_ENDS)
    got = clean(signals, confounds, 2.0, high_pass=0.01, sample_mask=kept)
    expected = _exact_censored_clean(signals, confounds, kept, 2.0, 0.01)
    assert got.shape == (kept.size, 4)
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize(
    "censored",
    [BOTH_ENDS, np.array([0, 1, 2]), np.array([75, 79]), np.array([20, 59])],
    ids=["both-ends", "start", "end", "mirror-pair-inside"],
)
def test_censored_volumes_never_reach_the_cleaned_rows(rng, censored):
    signals = rng.standard_normal((80, 4)).cumsum(axis=0)
    confounds = rng.standard_normal((80, 3))
    kept = np.setdiff1d(np.arange(80), censored)
    reference = clean(signals, confounds, 2.0, sample_mask=kept)
    signals[censored] = 1e3 * rng.standard_normal((censored.size, 4))
    confounds[censored] = 1e3 * rng.standard_normal((censored.size, 3))
    np.testing.assert_allclose(
        clean(signals, confounds, 2.0, sample_mask=kept), reference, atol=1e-10
    )


def test_cropped_resampler_computes_the_box_of_the_whole_grid(rng):
    resampler = Resampler.between(
        _affine([3, 3, 3], [-2, -3, -1]),
        (9, 11, 8),
        _affine([4, 4, 4], [0, 0, 0]),
        (7, 8, 6),
    )
    box = (slice(1, 6), slice(2, 8), slice(0, 4))
    cropped = resampler.cropped(box)
    assert cropped.target_shape == (5, 6, 4)
    volumes = rng.standard_normal((3, 9 * 11 * 8))
    whole = resampler.apply(volumes).reshape(3, 7, 8, 6, order="F")[:, 1:6, 2:8, 0:4]
    np.testing.assert_array_equal(
        cropped.apply(volumes), whole.reshape(3, -1, order="F")
    )


def test_stream_hands_every_chunk_once_in_order_and_records_the_range(tmp_path, rng):
    path = tmp_path / "func.nii.gz"
    data = make_func(path, rng, dtype="int16", n_volumes=13)
    data[..., 4] = 0.0  # a blank volume
    nib.save(nib.Nifti1Image(data.astype(np.int16), np.diag([3.0, 3, 3, 1])), path)
    expected = data.reshape(-1, 13, order="F").T
    seen = []
    stream = VolumeStream(
        read_func_info(path), 3, on_chunk=lambda s, raw, v: seen.append((s, v.copy()))
    )
    yielded = [(start, volumes.copy()) for start, volumes in stream]
    assert [start for start, _ in yielded] == [0, 3, 6, 9, 12]
    np.testing.assert_array_equal(np.concatenate([v for _, v in yielded]), expected)
    np.testing.assert_array_equal(np.concatenate([v for _, v in seen]), expected)
    assert stream.constant_volumes.tolist() == [4]
    assert (stream.data_min, stream.data_max) == (0.0, expected.max())


def test_a_corrupt_image_fails_in_the_callers_thread_and_stops_the_reader(
    tmp_path, rng
):
    path = tmp_path / "func.nii.gz"
    make_func(path, rng, n_volumes=30)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    threads = threading.active_count()
    with pytest.raises(InputError, match="truncated"):
        for _ in VolumeStream(read_func_info(path), 2):
            pass
    assert threading.active_count() == threads


def test_a_caller_that_stops_early_stops_the_reader(tmp_path, rng):
    path = tmp_path / "func.nii.gz"
    make_func(path, rng, n_volumes=30)
    threads = threading.active_count()
    stream = iter(VolumeStream(read_func_info(path), 1))
    next(stream)
    time.sleep(0.05)  # let the reader fill the queue and wait
    stream.close()
    assert threading.active_count() == threads


def test_a_process_reads_an_atlas_file_once_per_version(tmp_path, rng):
    path = tmp_path / "maps.nii.gz"
    first = make_maps(path, rng)
    atlas, again = load_atlas(path), load_atlas(path)
    assert atlas.maps is again.maps and not atlas.maps.flags.writeable
    np.testing.assert_array_equal(atlas.maps, first)
    time.sleep(0.01)
    changed = make_maps(path, rng)  # a new version of the file
    np.testing.assert_array_equal(load_atlas(path).maps, changed)


def test_cached_extraction_plans_give_the_signals_of_a_fresh_one(tmp_path, rng):
    make_func(tmp_path / "func.nii.gz", rng, n_volumes=12)
    make_maps(tmp_path / "maps.nii.gz", rng)
    info = read_func_info(tmp_path / "func.nii.gz")
    shared = load_atlas(tmp_path / "maps.nii.gz")
    private = replace(shared, maps=shared.maps.copy())  # writeable: not cached
    fresh = extract_map_signals(info, private).signals
    cached = [extract_map_signals(info, shared).signals for _ in range(2)]
    assert signals_module._maps_plan(info.affine, info.shape[:3], shared) is (
        signals_module._maps_plan(info.affine, info.shape[:3], shared)
    )
    assert signals_module._maps_plan(info.affine, info.shape[:3], private) is not (
        signals_module._maps_plan(info.affine, info.shape[:3], private)
    )
    for signals in cached:
        np.testing.assert_array_equal(signals, fresh)


def test_jobs_starting_together_build_a_kept_plan_once(tmp_path, rng, monkeypatch):
    make_func(tmp_path / "func.nii.gz", rng, n_volumes=12)
    make_maps(tmp_path / "maps.nii.gz", rng)
    info = read_func_info(tmp_path / "func.nii.gz")
    atlas = load_atlas(tmp_path / "maps.nii.gz")
    signals_module._PLANS.clear()
    built = []
    build = signals_module._new_maps_plan

    def slow_build(*args):
        built.append(args)
        time.sleep(0.2)  # the other thread asks meanwhile
        return build(*args)

    monkeypatch.setattr(signals_module, "_new_maps_plan", slow_build)
    with ThreadPoolExecutor(2) as pool:
        plans = list(
            pool.map(
                lambda _: signals_module._maps_plan(info.affine, info.shape[:3], atlas),
                range(2),
            )
        )
    assert len(built) == 1
    assert plans[0] is plans[1]
