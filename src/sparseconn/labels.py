"""Label atlases: a 3D image of integer region labels, its table, region-mean signals.

The reference is nilearn's ``NiftiLabelsMasker(labels_img, resampling_target=...)``
before cleaning (see ``docs/algorithms.md``):

- ``"data"``: the labels are resampled onto the func grid by nearest neighbour;
  a region's signal is the mean of the func voxels that carry its label.
- ``"labels"``: the func is resampled onto the labels grid with cubic splines
  (values outside the field of view are 0, the result clipped to
  ``[min(data, 0), max(data, 0)]``, as for maps); a region's signal is the mean of
  its voxels on that grid, the zeros outside the field of view included.

Both are computed in one streamed pass over the func file, like
:func:`sparseconn.signals.extract_map_signals`.

Regions follow the image, as in nilearn: a table row whose label is not in the
image is dropped (with a warning); an image label missing from the table is kept
and named after its value (nilearn names it ``unknown``). Unlike nilearn, which
drops a region that resampling to the data grid removed, every image label keeps
its column: a region with no voxel in the func field of view has coverage 0 and
signal 0, so that every scan of a run has the same regions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd

from sparseconn.atlas import _NETWORK_COLUMNS, _unique_names, read_labels, read_table
from sparseconn.errors import InputError
from sparseconn.io import FuncInfo, PathLike
from sparseconn.signals import MapSignals, Resampler, VolumeStream, extract_signals

logger = logging.getLogger(__name__)

ResamplingTarget = Literal["data", "labels"]
RESAMPLING_TARGETS = ("data", "labels")


@dataclass(frozen=True)
class LabelAtlas:
    """A parcellation: one integer label per voxel (0 is background) and its table.

    Attributes
    ----------
    image : ndarray, shape (x, y, z), int64
    affine : ndarray, shape (4, 4)
    image_path : Path
    labels : DataFrame, n_regions rows in increasing label order
        Columns ``index`` (the label value, int) and ``name`` (unique), and
        ``network`` when the table has one.
    notes : tuple of str
        Where table and image disagree (labels of one missing from the other),
        for the sidecars' warnings.
    """

    image: np.ndarray
    affine: np.ndarray
    image_path: Path
    labels: pd.DataFrame
    notes: tuple[str, ...] = ()

    @property
    def values(self) -> np.ndarray:
        """Label value of each region, increasing (int64)."""
        return self.labels["index"].to_numpy(dtype=np.int64)

    @property
    def n_regions(self) -> int:
        """Number of regions (non-zero labels of the image)."""
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        """Region names, in label order."""
        return list(self.labels["name"])


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The image's data as float64, its affine and its shape, or an InputError."""
    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj, dtype=np.float64)
    except Exception as error:
        raise InputError(path, f"not a readable NIfTI image ({error})") from error
    return data, np.asarray(image.affine, dtype=np.float64), data.shape


def _integral_labels(path: Path, data: np.ndarray) -> np.ndarray:
    """``data`` (3D) as int64 labels, or an InputError naming what is not a label."""
    if not np.isfinite(data).all():
        raise InputError(path, "label atlas holds NaN or infinite values")
    rounded = np.round(data)
    not_integral = rounded != data
    if not_integral.any():
        example = data[not_integral].flat[0]
        raise InputError(
            path,
            f"label atlas holds non-integer values ({int(not_integral.sum())} "
            f"voxels, e.g. {example:g}): a probabilistic atlas must be a 4D image",
        )
    if np.abs(rounded).max(initial=0) >= 2**53:
        raise InputError(path, "label atlas holds values too large to be labels")
    return rounded.astype(np.int64)


def atlas_kind(image_path: PathLike) -> Literal["labels", "maps"]:
    """Whether an atlas image is a parcellation (3D, integer) or maps (4D).

    Raises
    ------
    InputError
        Unreadable image, a 3D image of non-integer values, NaN, or neither 3D nor
        4D.
    """
    path = Path(image_path)
    try:
        shape = nib.load(path).shape
    except Exception as error:
        raise InputError(path, f"not a readable NIfTI image ({error})") from error
    if len(shape) == 4 and shape[3] > 1:
        return "maps"
    data, _, shape = _read_image(path)
    if len(shape) == 4:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(path, f"an atlas must be a 3D or 4D image, got shape {shape}")
    _integral_labels(path, data)
    return "labels"


