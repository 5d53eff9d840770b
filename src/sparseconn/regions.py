"""An atlas of either kind: what the run says of it, loading it, extracting from it.

A run names one or several atlases (config ``atlases``); each is a
:class:`AtlasSpec`: a 4D image of probabilistic maps (:mod:`sparseconn.atlas`,
one least-squares signal per map) or a 3D image of integer labels
(:mod:`sparseconn.labels`, one mean signal per region), detected from the image
unless forced. :func:`extractors_for` turns the loaded atlases into the
extractors one streamed pass over a scan feeds
(:func:`sparseconn.signals.extract_signals`): every atlas of a run shares each
scan's single decompression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from sparseconn.atlas import Atlas, load_atlas
from sparseconn.errors import InputError
from sparseconn.io import FuncInfo
from sparseconn.labels import (
    RESAMPLING_TARGETS,
    LabelAtlas,
    LabelsExtractor,
    atlas_kind,
    load_label_atlas,
)
from sparseconn.signals import MapsExtractor, SignalExtractor

#: Values of an atlas's ``kind``: detected from the image, or forced.
KINDS = ("auto", "maps", "labels")
AtlasKind = Literal["auto", "maps", "labels"]


@dataclass(frozen=True)
class AtlasSpec:
    """One atlas of a run, as the config gives it (plain values: a rule param).

    Attributes
    ----------
    name : str
        Its label in file names (``atlas-<name>``), letters and digits.
    image : str
        NIfTI path: 4D maps, or a 3D integer parcellation.
    labels : str or None
        Its regions' table (see :func:`sparseconn.atlas.read_labels` and
        :func:`sparseconn.labels.load_label_atlas`).
    kind : {"auto", "maps", "labels"}
        ``auto``: 4D -> maps, 3D integer -> labels.
    resampling_target : {"data", "labels"} or None
        Label atlases only: the grid the means are taken on (nilearn's
        ``NiftiLabelsMasker`` parameter; None: ``data``). Maps are always
        extracted on their own grid.
    """

    name: str
    image: str
    labels: str | None = None
    kind: AtlasKind = "auto"
    resampling_target: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"atlas {self.name}: kind {self.kind!r} not in {KINDS}")
        if self.resampling_target not in (None, *RESAMPLING_TARGETS):
            raise ValueError(
                f"atlas {self.name}: resampling_target {self.resampling_target!r} "
                f"not in {RESAMPLING_TARGETS}"
            )

    def as_param(self) -> dict[str, Any]:
        """As a rule param (builtin types, which Snakemake compares on reruns)."""
        return asdict(self)

    @classmethod
    def from_param(cls, value: Mapping[str, Any]) -> AtlasSpec:
        return cls(**dict(value))

    @property
    def files(self) -> list[str]:
        """The image, then its table when there is one."""
        return [self.image, *([self.labels] if self.labels else [])]


@dataclass(frozen=True)
class LoadedAtlas:
    """An atlas read from disk: its spec, its kind and the image of that kind."""

    spec: AtlasSpec
    kind: Literal["maps", "labels"]
    atlas: Atlas | LabelAtlas

    @property
    def names(self) -> list[str]:
        """Region names, in column order."""
        return self.atlas.names

    @property
    def table(self) -> pd.DataFrame:
        """One row per region: ``name``, and ``network``, ``x, y, z`` when known."""
        return self.atlas.labels

    @property
    def notes(self) -> tuple[str, ...]:
        """Where the atlas's table and image disagree (label atlases), for sidecars."""
        return getattr(self.atlas, "notes", ())

    @property
    def resampling_target(self) -> str:
        """The grid signals are extracted on: ``maps``, ``data`` or ``labels``."""
        if self.kind == "maps":
            return "maps"
        return self.spec.resampling_target or "data"

    @property
    def method(self) -> str:
        """How a region's signal is computed, for the sidecars."""
        if self.kind == "maps":
            return (
                "least squares on maps, func resampled to the maps grid "
                "(cubic spline, clipped to the data range)"
            )
        if self.resampling_target == "data":
            return (
                "mean of each region's voxels, labels resampled to the func grid "
                "(nearest neighbour)"
            )
        return (
            "mean of each region's voxels, func resampled to the labels grid "
            "(cubic spline, clipped to the data range)"
        )


