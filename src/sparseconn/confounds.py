"""High-variance confounds (Behzadi et al. 2007, CompCor-like), as in nilearn."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    _check_parameters(n_samples, n_confounds, percentile)
    convert = to_float if to_float is not None else (lambda block: block)
    ramp = _centred_ramp(n_samples)
    mean_squares = np.empty(n_voxels)
    for start in range(0, n_voxels, _BATCH_VOXELS):
        block = _detrended(convert(series[:, start : start + _BATCH_VOXELS]), ramp)
        mean_squares[start : start + block.shape[1]] = (block**2).mean(axis=0)
    kept = _kept_voxels(mean_squares, n_confounds, percentile)
    return _top_eigenvectors(_detrended(convert(series[:, kept]), ramp), n_confounds)


def _check_parameters(n_samples: int, n_confounds: int, percentile: float) -> None:
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile} must be in (0, 100]")
    if not 1 <= n_confounds <= n_samples:
        raise ValueError(f"n_confounds={n_confounds} must be in [1, {n_samples}]")


def _kept_voxels(
    mean_squares: np.ndarray, n_confounds: int, percentile: float
) -> np.ndarray:
    """Indices of the voxels above the ``100 - percentile`` percentile."""
    threshold = np.percentile(mean_squares, 100.0 - percentile)
    kept = np.flatnonzero(mean_squares > threshold)
    if kept.size < n_confounds:
        raise ValueError(
            f"only {kept.size} voxel(s) above the {100 - percentile:g}th percentile of "
            f"variance: fewer than the {n_confounds} confounds requested"
        )
    return kept


def _top_eigenvectors(selected: np.ndarray, n_confounds: int) -> np.ndarray:
    """Eigenvectors of largest eigenvalue of the time x time Gram matrix."""
    gram = selected @ selected.T / selected.shape[0]
    eigenvalues, eigenvectors = linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1][:n_confounds]
    return eigenvectors[:, order]


class HighVarianceCollector:
    """High-variance confounds of a 4D image, fed by a pass that streams it.

    Give :meth:`add` every chunk of volumes (as
    :func:`sparseconn.io.iter_volume_chunks` yields them, with their float32
    values), in order; then :meth:`confounds` returns what
    :func:`high_variance_confounds` returns, so that one decompression of the
    file serves the confounds and whatever else the pass computes (the region
    signals). Each voxel's detrended mean of squares is accumulated on the way
    (float64 sums, shifted by the first volume against cancellation), for the
    voxels that have left their first stored value only (the others' sums are
    exact zeros: the background costs one comparison of stored values). The kept
    voxels' series are then rebuilt from what the pass stored, at the stored
    precision (int16: half the bytes of float32), when the image is stored on at
    most 4 bytes per voxel, else read from the file a second time. What is
    stored is only the voxels that have left their first value (a chunk's
    other voxels hold it throughout): the background of a brain image
    (80% of the grid of the ADHD-like images) is never copied. A voxel that
    never leaves its first value has a mean of squares of 0 and is never kept.
    """

    def __init__(
        self, info: FuncInfo, n_confounds: int = 5, percentile: float = 2.0
    ) -> None:
        try:
            _check_parameters(info.n_volumes, n_confounds, percentile)
        except ValueError as error:
            raise InputError(info.path, str(error)) from error
        self.info = info
        self.n_confounds = n_confounds
        self.percentile = percentile
        self.n_added = 0
        # A difference between two values that fit in 4 bytes (float32 values,
        # or integers scaled in float32) squares to a positive float64: a chunk
        # whose sum of squared differences is 0 holds the first value throughout.
        self.stores_series = info.dtype.itemsize <= 4
        self._chunks: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._moved = np.zeros(info.n_voxels, dtype=bool)  # left its first value
        self._moved_columns = np.empty(0, dtype=np.intp)
        self._ramp = _centred_ramp(info.n_volumes)
        self._first: np.ndarray | None = None
        self._first_raw: np.ndarray | None = None
        self._differs = np.empty((0, 0), dtype=bool)
        self._chunk_moved = np.empty(0, dtype=bool)
        # Sums over the volumes so far of each moved voxel (``_moved_columns``):
        # of its value minus its first, of that times the ramp, and its square.
        self._sums = self._trend = self._squares = np.zeros(0)
        self._first_moved = np.zeros(0)  # the moved voxels' first values
        self._block = np.empty((0, 0))

    def add(
        self, start: int, raw: np.ndarray, volumes: np.ndarray | None = None
    ) -> None:
        """Take the volumes ``start`` to ``start + len(raw)`` (stored values, and
        ``volumes``: the same as float (as ``FuncInfo.to_float`` gives them,
        possibly then cast to float64), computed from ``raw`` if not given)."""
        self.n_added += len(raw)
        if volumes is None:
            volumes = self.info.to_float(raw)
        if self._first is None:
            self._first = volumes[0].astype(np.float64)
            self._first_raw = raw[0].copy()
            self._chunk_moved = np.empty(raw.shape[1], dtype=bool)
        if len(raw) > len(self._differs):  # buffers reused by every chunk
            self._differs = np.empty(raw.shape, dtype=bool)
            self._block = np.empty((len(raw), self._moved_columns.size))
        # Equal stored values are equal float values: a voxel whose stored
        # values all equal its first adds exact zeros to every sum, so the sums
        # are kept for the voxels that have moved only (a fifth of the grid of a
        # brain image: the background never moves), found on the stored values.
        differs = self._differs[: len(raw)]
        np.not_equal(raw, self._first_raw, out=differs)
        moved = np.logical_or.reduce(differs, axis=0, out=self._chunk_moved)
        moved |= self._moved
        if np.count_nonzero(moved) > self._moved_columns.size:
            np.copyto(self._moved, moved)
            self._grow_sums(np.flatnonzero(moved))
        columns = self._moved_columns
        if not columns.size:
            return
        block = self._block[: len(raw)]
        if columns.size == self.info.n_voxels:  # nothing to select
            np.subtract(volumes, self._first_moved, out=block)
        elif volumes.dtype == block.dtype:
            np.take(volumes, columns, axis=1, out=block, mode="clip")
            block -= self._first_moved
        else:
            np.subtract(volumes[:, columns], self._first_moved, out=block)
        # the plain and ramp-weighted sums in one matrix product
        weights = np.ones((2, len(block)))
        weights[1] = self._ramp[start : start + len(block)]
        moments = weights @ block
        self._sums += moments[0]
        self._trend += moments[1]
        np.square(block, out=block)
        self._squares += block.sum(axis=0)
        if self.stores_series:
            self._chunks.append((start, columns, raw[:, columns]))

    def _grow_sums(self, columns: np.ndarray) -> None:
        """Keep the sums for the moved voxels ``columns`` (a superset of the last)."""
        grown = [np.zeros(columns.size) for _ in range(3)]
        if self._moved_columns.size:
            where = np.searchsorted(columns, self._moved_columns)
            sums = (self._sums, self._trend, self._squares)
            for new, old in zip(grown, sums, strict=True):
                new[where] = old
        self._sums, self._trend, self._squares = grown
        self._moved_columns = columns
        self._first_moved = self._first[columns]
        self._block = np.empty((len(self._differs), columns.size))

    def confounds(self) -> np.ndarray:
        """The confounds, shape (n_volumes, n_confounds), once every volume is in.

        Called once: the stored series are released on the way.
        """
        info = self.info
        if self.n_added != info.n_volumes:
            raise RuntimeError(
                f"{self.n_added} of the {info.n_volumes} volumes were added"
            )
        n_samples = info.n_volumes
        mean_squares = np.zeros(info.n_voxels)  # 0 where the voxel never moved
        mean_squares[self._moved_columns] = (
            self._squares - self._sums**2 / n_samples - self._trend**2
        ) / n_samples
        try:
            kept = _kept_voxels(mean_squares, self.n_confounds, self.percentile)
        except ValueError as error:
            raise InputError(info.path, str(error)) from error
        if self.stores_series:
            selected = info.to_float(self._stored_series(kept)).astype(np.float64)
            self._chunks = []
        else:
            selected = np.empty((n_samples, kept.size))
            for start, raw in iter_volume_chunks(info):
                selected[start : start + len(raw)] = info.to_float(raw[:, kept])
        return _top_eigenvectors(_detrended(selected, self._ramp), self.n_confounds)

    def _stored_series(self, voxels: np.ndarray) -> np.ndarray:
        """The stored values of ``voxels`` (sorted indices) in every volume."""
        series = np.empty((self.info.n_volumes, voxels.size), dtype=self.info.dtype)
        series[:] = self._first_raw[voxels]
        where: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for start, columns, values in self._chunks:
            if id(columns) not in where:  # one lookup per version of the columns
                position = np.searchsorted(columns, voxels)
                found = position < columns.size
                found[found] = columns[position[found]] == voxels[found]
                where[id(columns)] = (np.flatnonzero(found), position[found])
            targets, sources = where[id(columns)]
            series[start : start + len(values), targets] = values[:, sources]
        return series


def high_variance_confounds(
    info: FuncInfo, n_confounds: int = 5, percentile: float = 2.0
) -> np.ndarray:
    """High-variance confounds of a 4D image read from disk (no mask).

    Equivalent to ``nilearn.image.high_variance_confounds(img)``; the image is
    streamed into a :class:`HighVarianceCollector`.

    Returns
    -------
    ndarray, shape (n_volumes, n_confounds)
    """
    collector = HighVarianceCollector(info, n_confounds, percentile)
    for start, raw in iter_volume_chunks(info):
        volumes = info.to_float(raw)
        check_finite(info, start, volumes)
        collector.add(start, raw, volumes)
    return collector.confounds()


def high_variance_table(confounds: np.ndarray) -> pd.DataFrame:
    """The confounds as a table: columns ``highvariance01``..., one row a volume."""
    columns = [f"highvariance{i + 1:02d}" for i in range(confounds.shape[1])]
    return pd.DataFrame(confounds, columns=columns)