def load_label_atlas(
    image_path: PathLike, table_path: PathLike | None = None
) -> LabelAtlas:
    """Load a label atlas and its table.

    Parameters
    ----------
    image_path : path-like
        3D NIfTI image of integer labels, 0 for background (float images holding
        integral values are accepted; a 4D image with one volume is read as 3D).
    table_path : path-like or None
        TemplateFlow's ``.tsv`` (columns ``index`` and ``name``, optional network
        column), or a CSV/TSV without ``index`` as
        :func:`sparseconn.atlas.read_labels` reads it, one row per label of the
        image in increasing label order. Without it, regions are named after their
        label value.

    Raises
    ------
    InputError
        Unreadable image, 4D, NaN, non-integer values, no label; a table without
        ``name``, with non-integer or repeated indices, whose indices match no label
        of the image, or (without ``index``) with a row count other than the number
        of labels.
    """
    path = Path(image_path)
    data, affine, shape = _read_image(path)
    if len(shape) == 4 and shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(
            path,
            f"a label atlas must be a 3D image, got shape {shape} (a 4D image is a "
            "probabilistic atlas: one map per volume)",
        )
    image = _integral_labels(path, data)
    values = np.unique(image)
    values = values[values != 0]
    if values.size == 0:
        raise InputError(path, "label atlas has no region (every voxel is 0)")
    notes: list[str] = []
    if table_path is None:
        labels = pd.DataFrame({"index": values, "name": [str(v) for v in values]})
    else:
        labels = _read_label_table(Path(table_path), values, notes)
    for note in notes:
        logger.warning("%s", note)
    return LabelAtlas(image, affine, path, labels, tuple(notes))


def _read_label_table(path: Path, values: np.ndarray, notes: list[str]) -> pd.DataFrame:
    """The regions' table (index, name, network) for the image's label ``values``.

    Disagreements between table and image are appended to ``notes``.
    """
    table = read_table(path)
    if "index" not in table.columns:
        positional = read_labels(path, len(values))
        positional.insert(0, "index", values)
        return positional.drop(columns=["x", "y", "z"], errors="ignore")
    if "name" not in table.columns:
        raise InputError(
            path, f"atlas labels need a 'name' column (columns: {list(table.columns)})"
        )
    try:
        index = table["index"].str.strip().astype(float)
    except ValueError as error:
        raise InputError(path, f"non-numeric 'index' values ({error})") from error
    if not (np.isfinite(index) & (index == np.round(index))).all():
        raise InputError(path, "'index' values must be integers")
    table["index"] = index.astype(np.int64)
    table = table[table["index"] != 0]
    duplicated = table["index"][table["index"].duplicated()]
    if len(duplicated):
        raise InputError(path, f"repeated 'index' values {sorted(set(duplicated))}")
    in_image = table["index"].isin(values)
    if not in_image.any():
        raise InputError(
            path,
            f"no 'index' of the table is a label of the image (table: "
            f"{_preview(table['index'])}; image: {_preview(values)})",
        )
    if not in_image.all():
        notes.append(
            f"atlas table {path.name}: labels "
            f"{_preview(table['index'][~in_image])} are not in the image: no region"
        )
    table = table[in_image].set_index("index")
    missing = [int(v) for v in values if v not in table.index]
    if missing:
        notes.append(
            f"atlas table {path.name}: image labels {_preview(missing)} are not in "
            "the table: named after their value"
        )
    names = [
        table.at[v, "name"].strip() if v in table.index else str(v) for v in values
    ]
    labels = pd.DataFrame({"index": values, "name": _unique_names(pd.Series(names))})
    network = next((c for c in _NETWORK_COLUMNS if c in table.columns), None)
    if network is not None:
        labels["network"] = [
            table.at[v, network].strip() if v in table.index else "" for v in values
        ]
    return labels


