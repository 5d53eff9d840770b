"""Region signals: resample onto the atlas grid, least-squares map signals, cleaning.

The reference is nilearn's ``NiftiMapsMasker(resampling_target="maps")`` followed by
``signal.clean`` (see ``docs/algorithms.md``). The chain resample → least squares is
linear in the data, so it is computed in one streaming pass over the functional
file: when the func→atlas voxel mapping is axis-aligned (the usual case, flips
included) the cubic-spline resampling factorises into three small 1D operators
applied as matrix products; otherwise each volume is resampled with
``scipy.ndimage.affine_transform``, exactly as nilearn does.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

import numpy as np

from sparseconn.atlas import Atlas
from sparseconn.errors import InputError
from sparseconn.filters import butterworth_sections, filtfilt, padding_length
from sparseconn.io import FuncInfo, check_finite, iter_volume_chunks
from sparseconn.recent import RecentValues

logger = logging.getLogger(__name__)

#: Order of the Butterworth filter and of the spline interpolation (nilearn's).
BUTTERWORTH_ORDER = 5
SPLINE_ORDER = 3


# ------------------------------------------------------------------ resampling


def _axis_operator(n_in: int, scale: float, offset: float, n_out: int) -> np.ndarray:
    """Cubic-spline resampling along one axis as a dense (n_out, n_in) matrix.

    Column j is scipy's ``affine_transform`` (order 3, constant mode, cval 0) of the
    j-th unit vector, so the matrix reproduces scipy's boundary handling exactly.
    """
    # scipy is imported where used in this module: the workflow reads it when
    # parsing (CleaningSettings), and scipy.ndimage would add 0.15 s to that.
    from scipy import ndimage

    operator = np.empty((n_out, n_in))
    unit = np.zeros(n_in)
    for j in range(n_in):
        unit[j] = 1.0
        operator[:, j] = ndimage.affine_transform(
            unit, [scale], offset=[offset], output_shape=(n_out,), order=SPLINE_ORDER
        )
        unit[j] = 0.0
    return operator


@dataclass
class Resampler:
    """Resample volumes from a source grid onto a target grid (cubic spline).

    Attributes
    ----------
    matrix : ndarray, shape (3, 3)
        Maps target voxel indices to source voxel indices (with ``offset``).
    offset : ndarray, shape (3,)
    source_shape, target_shape : tuple of 3 ints
    axes : list of 3 ndarrays or None
        1D operators (x, y, z) when the mapping is axis-aligned, else None.
    """

    matrix: np.ndarray
    offset: np.ndarray
    source_shape: tuple[int, int, int]
    target_shape: tuple[int, int, int]
    axes: list[np.ndarray] | None = field(default=None)
    _workspace: dict[int, tuple[np.ndarray, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def between(
        cls,
        source_affine: np.ndarray,
        source_shape: tuple[int, ...],
        target_affine: np.ndarray,
        target_shape: tuple[int, ...],
    ) -> Resampler:
        """Build the resampler from ``source`` (func) onto ``target`` (atlas) grid."""
        if np.array_equal(source_affine, target_affine):
            transform = np.eye(4)
        else:
            transform = np.linalg.inv(source_affine) @ target_affine
        matrix, offset = transform[:3, :3], transform[:3, 3]
        resampler = cls(
            matrix, offset, tuple(source_shape[:3]), tuple(target_shape[:3])
        )
        if np.array_equal(np.diag(np.diag(matrix)), matrix):
            resampler.axes = [
                _axis_operator(
                    source_shape[k], matrix[k, k], offset[k], target_shape[k]
                )
                for k in range(3)
            ]
        return resampler

    def cropped(self, box: tuple[slice, slice, slice]) -> Resampler:
        """The same resampling onto the sub-box ``box`` of the target grid only.

        Axis-aligned resamplers compute each kept target voxel exactly as before
        (the same rows of the 1D operators); others are returned whole.
        """
        if self.axes is None:
            return self
        shape = tuple(
            len(range(*part.indices(n)))
            for part, n in zip(box, self.target_shape, strict=True)
        )
        axes = [axis[part] for axis, part in zip(self.axes, box, strict=True)]
        return Resampler(self.matrix, self.offset, self.source_shape, shape, axes)

    def covered(self) -> np.ndarray:
        """Boolean target-grid mask of voxels that fall inside the source grid.

        Returns
        -------
        ndarray, shape target_shape (x, y, z)
        """
        ones = np.ones(self.source_shape)
        if self.axes is not None:
            inside = [np.abs(axis).sum(axis=1) > 0 for axis in self.axes]
            return inside[0][:, None, None] & inside[1][None, :, None] & inside[2]
        from scipy import ndimage

        return (
            ndimage.affine_transform(
                ones,
                self.matrix,
                offset=self.offset,
                output_shape=self.target_shape,
                order=1,
            )
            > 0
        )

    def apply(self, volumes: np.ndarray) -> np.ndarray:
        """Resample a stack of volumes.

        Parameters
        ----------
        volumes : ndarray, shape (n, n_source_voxels)
            Each row one volume flattened in NIfTI (Fortran) order.

        Returns
        -------
        ndarray, shape (n, n_target_voxels), float64, rows in NIfTI order:
        reused by the next call of an axis-aligned resampler (keep a copy).
        """
        n = volumes.shape[0]
        sx, sy, sz = self.source_shape
        tx, ty, tz = self.target_shape
        if self.axes is None:
            from scipy import ndimage

            out = np.empty((n, tx * ty * tz))
            for i in range(n):
                volume = volumes[i].reshape((sx, sy, sz), order="F").astype(np.float64)
                out[i] = ndimage.affine_transform(
                    volume,
                    self.matrix,
                    offset=self.offset,
                    output_shape=self.target_shape,
                    order=SPLINE_ORDER,
                ).ravel(order="F")
            return out
        ax, ay, az = self.axes
        if n not in self._workspace:  # reused by every call: no allocation per chunk
            self._workspace[n] = (
                np.empty((n, sz, sy, tx)),
                np.empty((n, sz, ty, tx)),
                np.empty((n, tz, ty * tx)),
            )
        along_x, along_y, along_z = self._workspace[n]
        # Row-major view (n, z, y, x) of Fortran-ordered volumes: contract x, y, z.
        np.matmul(volumes.reshape(n, sz, sy, sx), ax.T, out=along_x)
        np.matmul(ay, along_x, out=along_y)
        np.matmul(az, along_y.reshape(n, sz, ty * tx), out=along_z)
        return along_z.reshape(n, tx * ty * tz)


# ------------------------------------------------------------------ extraction


#: Chunks of a :class:`VolumeStream` alive at once: the one its caller works on,
#: the next one (read, waiting) and the one being read.
_CHUNKS_IN_FLIGHT = 3


class VolumeStream:
    """One streamed pass over a 4D image, as float64 chunks of volumes.

    Each chunk is read once (:func:`sparseconn.io.iter_volume_chunks`), scaled
    as the header says (:meth:`FuncInfo.to_float`: float32, float64 for images
    stored in float64; checked finite) and cast to float64 once, by a reader
    thread that decompresses and converts the next chunk while the caller works
    on this one (zlib and numpy release the interpreter lock, so the two share
    the machine's cores); every value is computed as in a single thread.
    ``on_chunk(start, raw, volumes)`` sees each chunk before the caller does,
    so that other per-scan results share the decompression. The pass records
    the constant volumes (every voxel equal: dropouts) and the data range
    (``data_min``, ``data_max``, 0 included), up to the chunk last yielded.
    A chunk's arrays are reused once the next chunk is asked for: keep copies.
    """

    def __init__(
        self,
        info: FuncInfo,
        chunk_volumes: int = 2,
        on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    ) -> None:
        self.info = info
        self.chunk_volumes = chunk_volumes
        self.on_chunk = on_chunk
        self.data_min, self.data_max = 0.0, 0.0
        self._constant: list[int] = []

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        chunks: queue.Queue = queue.Queue(maxsize=_CHUNKS_IN_FLIGHT - 2)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read, args=(chunks, stop), name="VolumeStream", daemon=True
        )
        reader.start()
        try:
            while (item := chunks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                start, raw, volumes, lows, highs = item
                if self.on_chunk is not None:
                    self.on_chunk(start, raw, volumes)
                constant = np.flatnonzero(lows == highs)
                self._constant.extend(int(start + i) for i in constant)
                self.data_min = min(self.data_min, float(lows.min()))
                self.data_max = max(self.data_max, float(highs.max()))
                yield start, volumes
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting to queue a chunk
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.01)
            reader.join()

    def _read(self, chunks: queue.Queue, stop: threading.Event) -> None:
        """Reader thread: queue (start, raw, volumes, lows, highs) per chunk, then
        None; or the error that stopped it."""

        def put(item: object) -> bool:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    chunks.put(item, timeout=0.05)
                    return True
            return False

        info = self.info
        rows = min(self.chunk_volumes, info.n_volumes)
        buffers = [np.empty((rows, info.n_voxels)) for _ in range(_CHUNKS_IN_FLIGHT)]
        try:
            stream = iter_volume_chunks(info, self.chunk_volumes, _CHUNKS_IN_FLIGHT)
            for index, (start, raw) in enumerate(stream):
                volumes = buffers[index % _CHUNKS_IN_FLIGHT][: len(raw)]
                info.to_float64(raw, out=volumes)
                check_finite(info, start, volumes)
                # The scaling is monotone: the extremes of the stored values
                # (half the bytes of int16) give those of the float values.
                lows, highs = (
                    info.to_float(raw.min(axis=1)),
                    info.to_float(raw.max(axis=1)),
                )
                if info.slope < 0:
                    lows, highs = highs, lows
                if not put((start, raw, volumes, lows, highs)):
                    return
            put(None)
        except BaseException as error:  # handed to the caller's thread
            put(error)

    @property
    def constant_volumes(self) -> np.ndarray:
        """Indices of the constant volumes seen so far."""
        return np.asarray(self._constant, dtype=np.int64)


class MapSignals(NamedTuple):
    """Raw region signals of one scan and what the streamed pass saw."""

    signals: np.ndarray
    coverage: np.ndarray
    constant_volumes: np.ndarray


class SignalExtractor(Protocol):
    """Region signals of one atlas, computed from the chunks of a shared stream.

    :func:`extract_signals` hands each chunk to every extractor, so that several
    atlases share one decompression of the image.
    """

    def add(self, start: int, volumes: np.ndarray, stream: VolumeStream) -> None:
        """Take the float64 ``volumes`` from volume ``start`` on."""

    def finish(self, stream: VolumeStream) -> MapSignals:
        """The region signals once the stream is over."""


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """Smallest box (one slice per axis) holding every True voxel of a 3D mask."""
    box = []
    for axis in range(mask.ndim):
        others = tuple(k for k in range(mask.ndim) if k != axis)
        indices = np.flatnonzero(mask.any(axis=others))
        box.append(slice(int(indices[0]), int(indices[-1]) + 1))
    return tuple(box)


#: Volumes per product with the maps' pseudo-inverse (bounds its float64 copy).
_LSTSQ_VOLUMES = 4


@dataclass(frozen=True)
class _MapsPlan:
    """What extracting an atlas's maps from scans on one grid needs, computed once."""

    resampler: Resampler
    coverage: np.ndarray
    support: np.ndarray
    maps: np.ndarray
    pseudo_inverse: np.ndarray
    source: np.ndarray  # the atlas's maps, kept so that their id stays theirs


_PLANS_KEPT = 4
_PLANS: RecentValues[_MapsPlan] = RecentValues(_PLANS_KEPT)


def _maps_plan(affine: np.ndarray, shape: tuple[int, ...], atlas: Atlas) -> _MapsPlan:
    """The plan of ``atlas`` for scans of grid ``(affine, shape)``.

    Read-only maps (as :func:`sparseconn.atlas.load_atlas` shares them between
    the scans of a process) have their plans kept, the last few, so that a
    process extracting many scans (Snakemake running jobs in its threads)
    resamples no operator and factorises no maps twice; jobs starting together
    build a plan once.
    """
    if atlas.maps.flags.writeable:
        return _new_maps_plan(affine, shape, atlas)
    key = (id(atlas.maps), np.asarray(affine).tobytes(), tuple(shape))
    return _PLANS.get(key, lambda: _new_maps_plan(affine, shape, atlas))


def _new_maps_plan(
    affine: np.ndarray, shape: tuple[int, ...], atlas: Atlas
) -> _MapsPlan:
    """The plan of ``atlas`` for scans of grid ``(affine, shape)``, computed."""
    resampler = Resampler.between(affine, shape, atlas.affine, atlas.maps.shape)
    maps = atlas.maps.reshape(-1, atlas.n_regions, order="F")
    inside = resampler.covered().ravel(order="F")
    weight = np.abs(maps).sum(axis=0)
    coverage = np.abs(maps[inside]).sum(axis=0) / np.where(weight > 0, weight, 1)
    # Atlas voxels where every map is 0 add nothing to the least-squares
    # problem: only the maps' support is kept (a quarter of the grid for
    # MSDL-like maps), and only its bounding box is resampled (half the grid)
    # when the resampling is axis-aligned.
    in_support = np.any(maps != 0, axis=1)
    support = in_support.reshape(atlas.maps.shape[:3], order="F")
    box = _bounding_box(support) if resampler.axes is not None else ()
    kept_maps = maps[in_support]
    return _MapsPlan(
        resampler=resampler.cropped(box) if box else resampler,
        coverage=coverage,
        support=np.flatnonzero(support[box].ravel(order="F")),
        maps=kept_maps,
        # numpy's SVD: scipy's wheel takes 5x longer on this tall, thin matrix
        pseudo_inverse=np.linalg.pinv(kept_maps).T if coverage.any() else kept_maps,
        source=atlas.maps,
    )


class MapsExtractor:
    """Least-squares signal of each atlas map, from the func resampled on its grid.

    Equivalent to nilearn's ``NiftiMapsMasker(maps, resampling_target="maps")``
    extraction before cleaning: cubic-spline resampling with values outside the
    func field of view set to 0 and the result clipped to ``[min(data, 0),
    max(data, 0)]``, then ``lstsq(maps, resampled)``. ``coverage`` is the
    fraction of each map's weight inside the func field of view.

    Raises
    ------
    InputError
        When the func field of view does not overlap any atlas map.
    """

    def __init__(self, info: FuncInfo, atlas: Atlas, chunk_volumes: int = 2) -> None:
        plan = _maps_plan(info.affine, info.shape[:3], atlas)
        if not np.any(plan.coverage > 0):
            raise InputError(
                info.path,
                f"field of view does not overlap any map of the atlas "
                f"{atlas.maps_path}",
            )
        self.coverage = plan.coverage
        self.support = plan.support
        self.maps = plan.maps
        self.pseudo_inverse = plan.pseudo_inverse
        self.resampler = replace(plan.resampler, _workspace={})  # buffers its own
        self.resampled = np.empty((info.n_volumes, self.support.size), info.float_dtype)
        self.chunk_volumes = chunk_volumes

    def add(self, start: int, volumes: np.ndarray, stream: VolumeStream) -> None:
        self.resampled[start : start + len(volumes)] = self.resampler.apply(volumes)[
            :, self.support
        ]

    def finish(self, stream: VolumeStream) -> MapSignals:
        resampled = self.resampled
        np.clip(resampled, stream.data_min, stream.data_max, out=resampled)
        # Same minimum-norm least-squares solution as lstsq(maps, resampled.T),
        # with the pseudo-inverse of the maps computed once for all volumes.
        n_volumes = resampled.shape[0]
        signals = np.empty((n_volumes, self.maps.shape[1]))
        for start in range(0, n_volumes, _LSTSQ_VOLUMES):
            block = slice(start, start + _LSTSQ_VOLUMES)
            signals[block] = resampled[block].astype(np.float64) @ self.pseudo_inverse
        self.resampled = resampled[:0]
        return MapSignals(signals, self.coverage, stream.constant_volumes)


def extract_signals(
    info: FuncInfo,
    extractors: Sequence[SignalExtractor],
    chunk_volumes: int = 2,
    on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> list[MapSignals]:
    """Every extractor's region signals from one streamed pass over the func.

    ``on_chunk(start, raw, volumes)`` sees each chunk too (the stored values, and
    the same as float64 after the header's scaling in float32, checked finite):
    e.g. :meth:`sparseconn.confounds.HighVarianceCollector.add`.

    Raises
    ------
    InputError
        When the data hold NaN or infinite values.
    """
    stream = VolumeStream(info, chunk_volumes, on_chunk)
    for start, volumes in stream:
        for extractor in extractors:
            extractor.add(start, volumes, stream)
    return [extractor.finish(stream) for extractor in extractors]


def extract_map_signals(
    info: FuncInfo,
    atlas: Atlas,
    chunk_volumes: int = 2,
    on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> MapSignals:
    """Least-squares signal of each atlas map (:class:`MapsExtractor`), one pass.

    Returns
    -------
    MapSignals
        ``signals`` (n_volumes, n_regions); ``coverage`` (n_regions,), the
        fraction of each map's weight inside the func field of view;
        ``constant_volumes``, the volumes whose every voxel holds the same value
        (dropouts, blank volumes: censored downstream).

    Raises
    ------
    InputError
        When the func field of view does not overlap any atlas map, or the data
        hold NaN or infinite values.
    """
    extractor = MapsExtractor(info, atlas, chunk_volumes)
    return extract_signals(info, [extractor], chunk_volumes, on_chunk)[0]


# -------------------------------------------------------------------- cleaning


def detrend(series: np.ndarray) -> np.ndarray:
    """Remove each column's mean and least-squares linear trend.

    Parameters
    ----------
    series : ndarray, shape (n_samples, n_columns)

    Returns
    -------
    ndarray, same shape, float64 (a new array).
    """
    out = np.array(series, dtype=np.float64)
    out -= out.mean(axis=0)
    ramp = np.arange(out.shape[0], dtype=np.float64)
    ramp -= ramp.mean()
    norm = np.sqrt(ramp @ ramp)
    if norm > np.finfo(np.float64).eps:
        ramp /= norm
        out -= np.outer(ramp, ramp @ out)
    return out


def butterworth_sos(
    t_r: float, high_pass: float | None, low_pass: float | None
) -> np.ndarray | None:
    """Second-order sections of the order-5 Butterworth filter, or None if no filter.

    Raises
    ------
    ValueError
        When a cutoff is not in (0, Nyquist) or ``high_pass >= low_pass``.
    """
    if high_pass is None and low_pass is None:
        return None
    nyquist = 0.5 / t_r
    for name, value in (("high_pass", high_pass), ("low_pass", low_pass)):
        if value is not None and not 0 < value < nyquist:
            raise ValueError(
                f"{name}={value} Hz is outside (0, {nyquist:g}) Hz, the range a "
                f"digital filter allows at TR {t_r:g} s"
            )
    if high_pass is not None and low_pass is not None:
        if high_pass >= low_pass:
            raise ValueError(f"high_pass={high_pass} must be below low_pass={low_pass}")
        return butterworth_sections(
            BUTTERWORTH_ORDER, (high_pass, low_pass), "band", 1 / t_r
        )
    if high_pass is not None:
        return butterworth_sections(BUTTERWORTH_ORDER, (high_pass,), "high", 1 / t_r)
    return butterworth_sections(BUTTERWORTH_ORDER, (low_pass,), "low", 1 / t_r)


def min_filter_length(sos: np.ndarray | None) -> int:
    """Smallest number of samples the zero-phase filter accepts (scipy's padlen + 1)."""
    if sos is None:
        return 2
    return padding_length(sos) + 1


def degenerate_columns(confounds: np.ndarray, processed: np.ndarray) -> np.ndarray:
    """Mask of the confound columns that processing reduced to numerical noise.

    A constant or exactly linear column is removed by detrending up to rounding
    (~1e-14 of its scale); standardising that noise would turn it into a random
    regressor. Such columns carry nothing and are dropped.

    Parameters
    ----------
    confounds : ndarray, shape (n_samples, n_confounds)
        The confounds as given.
    processed : ndarray, shape (n_samples, n_confounds)
        The same after detrending and filtering.

    Returns
    -------
    ndarray of bool, shape (n_confounds,)
    """
    raw_scale = np.abs(confounds).max(axis=0)
    centred = processed - processed.mean(axis=0)
    scale = centred.std(axis=0)
    return ~(scale > 1e-10 * np.where(raw_scale > 0, raw_scale, 1.0))


def confound_basis(confounds: np.ndarray, processed: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the span of the processed, centred confounds.

    Columns that processing (detrending, filtering) reduced to numerical noise, such
    as a constant or a linear-trend column, are dropped instead of being rescaled
    into spurious regressors (:func:`degenerate_columns`); collinear columns are
    handled by a pivoted QR.

    Parameters
    ----------
    confounds : ndarray, shape (n_samples, n_confounds)
        The confounds as given.
    processed : ndarray, shape (n_samples, n_confounds)
        The same after detrending and filtering.

    Returns
    -------
    ndarray, shape (n_samples, rank)
    """
    keep = ~degenerate_columns(confounds, processed)
    if not keep.any():
        return np.empty((processed.shape[0], 0))
    centred = processed - processed.mean(axis=0)
    standardized = centred[:, keep] / centred.std(axis=0)[keep]
    from scipy import linalg

    q, r, _ = linalg.qr(standardized, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    tolerance = diagonal.max() * max(standardized.shape) * np.finfo(np.float64).eps
    return q[:, diagonal > tolerance]


def filter_degrees_of_freedom(
    n_samples: int, t_r: float, high_pass: float | None, low_pass: float | None
) -> int:
    """Degrees of freedom a band-pass filter removes from ``n_samples`` samples.

    Counted on the real Fourier basis of the series: each frequency
    ``k / (n_samples * t_r)``, ``0 < k <= n_samples / 2``, below ``high_pass``
    or above ``low_pass`` is removed (2 degrees of freedom, 1 at the Nyquist
    frequency). The zero frequency is left to detrending. A Butterworth filter
    has a soft edge, so this is the count of an ideal filter with the same cutoffs.
    """
    removed = 0
    for k in range(1, n_samples // 2 + 1):
        frequency = k / (n_samples * t_r)
        if (high_pass is not None and frequency < high_pass) or (
            low_pass is not None and frequency > low_pass
        ):
            removed += 1 if 2 * k == n_samples else 2
    return removed


@dataclass(frozen=True)
class Cleaned:
    """Cleaned signals and the bookkeeping of what cleaning took from them.

    Attributes
    ----------
    signals : ndarray, shape (n_rows, n_regions)
    degrees_of_freedom : dict
        ``Volumes`` (rows cleaned), and the degrees of freedom taken by
        ``Detrending`` (mean, and linear trend when detrending), ``Filter``
        (:func:`filter_degrees_of_freedom`) and ``Confounds`` (rank of the
        regressors after processing), and the ``Remaining`` ones.
    degenerate_confounds : list of int
        Indices of the confound columns dropped as numerical noise.
    """

    signals: np.ndarray
    degrees_of_freedom: dict[str, int]
    degenerate_confounds: list[int]


def _regress_and_standardize(
    out: np.ndarray,
    raw: np.ndarray | None,
    processed: np.ndarray | None,
    standardize: str | None,
    lost: dict[str, int],
) -> Cleaned:
    """The last steps of cleaning: confound regression, then z-scoring."""
    rank, degenerate = 0, []
    if processed is not None:
        degenerate = [
            int(i) for i in np.flatnonzero(degenerate_columns(raw, processed))
        ]
        basis = confound_basis(raw, processed)
        rank = basis.shape[1]
        out -= basis @ (basis.T @ out)
    if standardize is not None:
        if out.shape[0] < 2:
            raise ValueError("1 volume left after censoring: cannot standardize")
        out -= out.mean(axis=0)
        std = out.std(axis=0, ddof=1 if standardize == "zscore_sample" else 0)
        std[std < np.finfo(np.float64).eps] = 1.0
        out /= std
    dof = {"Volumes": int(out.shape[0]), **lost, "Confounds": rank}
    dof["Remaining"] = dof["Volumes"] - sum(v for k, v in dof.items() if k != "Volumes")
    return Cleaned(out, dof, degenerate)


def clean(
    signals: np.ndarray,
    confounds: np.ndarray | None,
    t_r: float,
    *,
    high_pass: float | None = 0.01,
    low_pass: float | None = None,
    detrend_signals: bool = True,
    standardize: str | None = "zscore_sample",
    sample_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Cleaned signals (see :func:`clean_with_report`, which says what it took)."""
    return clean_with_report(
        signals,
        confounds,
        t_r,
        high_pass=high_pass,
        low_pass=low_pass,
        detrend_signals=detrend_signals,
        standardize=standardize,
        sample_mask=sample_mask,
    ).signals


def clean_with_report(
    signals: np.ndarray,
    confounds: np.ndarray | None,
    t_r: float,
    *,
    high_pass: float | None = 0.01,
    low_pass: float | None = None,
    detrend_signals: bool = True,
    standardize: str | None = "zscore_sample",
    sample_mask: np.ndarray | None = None,
) -> Cleaned:
    """Clean region signals as nilearn's ``signal.clean`` does.

    Order: detrend signals and confounds; Butterworth filter both (order 5,
    zero-phase ``sosfiltfilt`` with odd padding); project the signals on the
    orthogonal complement of the confounds; z-score.

    With a ``sample_mask`` (censoring), nilearn's order is followed: with a
    filter, the censored volumes between the first and the last kept one are
    replaced by a cubic-spline interpolation of the kept ones and those outside
    them left out (see :func:`filtered_volumes`), then detrend, filter, keep the
    rows of the kept volumes, regress, z-score; without a filter, the censored
    volumes are removed first, then detrend, regress, z-score. The rows returned
    are exactly the kept volumes, in order (unlike nilearn 0.13.1 when volumes are
    censored at both ends of the run).

    Parameters
    ----------
    signals : ndarray, shape (n_samples, n_regions)
    confounds : ndarray, shape (n_samples, n_confounds), or None
    t_r : float
        Repetition time in seconds.
    high_pass, low_pass : float or None
        Cutoff frequencies in Hz.
    detrend_signals : bool
        Remove mean and linear trend first.
    standardize : {"zscore_sample", "zscore", None}
        Divide by the sample (ddof=1) or population (ddof=0) standard deviation.
    sample_mask : ndarray, shape (n_kept,) of int, or shape (n_samples,) of bool
        Indices (strictly increasing) of the volumes kept, or a boolean mask with
        True for kept volumes, as nilearn's ``sample_mask``; None keeps all.

    Returns
    -------
    Cleaned
        The signals, shape (n_samples, n_regions) or (n_kept, n_regions) with a
        ``sample_mask``, float64; the degrees of freedom each step took; the
        confound columns dropped as numerical noise.
    """
    if standardize not in ("zscore_sample", "zscore", None):
        raise ValueError(
            f"standardize={standardize!r}: use 'zscore_sample', 'zscore' or None"
        )
    n_samples = signals.shape[0]
    if confounds is not None and confounds.shape[0] != n_samples:
        raise ValueError(
            f"confounds have {confounds.shape[0]} rows, signals {n_samples} samples"
        )
    sos = butterworth_sos(t_r, high_pass, low_pass)
    if sample_mask is not None:
        return _clean_censored(
            signals,
            confounds,
            t_r,
            sos,
            check_sample_mask(sample_mask, n_samples),
            detrend_signals=detrend_signals,
            standardize=standardize,
            cutoffs=(high_pass, low_pass),
        )
    if n_samples < min_filter_length(sos):
        raise ValueError(
            f"{n_samples} samples are too few to filter: at least "
            f"{min_filter_length(sos)} are needed"
        )
    out = detrend(signals) if detrend_signals else np.array(signals, dtype=np.float64)
    processed = None
    if confounds is not None and confounds.shape[1] > 0:
        processed = (
            detrend(confounds)
            if detrend_signals
            else np.array(confounds, dtype=np.float64)
        )
    if sos is not None:
        out = filtfilt(sos, out)
        if processed is not None:
            processed = filtfilt(sos, processed)
    raw = None if processed is None else np.asarray(confounds, dtype=np.float64)
    lost = _lost_degrees_of_freedom(
        n_samples, t_r, high_pass, low_pass, detrend_signals
    )
    return _regress_and_standardize(out, raw, processed, standardize, lost)


def _lost_degrees_of_freedom(
    n_rows: int,
    t_r: float,
    high_pass: float | None,
    low_pass: float | None,
    detrend_signals: bool,
) -> dict[str, int]:
    """Degrees of freedom taken by detrending (or centring) and filtering."""
    return {
        "Detrending": 2 if detrend_signals else 1,
        "Filter": filter_degrees_of_freedom(n_rows, t_r, high_pass, low_pass),
    }


# ------------------------------------------------------------------- censoring


def check_sample_mask(sample_mask: np.ndarray, n_samples: int) -> np.ndarray:
    """Indices of the kept volumes, checked.

    Parameters
    ----------
    sample_mask : array-like, shape (n_kept,) of int or (n_samples,) of bool
        Kept volume indices (strictly increasing) or a boolean mask (True = kept).
    n_samples : int
        Number of volumes of the series.

    Returns
    -------
    ndarray, shape (n_kept,), int64

    Raises
    ------
    ValueError
        Wrong type or shape, indices out of range, unsorted or repeated, or no
        volume kept.
    """
    mask = np.asarray(sample_mask)
    if mask.dtype == np.bool_:
        if mask.shape != (n_samples,):
            raise ValueError(
                f"boolean sample_mask of shape {mask.shape}: expected ({n_samples},)"
            )
        kept = np.flatnonzero(mask)
    else:
        if mask.ndim != 1 or (mask.size and mask.dtype.kind not in "iu"):
            raise ValueError("sample_mask must be a 1D array of volume indices")
        kept = mask.astype(np.int64)
        if kept.size and (kept[0] < 0 or kept.max() >= n_samples):
            raise ValueError(
                f"sample_mask indices must be in [0, {n_samples - 1}], got "
                f"{kept.min()}..{kept.max()}"
            )
        if np.any(np.diff(kept) <= 0):
            raise ValueError("sample_mask indices must be strictly increasing")
    if kept.size == 0:
        raise ValueError(f"every one of the {n_samples} volumes is censored")
    return kept


def filtered_volumes(
    n_samples: int, sample_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Volumes the filter runs over, and the censored ones among them to interpolate.

    Before filtering, each censored volume between the first and the last kept
    volume is replaced by a cubic spline (``scipy.interpolate.CubicSpline``, not-a-
    knot ends) of the kept volumes over time. Censored volumes before the first or
    after the last kept one are left out of the filtered series: past its end knots
    a spline is its last cubic piece, unbounded and not data, and nilearn
    (``extrapolate=False``, its default) leaves them out too.

    nilearn 0.13.1 picks the volumes it interpolates as ``~sample_mask`` on an
    integer index array, i.e. ``-(i + 1)``: the mirror image of the kept volumes.
    That is right only when censoring is at one end of the run, or inside it
    without two censored volumes symmetric about its middle; otherwise censored
    volumes are filtered with their own values and, when both ends are censored,
    the rows returned are shifted onto censored volumes. We interpolate exactly the
    censored volumes, so the rows returned are always exactly the kept volumes.

    Parameters
    ----------
    n_samples : int
    sample_mask : ndarray, shape (n_kept,)
        Kept indices (see :func:`check_sample_mask`).

    Returns
    -------
    span : ndarray of int
        The volumes filtered: from the first to the last kept volume, in order.
    interpolated : ndarray of int
        The censored volumes of ``span``, replaced by the spline's values.
    """
    kept = check_sample_mask(sample_mask, n_samples)
    span = np.arange(kept[0], kept[-1] + 1)
    return span, np.setdiff1d(span, kept)


def _interpolated(
    series: np.ndarray, kept: np.ndarray, t_r: float, interpolated: np.ndarray
) -> np.ndarray:
    """``series`` with rows ``interpolated`` replaced by a cubic spline of ``kept``."""
    out = np.array(series, dtype=np.float64)
    if interpolated.size == 0:
        return out
    from scipy.interpolate import CubicSpline

    times = np.arange(series.shape[0]) * t_r
    spline = CubicSpline(times[kept], out[kept], extrapolate=False)
    out[interpolated] = spline(times[interpolated])
    return out


def _clean_censored(
    signals: np.ndarray,
    confounds: np.ndarray | None,
    t_r: float,
    sos: np.ndarray | None,
    kept: np.ndarray,
    *,
    detrend_signals: bool,
    standardize: str | None,
    cutoffs: tuple[float | None, float | None],
) -> Cleaned:
    """:func:`clean_with_report` with censoring (see :func:`filtered_volumes`)."""
    high_pass, low_pass = cutoffs
    n_samples = signals.shape[0]
    has_confounds = confounds is not None and confounds.shape[1] > 0
    out = np.array(signals, dtype=np.float64)
    raw = np.array(confounds, dtype=np.float64) if has_confounds else None
    if sos is None:
        out = out[kept]
        raw = raw[kept] if raw is not None else None
        processed = raw
    else:
        if kept.size < 2:
            raise ValueError(
                "only 1 volume left after censoring: at least 2 are needed to "
                "interpolate the censored ones before filtering"
            )
        span, interpolated = filtered_volumes(n_samples, kept)
        out = _interpolated(out, kept, t_r, interpolated)[span]
        processed = None
        if raw is not None:
            processed = _interpolated(raw, kept, t_r, interpolated)[span]
    if out.shape[0] < min_filter_length(sos):
        raise ValueError(
            f"{out.shape[0]} volumes left after censoring are too few to filter: "
            f"at least {min_filter_length(sos)} are needed"
        )
    if detrend_signals:
        out = detrend(out)
        if processed is not None:
            processed = detrend(processed)
    if sos is not None:
        rows = kept - kept[0]
        out = filtfilt(sos, out)[rows]
        if processed is not None:
            processed = filtfilt(sos, processed)[rows]
            raw = raw[kept]
    lost = _lost_degrees_of_freedom(
        kept.size, t_r, high_pass, low_pass, detrend_signals
    )
    return _regress_and_standardize(out, raw, processed, standardize, lost)


# ---------------------------------------------------- one scan, every dataset


@dataclass(frozen=True)
class CleaningSettings:
    """How every scan is cleaned, and what a cleaned scan must keep to count.

    One value from the config (``high_pass``, ``low_pass``, ``detrend``,
    ``standardize``, ``min_volumes``, ``min_degrees_of_freedom``), passed whole
    from the rules to :func:`clean_scan`.
    """

    high_pass: float | None = 0.01
    low_pass: float | None = None
    detrend: bool = True
    standardize: str | None = "zscore_sample"
    min_kept_fraction: float = 0.5
    min_degrees_of_freedom: int = 10

    @classmethod
    def from_config(cls, config: dict) -> CleaningSettings:
        """The settings of a workflow config (``min_volumes`` is ``"50%"``)."""
        return cls(
            high_pass=config["high_pass"],
            low_pass=config["low_pass"],
            detrend=config["detrend"],
            standardize=config["standardize"],
            min_kept_fraction=float(config["min_volumes"].rstrip("%")) / 100.0,
            min_degrees_of_freedom=config["min_degrees_of_freedom"],
        )

    def sidecar(self) -> dict:
        """The ``Cleaning`` entry of a time series' JSON sidecar."""
        return {
            "Detrend": self.detrend,
            "Filter": "butterworth" if (self.high_pass or self.low_pass) else None,
            "FilterOrder": BUTTERWORTH_ORDER,
            "HighPass": self.high_pass,
            "LowPass": self.low_pass,
            "Standardize": self.standardize,
        }


@dataclass(frozen=True)
class CleanedScan:
    """A scan's cleaned signals, what cleaning took, and what was censored.

    Attributes
    ----------
    cleaned : Cleaned
        Signals of the kept volumes (every volume when ``censoring_applied`` is
        False), degrees of freedom, confound columns dropped.
    kept : ndarray of int
        The volumes kept (the rows, when censoring is applied).
    censored : list of int
    reasons : dict
        Why volumes were censored (the caller's reasons, plus ``constant_volume``).
    censoring_applied : bool
        False when a scan left out of the group could not be cleaned censored,
        and was cleaned whole, for inspection.
    warnings : list of str
    """

    cleaned: Cleaned
    kept: np.ndarray
    censored: list[int]
    reasons: dict[str, list[int]]
    censoring_applied: bool
    warnings: list[str]


def clean_scan(
    signals: np.ndarray,
    constant_volumes: np.ndarray,
    confounds: np.ndarray | None,
    t_r: float,
    settings: CleaningSettings,
    *,
    source: str,
    remedy: str,
    sample_mask: np.ndarray | None = None,
    reasons: dict[str, list[int]] | None = None,
    excluded: str | None = None,
) -> CleanedScan:
    """Censor and clean one scan's raw region signals, the same for every dataset.

    Constant volumes (every voxel equal: dropouts, see
    :func:`extract_map_signals`) are censored besides ``sample_mask``. A scan of
    the group stage (``excluded`` None) must keep ``min_kept_fraction`` of its
    volumes and ``min_degrees_of_freedom``, else it is an error (``remedy`` says
    what to do); a scan already left out of the group is cleaned whatever it
    keeps, uncensored when its kept volumes are too few to clean.

    Raises
    ------
    InputError
        Naming ``source``: too few volumes or degrees of freedom left, or a
        cleaning that cannot run.
    """
    n_volumes = signals.shape[0]
    kept = np.arange(n_volumes) if sample_mask is None else np.asarray(sample_mask)
    reasons = dict(reasons or {})
    warnings = []
    if constant_volumes.size:
        kept = np.setdiff1d(kept, constant_volumes)
        sample_mask = kept
        listed = [int(i) for i in constant_volumes]
        reasons["constant_volume"] = listed
        warnings.append(
            f"{len(listed)} constant volume(s) censored (every voxel equal: a "
            f"dropout?): {', '.join(map(str, listed))}"
        )
        fraction = settings.min_kept_fraction
        if excluded is None and (kept.size == 0 or kept.size < fraction * n_volumes):
            raise InputError(
                source,
                f"{len(listed)} of {n_volumes} volumes are constant (every voxel "
                f"equal: a dropout?), fewer than min_volumes {fraction:.0%} are "
                f"left; {remedy}",
            )
    censored = sorted(set(range(n_volumes)) - {int(i) for i in kept})
    options = {
        "high_pass": settings.high_pass,
        "low_pass": settings.low_pass,
        "detrend_signals": settings.detrend,
        "standardize": settings.standardize,
    }
    try:
        cleaned = clean_with_report(
            signals, confounds, t_r, sample_mask=sample_mask, **options
        )
    except ValueError as error:
        if excluded is None:
            raise InputError(source, str(error)) from error
        # A scan left out of the group whose kept volumes cannot be cleaned on
        # their own is cleaned whole, for inspection (its sidecar says so).
        sample_mask = None
        cleaned = clean_with_report(signals, confounds, t_r, **options)
    dof = cleaned.degrees_of_freedom
    if excluded is None and dof["Remaining"] < settings.min_degrees_of_freedom:
        raise InputError(
            source,
            f"cleaning leaves {dof['Remaining']} degrees of freedom of "
            f"{dof['Volumes']} volumes ({dof['Confounds']} confound regressors, "
            f"{dof['Filter']} filter, {dof['Detrending']} detrending), fewer than "
            f"min_degrees_of_freedom {settings.min_degrees_of_freedom}: its "
            f"signals would be noise; {remedy}",
        )
    return CleanedScan(
        cleaned=cleaned,
        kept=kept,
        censored=censored,
        reasons=reasons,
        censoring_applied=sample_mask is not None or not censored,
        warnings=warnings,
    )