def load(spec: AtlasSpec) -> LoadedAtlas:
    """Read the atlas ``spec`` names, of the kind it has or is forced to.

    Raises
    ------
    InputError
        Naming the image or table: unreadable, a kind that does not fit (a 4D or
        non-integer image as labels, a 3D image as maps), a table that does not
        match the image.
    """
    kind = atlas_kind(spec.image) if spec.kind == "auto" else spec.kind
    if kind == "labels":
        return LoadedAtlas(spec, kind, load_label_atlas(spec.image, spec.labels))
    if spec.resampling_target is not None:
        raise InputError(
            spec.image,
            f"atlas {spec.name}: resampling_target is for label atlases; this is a "
            "probabilistic (4D) atlas, extracted on its own grid",
        )
    return LoadedAtlas(spec, kind, load_atlas(spec.image, spec.labels))


def extractors_for(
    info: FuncInfo, atlases: Sequence[LoadedAtlas], chunk_volumes: int = 2
) -> list[SignalExtractor]:
    """One extractor per atlas, for one pass over the scan ``info``.

    Raises
    ------
    InputError
        When the scan's field of view overlaps none of an atlas's regions.
    """
    extractors: list[SignalExtractor] = []
    for loaded in atlases:
        if loaded.kind == "maps":
            extractors.append(MapsExtractor(info, loaded.atlas, chunk_volumes))
        else:
            target = loaded.resampling_target
            extractors.append(LabelsExtractor(info, loaded.atlas, target))
    return extractors


def without_maps(loaded: LoadedAtlas) -> LoadedAtlas:
    """A maps atlas without its voxel data (names, table, notes kept; any other
    atlas as it is): once its extractor holds the part it needs, the full maps
    need not stay in memory through the rest of a scan's job."""
    if loaded.kind != "maps":
        return loaded
    atlas = loaded.atlas
    empty = np.empty((0, 0, 0, atlas.n_regions))
    return replace(loaded, atlas=replace(atlas, maps=empty))


def label_centres(atlas: LabelAtlas) -> np.ndarray:
    """World coordinates of each region's centre of mass (voxel centres averaged).

    Returns
    -------
    ndarray, shape (n_regions, 3)
    """
    from scipy import ndimage  # here: the workflow reads this module when parsing

    centres = ndimage.center_of_mass(
        np.ones(atlas.image.shape), atlas.image, list(atlas.values)
    )
    voxels = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    return voxels @ atlas.affine[:3, :3].T + atlas.affine[:3, 3]