def _preview(values, limit: int = 8) -> str:
    """A short list of values for a message."""
    items = [int(v) for v in values]
    shown = ", ".join(str(v) for v in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def labels_on_grid(
    atlas: LabelAtlas, affine: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """The atlas's labels on another grid, by nearest neighbour (0 outside the atlas).

    Returns
    -------
    ndarray, shape ``shape[:3]``, int64
    """
    shape = tuple(shape[:3])
    if np.array_equal(affine, atlas.affine) and shape == atlas.image.shape:
        return atlas.image
    transform = np.linalg.inv(atlas.affine) @ affine
    matrix, offset = transform[:3, :3], transform[:3, 3]
    if np.array_equal(np.diag(np.diag(matrix)), matrix):
        # scipy's axis-aligned path: the one nilearn takes, same rounding at ties
        matrix = np.diag(matrix)
    from scipy import ndimage  # here: the workflow reads this module when parsing

    return ndimage.affine_transform(
        atlas.image, matrix, offset=offset, output_shape=shape, order=0, cval=0
    )


class _RegionSums:
    """Per-volume sums of voxel values over regions, voxels sorted by region once."""

    def __init__(self, codes: np.ndarray, n_regions: int) -> None:
        order = np.argsort(codes, kind="stable")
        self.order = order
        self.counts = np.bincount(codes, minlength=n_regions)
        self.present = np.flatnonzero(self.counts)
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.starts = starts[self.present]
        self.n_regions = n_regions

    def __call__(self, sorted_values: np.ndarray) -> np.ndarray:
        """Sums (n, n_regions) of ``sorted_values`` (n, voxels in region order)."""
        sums = np.zeros((sorted_values.shape[0], self.n_regions))
        if self.present.size:
            sums[:, self.present] = np.add.reduceat(sorted_values, self.starts, axis=1)
        return sums


class LabelsExtractor:
    """Mean signal of each region of a label atlas, fed by a shared stream.

    See :func:`extract_label_signals` (the module docstring for the two
    resampling targets).

    Raises
    ------
    InputError
        When the field of view overlaps no region.
    """

    def __init__(
        self,
        info: FuncInfo,
        atlas: LabelAtlas,
        resampling_target: ResamplingTarget = "data",
    ) -> None:
        if resampling_target not in RESAMPLING_TARGETS:
            raise ValueError(
                f"resampling_target must be one of {RESAMPLING_TARGETS}, "
                f"got {resampling_target!r}"
            )
        n_regions = atlas.n_regions
        self.target = resampling_target
        self.resampler = Resampler.between(
            info.affine, info.shape, atlas.affine, atlas.image.shape
        )
        atlas_flat = atlas.image.ravel(order="F")
        atlas_voxels = np.flatnonzero(atlas_flat)
        atlas_codes = np.searchsorted(atlas.values, atlas_flat[atlas_voxels])
        inside = self.resampler.covered().ravel(order="F")[atlas_voxels]
        coverage = np.bincount(atlas_codes[inside], minlength=n_regions) / np.bincount(
            atlas_codes, minlength=n_regions
        )
        if resampling_target == "data":
            grid_flat = labels_on_grid(atlas, info.affine, info.shape).ravel(order="F")
            voxels = np.flatnonzero(grid_flat)
            sums = _RegionSums(
                np.searchsorted(atlas.values, grid_flat[voxels]), n_regions
            )
            # a region that nearest-neighbour resampling removed has nothing measured
            coverage[sums.counts == 0] = 0.0
        else:
            voxels = atlas_voxels
            sums = _RegionSums(atlas_codes, n_regions)
        if not np.any(coverage > 0):
            raise InputError(
                info.path,
                f"field of view does not overlap any region of the label atlas "
                f"{atlas.image_path}",
            )
        self.coverage = coverage
        self.sums = sums
        self.voxels = voxels[sums.order]
        self.totals = np.zeros((info.n_volumes, n_regions))
        # "labels" target: resampled values outside the data range seen so far,
        # which the final clipping may change (the range only widens, so no other
        # value can)
        self.outliers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.region_of_column = np.repeat(np.arange(n_regions), sums.counts)

    def add(self, start: int, volumes: np.ndarray, stream: VolumeStream) -> None:
        if self.target == "data":
            values = volumes[:, self.voxels]
        else:
            values = self.resampler.apply(volumes)[:, self.voxels]
            rows, columns = np.nonzero(
                (values < stream.data_min) | (values > stream.data_max)
            )
            if rows.size:
                self.outliers.append(
                    (
                        start + rows,
                        self.region_of_column[columns],
                        values[rows, columns],
                    )
                )
        self.totals[start : start + len(volumes)] = self.sums(values)

    def finish(self, stream: VolumeStream) -> MapSignals:
        totals = self.totals
        for rows, regions, values in self.outliers:
            clipped = np.clip(values, stream.data_min, stream.data_max)
            np.add.at(totals, (rows, regions), clipped - values)
        signals = totals / np.maximum(self.sums.counts, 1)
        signals[:, self.coverage == 0] = 0.0
        return MapSignals(signals, self.coverage, stream.constant_volumes)


def extract_label_signals(
    info: FuncInfo,
    atlas: LabelAtlas,
    resampling_target: ResamplingTarget = "data",
    chunk_volumes: int = 4,
    on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> MapSignals:
    """Mean signal of each region of a label atlas, in one streamed pass of the func.

    Equivalent to nilearn's ``NiftiLabelsMasker(labels_img,
    resampling_target=resampling_target)`` extraction before cleaning (module
    docstring), except that a region with no voxel in the field of view keeps its
    column, with signal 0.

    Parameters
    ----------
    info : FuncInfo
        The 4D functional image (streamed once from disk).
    atlas : LabelAtlas
    resampling_target : {"data", "labels"}
        The grid the means are taken on (nilearn's parameter of that name).
    chunk_volumes : int
        Volumes decompressed at a time.
    on_chunk : callable, optional
        Called with ``(start, raw, volumes)`` for every chunk, as
        :func:`sparseconn.signals.extract_signals` calls it.

    Returns
    -------
    MapSignals
        ``signals`` (n_volumes, n_regions); ``coverage`` (n_regions,), the fraction
        of each region's atlas voxels inside the func field of view (0 when the
        region has no voxel on the grid the means are taken on);
        ``constant_volumes``.

    Raises
    ------
    InputError
        When the field of view overlaps no region, or the data hold NaN or
        infinite values.
    """
    extractor = LabelsExtractor(info, atlas, resampling_target)
    return extract_signals(info, [extractor], chunk_volumes, on_chunk)[0]
