"""High-variance confounds (Behzadi et al. 2007, CompCor-like), as in nilearn."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from sparseconn.errors import InputError
from sparseconn.io import FuncInfo, check_finite, iter_volume_chunks

#: Voxels per batch when scanning the variance of every voxel.
_BATCH_VOXELS = 8192


def _centred_ramp(n_samples: int) -> np.ndarray:
    """Unit-norm, zero-mean linear ramp of length ``n_samples``."""
    ramp = np.arange(n_samples, dtype=np.float64)
    ramp -= ramp.mean()
    return ramp / np.sqrt(ramp @ ramp)


def _detrended(block: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """Columns of ``block`` minus their mean and linear trend, float64."""
    out = block.astype(np.float64)
    out -= out.mean(axis=0)
    out -= np.outer(ramp, ramp @ out)
    return out


def high_variance_confounds_from_array(
    series: np.ndarray,
    n_confounds: int = 5,
    percentile: float = 2.0,
    to_float=None,
) -> np.ndarray:
    """High-variance confounds of a (time × voxel) array.

    Each voxel series is detrended (mean and linear trend); the voxels whose mean
    of squares is above the ``100 - percentile`` percentile are kept; the result is
    the ``n_confounds`` eigenvectors of largest eigenvalue of their time × time
    Gram matrix. Signs are arbitrary (as for any eigensolver): compare subspaces.

    Parameters
    ----------
    series : ndarray, shape (n_samples, n_voxels)
    n_confounds : int
    percentile : float
        Percentage of highest-variance voxels kept, in (0, 100].
    to_float : callable or None
        Converts a block of ``series`` to float (e.g. applies NIfTI scaling).

    Returns
    -------
    ndarray, shape (n_samples, n_confounds)
    """
    n_samples, n_voxels = series.shape
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile} must be in (0, 100]")
    if not 1 <= n_confounds <= n_samples:
        raise ValueError(f"n_confounds={n_confounds} must be in [1, {n_samples}]")
    convert = to_float if to_float is not None else (lambda block: block)
    ramp = _centred_ramp(n_samples)
    mean_squares = np.empty(n_voxels)
    for start in range(0, n_voxels, _BATCH_VOXELS):
        block = _detrended(convert(series[:, start : start + _BATCH_VOXELS]), ramp)
        mean_squares[start : start + block.shape[1]] = (block**2).mean(axis=0)
    threshold = np.percentile(mean_squares, 100.0 - percentile)
    kept = np.flatnonzero(mean_squares > threshold)
    if kept.size < n_confounds:
        raise ValueError(
            f"only {kept.size} voxel(s) above the {100 - percentile:g}th percentile of "
            f"variance: fewer than the {n_confounds} confounds requested"
        )
    selected = _detrended(convert(series[:, kept]), ramp)
    eigenvalues, eigenvectors = linalg.eigh(selected @ selected.T / n_samples)
    order = np.argsort(eigenvalues)[::-1][:n_confounds]
    return eigenvectors[:, order]


def high_variance_confounds(
    info: FuncInfo, n_confounds: int = 5, percentile: float = 2.0
) -> np.ndarray:
    """High-variance confounds of a 4D image, read once from disk (no mask).

    Equivalent to ``nilearn.image.high_variance_confounds(img)``; the stored values
    are kept in their on-disk type while scanning, so memory is one copy of the
    image at its stored precision.

    Returns
    -------
    ndarray, shape (n_volumes, n_confounds)
    """
    stored = np.empty((info.n_volumes, info.n_voxels), dtype=info.dtype)
    for start, raw in iter_volume_chunks(info):
        check_finite(info, start, raw)
        stored[start : start + raw.shape[0]] = raw
    try:
        return high_variance_confounds_from_array(
            stored, n_confounds, percentile, to_float=info.to_float
        )
    except ValueError as error:
        raise InputError(info.path, str(error)) from error