def geometry(loaded: LoadedAtlas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node coordinates (n_regions, 3), a brain outline mask and its affine.

    Coordinates: the table's ``x, y, z`` when given and finite; else the map
    centres (maps, :func:`sparseconn.plotting.map_centre`) or the regions'
    centres of mass (labels).
    """
    from sparseconn.plotting import brain_mask, region_coordinates

    atlas = loaded.atlas
    if loaded.kind == "maps":
        coords = region_coordinates(atlas.maps, atlas.affine, atlas.labels)
        return coords, brain_mask(atlas.maps), atlas.affine
    table = atlas.labels
    coords = None
    if {"x", "y", "z"} <= set(table.columns):
        given = table[["x", "y", "z"]].to_numpy(dtype=np.float64)
        coords = given if np.isfinite(given).all() else None
    if coords is None:
        coords = label_centres(atlas)
    return coords, atlas.image > 0, atlas.affine


# ------------------------------------------------------------ region bookkeeping

#: Columns of a scan's region table (``..._desc-coverage_regions.tsv``).
SCAN_REGION_COLUMNS = ["index", "name", "coverage", "usable", "reason"]
#: Columns of the group's region table (``group/atlas-<a>_desc-coverage_regions.tsv``).
GROUP_REGION_COLUMNS = ["index", "name", "kept", "min_coverage", "reason"]


def region_indices(loaded: LoadedAtlas) -> list[int]:
    """Each region's number in its atlas: the label value, or the map's (from 1)."""
    if loaded.kind == "labels":
        return [int(value) for value in loaded.atlas.values]
    return list(range(1, len(loaded.names) + 1))


def scan_region_table(
    loaded: LoadedAtlas,
    coverage: np.ndarray,
    raw_signals: np.ndarray,
    min_coverage: float,
) -> pd.DataFrame:
    """Whether each region of one scan can enter the group stage, and why not.

    A region is unusable when it lies outside the field of view (coverage 0),
    when less than ``min_coverage`` of it is inside (its signal would stand for
    another part of the region than in other scans), or when its raw signal is
    constant over the kept volumes (nothing to correlate: it would be 0 after
    z-scoring).

    Parameters
    ----------
    coverage : ndarray, shape (n_regions,)
        Fraction of each region (maps: weight; labels: voxels) inside the field
        of view.
    raw_signals : ndarray, shape (n_kept_volumes, n_regions)
        The extracted signals of the kept volumes, before cleaning.
    min_coverage : float
        Config ``min_region_coverage``, in [0, 1].
    """
    flat = raw_signals.shape[0] > 0 and np.ptp(raw_signals, axis=0) == 0
    flat = np.broadcast_to(flat, coverage.shape)
    reasons = []
    for fraction, constant in zip(coverage, flat, strict=True):
        if fraction <= 0:
            reasons.append("outside the field of view")
        elif fraction < min_coverage:
            reasons.append(
                f"{fraction:.0%} in the field of view, below min_region_coverage "
                f"{min_coverage:.0%}"
            )
        elif constant:
            reasons.append("constant signal")
        else:
            reasons.append("")
    return pd.DataFrame(
        {
            "index": region_indices(loaded),
            "name": loaded.names,
            "coverage": np.round(np.clip(coverage, 0.0, 1.0), 6),
            "usable": [not reason for reason in reasons],
            "reason": reasons,
        },
        columns=SCAN_REGION_COLUMNS,
    )


def group_region_table(
    tables: Sequence[pd.DataFrame], scans: Sequence[str]
) -> pd.DataFrame:
    """The regions of the group stage: those usable in every scan of ``scans``.

    ``tables`` are the scans' region tables (:func:`scan_region_table`), in
    ``scans``'s order, all with the same regions. A dropped region's reason
    names each scan where it is unusable, and why.

    Raises
    ------
    ValueError
        Tables with different regions, or no table.
    """
    if not tables or len(tables) != len(scans):
        raise ValueError(f"{len(tables)} region tables for {len(scans)} scans")
    first = tables[0]
    for scan, table in zip(scans, tables, strict=True):
        if list(table["name"]) != list(first["name"]):
            raise ValueError(f"{scan}: other regions than {scans[0]}")
    reasons = []
    for row in range(len(first)):
        problems = [
            f"{scan}: {table['reason'].iloc[row]}"
            for scan, table in zip(scans, tables, strict=True)
            if not table["usable"].iloc[row]
        ]
        reasons.append("; ".join(problems))
    coverage = np.min([table["coverage"].to_numpy() for table in tables], axis=0)
    return pd.DataFrame(
        {
            "index": first["index"].to_numpy(),
            "name": list(first["name"]),
            "kept": [not reason for reason in reasons],
            "min_coverage": coverage,
            "reason": reasons,
        },
        columns=GROUP_REGION_COLUMNS,
    )
