"""Probabilistic atlases: 4D maps image and their labels table."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from sparseconn.errors import InputError
from sparseconn.io import PathLike

logger = logging.getLogger(__name__)

_NETWORK_COLUMNS = ("network", "net name", "net_name", "networks")


@dataclass(frozen=True)
class Atlas:
    """Maps of overlapping regions and what is known of each region.

    Attributes
    ----------
    maps : ndarray, shape (x, y, z, n_regions), float64
    affine : ndarray, shape (4, 4)
    maps_path : Path
    labels : DataFrame, n_regions rows
        Column ``name`` (unique), and ``network``, ``x``, ``y``, ``z`` when known.
    """

    maps: np.ndarray
    affine: np.ndarray
    maps_path: Path
    labels: pd.DataFrame

    @property
    def n_regions(self) -> int:
        """Number of maps."""
        return self.maps.shape[3]

    @property
    def names(self) -> list[str]:
        """Region names, in map order."""
        return list(self.labels["name"])


def load_atlas(maps_path: PathLike, labels_path: PathLike | None = None) -> Atlas:
    """Load a 4D probabilistic atlas and its labels.

    Parameters
    ----------
    maps_path : path-like
        4D NIfTI image, one volume per region.
    labels_path : path-like or None
        CSV or TSV with a ``name`` column, one row per map in map order, and
        optionally ``x, y, z`` (world coordinates) and a network column (``network``
        or MSDL's ``net name``). Without it regions are named ``region01`` ...

    Raises
    ------
    InputError
        Unreadable image, not 4D, non-finite values, an all-zero map, or a labels
        table without ``name`` or with a row count different from the map count.
    """
    maps_path = Path(maps_path)
    maps, affine = _checked_maps(maps_path, file_stamp(maps_path))
    n_regions = maps.shape[3]
    if labels_path is None:
        labels = pd.DataFrame(
            {"name": [f"region{i + 1:02d}" for i in range(n_regions)]}
        )
    else:
        labels = read_labels(labels_path, n_regions)
    return Atlas(maps, affine, maps_path, labels)


def file_stamp(path: Path) -> tuple[int, ...]:
    """What tells a file's versions apart (inode, size, modification time in ns),
    for caches of what is read from it."""
    try:
        status = path.stat()
    except OSError:
        return ()
    return (status.st_ino, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _checked_maps(
    maps_path: Path, stamp: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The maps (read-only) and affine of a file version, read and checked once
    per process: the scans of a run that share a process share them."""
    try:
        image = nib.load(maps_path)
        maps = np.asarray(image.dataobj, dtype=np.float64)
    except Exception as error:
        raise InputError(maps_path, f"not a readable NIfTI image ({error})") from error
    if maps.ndim != 4:
        raise InputError(
            maps_path,
            f"atlas maps must be a 4D image (one volume per region), got shape "
            f"{maps.shape}",
        )
    if not np.isfinite(maps).all():
        raise InputError(maps_path, "atlas maps hold NaN or infinite values")
    empty = np.flatnonzero(~np.any(maps != 0, axis=(0, 1, 2)))
    if empty.size:
        raise InputError(maps_path, f"atlas map(s) {list(empty + 1)} are all zero")
    maps.flags.writeable = False
    affine = np.asarray(image.affine, dtype=np.float64)
    affine.flags.writeable = False
    return maps, affine


def read_table(path: PathLike) -> pd.DataFrame:
    """An atlas labels table as text (CSV or TSV, told by its first line).

    Column names are stripped and lower-cased; a file that cannot be read or
    parsed is an `InputError` naming it.
    """
    path = Path(path)
    try:
        first_line = path.read_text().splitlines()[0]
        separator = "\t" if "\t" in first_line else ","
        table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False)
    except (OSError, IndexError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputError(path, f"cannot read atlas labels ({error})") from error
    table.columns = [str(column).strip().lower() for column in table.columns]
    return table


def read_labels(path: PathLike, n_regions: int) -> pd.DataFrame:
    """Read an atlas labels table (CSV or TSV) into columns name, network, x, y, z."""
    path = Path(path)
    table = read_table(path)
    if "name" not in table.columns:
        raise InputError(
            path, f"atlas labels need a 'name' column (columns: {list(table.columns)})"
        )
    if len(table) != n_regions:
        raise InputError(
            path, f"{len(table)} label rows for an atlas of {n_regions} maps"
        )
    labels = pd.DataFrame({"name": _unique_names(table["name"].str.strip())})
    network = next((c for c in _NETWORK_COLUMNS if c in table.columns), None)
    if network is not None:
        labels["network"] = table[network].str.strip().to_numpy()
    if {"x", "y", "z"} <= set(table.columns):
        try:
            for axis in "xyz":
                labels[axis] = table[axis].astype(float).to_numpy()
        except ValueError as error:
            raise InputError(
                path, f"non-numeric x, y, z coordinates ({error})"
            ) from error
    return labels


def _unique_names(names: pd.Series) -> list[str]:
    """Make region names unique (``name``, ``name (2)``...) and never empty."""
    seen: dict[str, int] = {}
    unique = []
    for index, name in enumerate(names):
        name = name or f"region{index + 1:02d}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            logger.warning("duplicate region name %r: renamed", name)
            name = f"{name} ({seen[name]})"
        unique.append(name)
    return unique
