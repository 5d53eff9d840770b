"""Head motion as a quality measure: framewise displacement, and the QC-FC check.

Framewise displacement (FD, Power et al. 2012): the sum of the absolute
backward differences of the three translations (mm) and the three rotations
(radians, turned into mm of arc on a sphere of 50 mm radius, roughly the
distance from the centre of the head to the cortex). fMRIPrep writes it as the
``framewise_displacement`` column of its confounds, which is used as is when
present.

QC-FC (Ciric et al. 2017): across subjects, the Pearson correlation of each
edge of the functional connectome (the correlation of two cleaned region
signals) with the subject's mean FD. With motion well removed, these
correlations scatter around zero: their median absolute value is small and few
edges reach p < 0.05.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: fMRIPrep's names of the six rigid-body motion parameters (mm, then radians).
MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: fMRIPrep's framewise displacement column.
FD_COLUMN = "framewise_displacement"
#: Radius (mm) of the sphere on which rotations become displacements (Power 2012).
HEAD_RADIUS_MM = 50.0


def framewise_displacement(
    confounds: pd.DataFrame, radius: float = HEAD_RADIUS_MM
) -> np.ndarray | None:
    """Framewise displacement of each volume (mm), or None without motion columns.

    Uses ``framewise_displacement`` when the table has it (its first row, n/a
    in fMRIPrep's files, is 0 here), else the six :data:`MOTION_COLUMNS`
    (Power et al. 2012; the first volume has no predecessor: 0).
    """
    if FD_COLUMN in confounds.columns:
        fd = pd.to_numeric(confounds[FD_COLUMN], errors="coerce").to_numpy(float)
        return np.nan_to_num(fd, nan=0.0)
    if not all(name in confounds.columns for name in MOTION_COLUMNS):
        return None
    motion = confounds[list(MOTION_COLUMNS)].to_numpy(dtype=float, copy=True)
    motion[:, 3:] *= radius
    fd = np.zeros(motion.shape[0])
    fd[1:] = np.abs(np.diff(motion, axis=0)).sum(axis=1)
    return fd


def mean_framewise_displacement(
    tables: Sequence[pd.DataFrame], radius: float = HEAD_RADIUS_MM
) -> float | None:
    """Mean FD of a scan (mm) from the first of its confounds tables that has it.

    The mean is over the volumes that have a predecessor (the first FD is not
    a displacement); None when no table has the motion columns.
    """
    for table in tables:
        fd = framewise_displacement(table, radius)
        if fd is not None and fd.size > 1:
            return float(fd[1:].mean())
    return None


def edge_correlations(signals: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of regions (the upper triangle, row-major)."""
    matrix = np.corrcoef(signals, rowvar=False)
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    return matrix[rows, cols]


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order."""
    p = np.asarray(p_values, dtype=float)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(n)
    q[order] = np.minimum(adjusted, 1.0)
    return q


@dataclass(frozen=True)
class QcFc:
    """The QC-FC check of one atlas.

    ``r`` and ``p``: each edge's correlation with mean FD across subjects and
    its two-sided p-value; ``q``: Benjamini-Hochberg adjusted; the summary:
    ``median_abs_r``, ``fraction_significant`` (p < 0.05, uncorrected),
    ``fraction_significant_fdr`` (q < 0.05).
    """

    r: np.ndarray
    p: np.ndarray
    q: np.ndarray

    @property
    def median_abs_r(self) -> float:
        return float(np.median(np.abs(self.r)))

    @property
    def fraction_significant(self) -> float:
        return float(np.mean(self.p < 0.05))

    @property
    def fraction_significant_fdr(self) -> float:
        return float(np.mean(self.q < 0.05))


def qc_fc_streamed(edges: Iterable[np.ndarray], mean_fd: np.ndarray) -> QcFc:
    """:func:`qc_fc` with one subject's edges at a time (``edges`` in ``mean_fd``'s
    order): the sums of Pearson's r are accumulated, so memory holds one
    subject's edges, not the subjects x edges table (400 regions, 1000 subjects:
    640 MB).
    """
    fd = np.asarray(mean_fd, dtype=float)
    fd_centred = fd - fd.mean()
    shift = total = squares = cross = None
    count = 0
    for row, weight in zip(edges, fd_centred, strict=True):
        # sums of the differences with the first subject's edges: an edge that
        # is constant across subjects sums to exactly zero (no cancellation)
        row = np.asarray(row, dtype=float)
        if shift is None:
            shift = row.copy()
            total, squares, cross = (np.zeros_like(row) for _ in range(3))
        row = row - shift
        total += row
        squares += row * row
        cross += weight * row
        count += 1
    if total is None:
        raise ValueError("QC-FC needs 3 or more subjects with an FD, got 0")
    spread = np.maximum(squares - total * total / count, 0.0)
    return _pearson_with_fd(cross, np.sqrt(spread), fd_centred)


def qc_fc(edges: np.ndarray, mean_fd: np.ndarray) -> QcFc:
    """Correlation of each edge (columns of ``edges``, one row per subject) with FD.

    Needs at least 3 subjects and mean FDs that are not all equal; an edge that
    is constant across subjects gets r = 0, p = 1.
    """
    edges = np.asarray(edges, dtype=float)
    fd = np.asarray(mean_fd, dtype=float)
    if edges.shape[0] != fd.size:
        raise ValueError(f"{edges.shape[0]} rows of edges for {fd.size} mean FDs")
    fd_centred = fd - fd.mean()
    edges_centred = edges - edges.mean(axis=0)
    return _pearson_with_fd(
        fd_centred @ edges_centred, np.linalg.norm(edges_centred, axis=0), fd_centred
    )


def _pearson_with_fd(
    cross: np.ndarray, edge_norms: np.ndarray, fd_centred: np.ndarray
) -> QcFc:
    """r, p, q from each edge's centred cross-product with FD and its spread."""
    from scipy import stats

    n = fd_centred.size
    if n < 3:
        raise ValueError(f"QC-FC needs 3 or more subjects with an FD, got {n}")
    if not np.any(fd_centred):
        raise ValueError("QC-FC needs mean FDs that differ between subjects")
    norms = edge_norms * np.linalg.norm(fd_centred)
    # an edge constant across subjects (up to rounding) has no correlation
    constant = edge_norms <= 1e-9
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(constant, 0.0, cross / np.where(constant, 1.0, norms))
    r = np.clip(r, -1.0, 1.0)
    dof = n - 2
    with np.errstate(divide="ignore"):
        t = r * np.sqrt(dof / np.maximum(1.0 - r**2, np.finfo(float).tiny))
    p = np.where(constant, 1.0, 2.0 * stats.t.sf(np.abs(t), dof))
    return QcFc(r=r, p=p, q=benjamini_hochberg(p))
