"""Deterministic synthetic resting-state dataset with a known group-sparse structure.

The generator mimics the geometry of nilearn's ADHD + MSDL example (func 61x73x61 at
3 mm, 176 volumes, TR 2.5 s; 39 overlapping probabilistic maps on a 4 mm grid) and
writes the ground truth beside the images, so that the workflow's output can be
scored.

Model
-----
Everything is a continuous function of world (mm) coordinates, evaluated on whatever
grid is asked for, so the atlas grid and any func grid (other voxel size, flipped
axes, partial field of view) see the same brain:

* a "brain": an ellipsoid (:data:`BRAIN_CENTRE`, :data:`BRAIN_RADII`);
* ``n_regions`` maps: anisotropic Gaussian blobs, soft-thresholded
  (``(g - t) / (1 - t)`` clipped to [0, 1], so each map is compact) and tapered to 0
  at the brain edge (:func:`map_values`);
* six "vessel/CSF-like" compartments just outside the brain, where no map reaches
  (:func:`compartment_values`); they carry six strong "physiological" time courses
  whose contributions to the voxel Gram matrix are in the ratios
  :data:`PHYSIO_EIGEN_RATIOS`, so the top-5 high-variance components are well
  separated.

Per subject, volume ``t`` at voxel ``v`` is::

    baseline(v) + sum_i map_i(v) * amplitude * z_i(t)   # z ~ N(0, Sigma_subject)
    + drift weights(v) . [linear, slow cosine](t)
    + motion weights(v) . motion(t)                     # 6 params, rim of the brain
    + sum_k compartment_k(v) * physio_amplitude_k * physio_k(t)
    + white noise

The region time courses ``z``, the motion parameters, the physiological and drift
time courses are independent random draws, so regressing out the confounds keeps
the region signals. Seeds: the atlas uses ``SeedSequence(seed, spawn_key=(0,))``, a
subject ``SeedSequence(seed, spawn_key=(1, subject_index))``, so adding subjects never
changes existing ones, and the same arguments give byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from sparseconn.io import PathLike, atomic_output, save_nifti, write_npz, write_tsv

__all__ = [
    "BRAIN_CENTRE",
    "BRAIN_RADII",
    "DEFAULT_ATLAS_AFFINE",
    "DEFAULT_ATLAS_SHAPE",
    "DEFAULT_FUNC_AFFINE",
    "DEFAULT_FUNC_SHAPE",
    "MOTION_COLUMNS",
    "PHYSIO_EIGEN_RATIOS",
    "compartment_values",
    "generate_atlas",
    "generate_subject",
    "grid_coordinates",
    "load_group_truth",
    "map_values",
    "subject_ids",
]

DEFAULT_ATLAS_SHAPE: tuple[int, int, int] = (40, 48, 35)
#: MSDL's affine: 4 mm, origin (-78, -111, -51).
DEFAULT_ATLAS_AFFINE: np.ndarray = np.array(
    [[4.0, 0, 0, -78.0], [0, 4.0, 0, -111.0], [0, 0, 4.0, -51.0], [0, 0, 0, 1.0]]
)
DEFAULT_FUNC_SHAPE: tuple[int, int, int] = (61, 73, 61)
#: 3 mm MNI-like grid, origin (-90, -126, -72).
DEFAULT_FUNC_AFFINE: np.ndarray = np.array(
    [[3.0, 0, 0, -90.0], [0, 3.0, 0, -126.0], [0, 0, 3.0, -72.0], [0, 0, 0, 1.0]]
)

#: Names of the motion parameters, in the order of the confounds file's columns.
MOTION_COLUMNS: tuple[str, ...] = (
    "trans_x",
    "trans_y",
    "trans_z",
    "rot_x",
    "rot_y",
    "rot_z",
)

#: Brain ellipsoid (world mm): inside the MSDL grid, inside the default func grid.
BRAIN_CENTRE: tuple[float, float, float] = (0.0, -18.0, 16.0)
BRAIN_RADII: tuple[float, float, float] = (66.0, 86.0, 60.0)
#: Width (in normalised ellipsoid radius) of the maps' taper at the brain edge.
BRAIN_TAPER = 0.1
#: Blobs are soft-thresholded at this value of the Gaussian (so maps are compact).
MAP_THRESHOLD = 0.05
#: Region centres are spread (Lloyd relaxation) in the brain shrunk by this factor.
CENTRE_SHRINK = 0.8

#: Vessel/CSF-like compartments outside the brain (sinus, eyes, occipital, neck).
COMPARTMENT_CENTRES: tuple[tuple[float, float, float], ...] = (
    (0.0, -25.0, 91.0),
    (-30.0, 77.0, -24.0),
    (30.0, 77.0, -24.0),
    (0.0, -117.0, 30.0),
    (-24.0, -8.0, -59.0),
    (24.0, -8.0, -59.0),
)
COMPARTMENT_RADII: tuple[tuple[float, float, float], ...] = (
    (7.0, 36.0, 7.0),
    (12.0, 12.0, 12.0),
    (12.0, 12.0, 12.0),
    (13.0, 6.0, 13.0),
    (8.0, 8.0, 12.0),
    (8.0, 8.0, 12.0),
)
#: Fraction of a compartment's radius over which its profile falls from 1 to 0.
COMPARTMENT_EDGE = 0.35
#: Relative contributions of the six physiological components to the Gram matrix
#: of the voxels' time series: consecutive ratios >= 1.5.
PHYSIO_EIGEN_RATIOS: tuple[float, ...] = (8.0, 5.0, 3.0, 2.0, 1.3, 0.8)

# Intensity model (arbitrary scanner units; baseline ~1000 in the brain).
_BASELINE = 1000.0
_BASELINE_VARIATION = 150.0
_COMPARTMENT_BASELINE = 1500.0
_SIGNAL_AMPLITUDE = 15.0  # region signal std at a map's peak (~1.5 % BOLD)
_NOISE_STD = 10.0  # white noise std (tSNR ~100)
_LINEAR_DRIFT = 10.0  # linear drift: +-10 units over the run (spatially varying)
_COSINE_DRIFT = 6.0  # slow cosine drift amplitude
_COSINE_PERIOD = (200.0, 400.0)  # seconds
_MOTION_GAIN = 40.0  # intensity change per mm of displacement on the rim
_RIM_WIDTH = 0.05  # normalised radius
_PHYSIO_STD = 65.0  # voxel std of a component with ratio 1 (mean-sized compartment)
_TRANSLATION_STEP = 0.02  # mm per volume (random-walk increment std)
_ROTATION_STEP = 3.0e-4  # rad per volume
_REGION_AR = 0.2  # identical AR(1) coefficient of all region time courses
_PHYSIO_AR = 0.3

# Ground-truth graph.
_EXTRA_WITHIN = 0.3  # extra within-network edges per member (beyond a spanning tree)
_EXTRA_BETWEEN = 0.5  # extra between-network edges per network (beyond a tree)
_MAX_DEGREE = 4
_PARTIAL_CORR_RANGE = (0.3, 0.5)
_POSITIVE_WITHIN = 0.7  # probability of a positive partial correlation
_POSITIVE_BETWEEN = 0.6
_SUBJECT_LOG_SD = 0.15  # subject edge weight = group weight * exp(N(0, sd))
_MIN_EIGENVALUE = 0.15  # of the unit-diagonal precision (I - partial correlations)


# --------------------------------------------------------------------------- ids


def subject_ids(n_subjects: int) -> list[str]:
    """Zero-padded subject labels ``"01"``, ``"02"``, ... (width >= 2).

    Parameters
    ----------
    n_subjects : int
        Number of subjects (>= 0).

    Returns
    -------
    list of str, length n_subjects
        Alphanumeric labels; the width grows for 100 subjects or more. Subject
        ``subject_ids(n)[k]`` is generated with ``subject_index=k``.
    """
    if n_subjects < 0:
        raise ValueError(f"n_subjects must be >= 0, got {n_subjects}")
    width = max(2, len(str(n_subjects)))
    return [f"{k:0{width}d}" for k in range(1, n_subjects + 1)]


def _atlas_seed(seed: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(0,))


def _subject_seed(seed: int, subject_index: int) -> np.random.SeedSequence:
    if subject_index < 0:
        raise ValueError(f"subject_index must be >= 0, got {subject_index}")
    return np.random.SeedSequence(seed, spawn_key=(1, subject_index))


# ------------------------------------------------------------------ geometry


def grid_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """World coordinates of every voxel of a 3D grid, in Fortran (NIfTI) order.

    Parameters
    ----------
    shape : tuple of 3 ints
    affine : ndarray, shape (4, 4)

    Returns
    -------
    ndarray, shape (prod(shape), 3)
        Row ``n`` is the voxel whose flat Fortran index is ``n`` (``i`` fastest).
    """
    ijk = np.indices(tuple(shape[:3]), dtype=np.float64).reshape(3, -1, order="F")
    affine = np.asarray(affine, dtype=np.float64)
    return (affine[:3, :3] @ ijk).T + affine[:3, 3]


def _ellipsoid_radius(
    coords: np.ndarray, centre: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """Normalised ellipsoid radius ``|| (x - centre) / radii ||``, shape (n,)."""
    return np.sqrt((((coords - centre) / radii) ** 2).sum(axis=1))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, ``3x^2 - 2x^3`` in between (C1-continuous)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def map_values(params: Mapping[str, Any], coords: np.ndarray) -> np.ndarray:
    """Evaluate the atlas maps at world coordinates (the one definition of the maps).

    Parameters
    ----------
    params : mapping
        Group truth (see :func:`load_group_truth`): ``centres`` (p, 3),
        ``blob_precisions`` (p, 3, 3), ``map_threshold``, ``brain_centre`` (3,),
        ``brain_radii`` (3,), ``brain_taper``.
    coords : ndarray, shape (n, 3)
        World (mm) coordinates.

    Returns
    -------
    ndarray, shape (n, p), float64
        Map values in [0, 1]; exactly 0 outside the brain and where a blob is below
        the threshold.
    """
    coords = np.asarray(coords, dtype=np.float64)
    centres = np.asarray(params["centres"], dtype=np.float64)
    precisions = np.asarray(params["blob_precisions"], dtype=np.float64)
    threshold = float(params["map_threshold"])
    radius = _ellipsoid_radius(
        coords, np.asarray(params["brain_centre"]), np.asarray(params["brain_radii"])
    )
    taper = _smoothstep((1.0 - radius) / float(params["brain_taper"]))
    inside = np.flatnonzero(taper > 0)
    values = np.zeros((coords.shape[0], centres.shape[0]))
    local = coords[inside]
    for i, (centre, precision) in enumerate(zip(centres, precisions, strict=True)):
        offset = local - centre
        quad = np.einsum("nj,jk,nk->n", offset, precision, offset)
        blob = np.exp(-0.5 * quad)
        values[inside, i] = np.clip((blob - threshold) / (1.0 - threshold), 0.0, 1.0)
    values[inside] *= taper[inside, None]
    return values


def compartment_values(params: Mapping[str, Any], coords: np.ndarray) -> np.ndarray:
    """Flat-topped profiles of the vessel/CSF-like compartments at world coordinates.

    Parameters
    ----------
    params : mapping
        Group truth: ``compartment_centres`` (c, 3), ``compartment_radii`` (c, 3),
        ``compartment_edge``.
    coords : ndarray, shape (n, 3)

    Returns
    -------
    ndarray, shape (n, c), float64
        1 in a compartment's core, falling smoothly to 0 at its surface.
    """
    coords = np.asarray(coords, dtype=np.float64)
    edge = float(params["compartment_edge"])
    columns = [
        _smoothstep((1.0 - _ellipsoid_radius(coords, centre, radii)) / edge)
        for centre, radii in zip(
            np.asarray(params["compartment_centres"]),
            np.asarray(params["compartment_radii"]),
            strict=True,
        )
    ]
    return np.stack(columns, axis=1)


# --------------------------------------------------------------------- atlas


def _uniform_in_ellipsoid(
    rng: np.random.Generator, n: int, centre: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """``n`` points drawn uniformly inside an ellipsoid, shape (n, 3)."""
    points = np.empty((0, 3))
    while points.shape[0] < n:
        cube = rng.uniform(-1.0, 1.0, size=(2 * n, 3))
        points = np.vstack([points, cube[(cube**2).sum(axis=1) <= 1.0]])
    return points[:n] * radii + centre


def _spread_centres(
    rng: np.random.Generator, n_regions: int, centre: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """Evenly spread region centres (Lloyd relaxation of a uniform sample).

    Returns
    -------
    ndarray, shape (n_regions, 3)
    """
    cloud = _uniform_in_ellipsoid(rng, max(4000, 300 * n_regions), centre, radii)
    centres = cloud[:n_regions].copy()
    for _ in range(60):
        dist = ((cloud[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        nearest = dist.argmin(axis=1)
        counts = np.bincount(nearest, minlength=n_regions)
        sums = np.stack(
            [
                np.bincount(nearest, weights=cloud[:, a], minlength=n_regions)
                for a in range(3)
            ],
            axis=1,
        )
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random 3x3 rotation matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _default_n_networks(n_regions: int) -> int:
    return max(1, min(8, round(n_regions / 5.5)))


def _random_support(
    rng: np.random.Generator, network: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse symmetric support: a spanning tree per network plus a few extra edges.

    Parameters
    ----------
    network : ndarray of int, shape (p,)
        Network index of each region (networks 0..n-1, each non-empty).

    Returns
    -------
    support : ndarray of bool, shape (p, p)
        Symmetric, diagonal False; the graph is connected.
    within : ndarray of bool, shape (p, p)
        True where both regions belong to the same network.
    """
    p = network.size
    support = np.zeros((p, p), dtype=bool)
    within = network[:, None] == network[None, :]
    n_networks = int(network.max()) + 1
    members = [np.flatnonzero(network == k) for k in range(n_networks)]

    def add(i: int, j: int) -> None:
        support[i, j] = support[j, i] = True

    def add_random(candidates: np.ndarray, n_edges: int) -> None:
        pairs = np.argwhere(np.triu(candidates & ~support, k=1))
        for idx in rng.permutation(len(pairs)):
            if n_edges <= 0:
                break
            i, j = pairs[idx]
            degree = support.sum(axis=1)
            if support[i, j] or max(degree[i], degree[j]) >= _MAX_DEGREE:
                continue
            add(int(i), int(j))
            n_edges -= 1

    for group in members:
        order = rng.permutation(group)
        for j in range(1, order.size):
            add(int(order[j]), int(order[rng.integers(j)]))
    for group in members:
        mask = np.zeros((p, p), dtype=bool)
        mask[np.ix_(group, group)] = True
        add_random(mask, round(_EXTRA_WITHIN * group.size))
    order = rng.permutation(n_networks)
    for j in range(1, n_networks):
        a = members[order[j]]
        b = members[order[rng.integers(j)]]
        add(int(rng.choice(a)), int(rng.choice(b)))
    add_random(~within, round(_EXTRA_BETWEEN * n_networks))
    np.fill_diagonal(support, False)
    return support, within


def _group_partial_correlations(
    rng: np.random.Generator, support: np.ndarray, within: np.ndarray
) -> np.ndarray:
    """Signed group partial correlations on the support, shape (p, p), zero diagonal."""
    p = support.shape[0]
    iu = np.triu_indices(p, k=1)
    magnitude = rng.uniform(*_PARTIAL_CORR_RANGE, size=iu[0].size)
    positive = np.where(within[iu], _POSITIVE_WITHIN, _POSITIVE_BETWEEN)
    sign = np.where(rng.uniform(size=iu[0].size) < positive, 1.0, -1.0)
    upper = np.zeros((p, p))
    upper[iu] = np.where(support[iu], sign * magnitude, 0.0)
    return upper + upper.T


def generate_atlas(
    maps_path: PathLike,
    labels_path: PathLike,
    truth_path: PathLike,
    *,
    n_regions: int = 39,
    seed: int = 0,
    shape: tuple[int, int, int] = DEFAULT_ATLAS_SHAPE,
    affine: np.ndarray = DEFAULT_ATLAS_AFFINE,
    n_networks: int | None = None,
    dseg_path: PathLike | None = None,
    dseg_table_path: PathLike | None = None,
) -> None:
    """Write a probabilistic atlas, its labels and the group ground truth.

    With ``dseg_path`` and ``dseg_table_path``, also the same regions as a label
    atlas (:func:`parcellation_of`) and its TemplateFlow-style table.

    Parameters
    ----------
    maps_path : path
        4D float64 NIfTI (``.nii.gz``), shape ``shape + (n_regions,)``.
    labels_path : path
        CSV with columns ``x,y,z,name,net name`` (MSDL's layout): world
        coordinates of each map's centre, unique names ``R01``.., networks ``Net1``..
    truth_path : path
        ``.npz``: ``support`` (p, p) bool (diagonal False), ``regions`` (p,),
        ``networks`` (p,) network name of each region, ``partial_correlation``
        (p, p) the group template of signed edge weights (a subject's partial
        correlations are these times a log-normal factor, then shrunk by a common
        factor so that its precision stays well-conditioned: see the subject's
        truth file), and the geometry that
        :func:`generate_subject` needs (``centres`` (p, 3), ``blob_precisions``
        (p, 3, 3), brain and compartment parameters, ``seed``).
    n_regions : int
        Number of maps p (>= 2).
    seed : int
        Seed of the whole dataset.
    shape, affine
        Atlas grid (default: MSDL's 40x48x35 at 4 mm).
    n_networks : int, optional
        Number of networks (default ``round(p / 5.5)`` clipped to 1..8).
    dseg_path, dseg_table_path : path, optional
        int16 NIfTI of region labels 1..p on the atlas grid; TSV with columns
        ``index, name, network``.
    """
    if (dseg_path is None) != (dseg_table_path is None):
        raise ValueError("give both dseg_path and dseg_table_path, or neither")
    if n_regions < 2:
        raise ValueError(f"n_regions must be >= 2, got {n_regions}")
    n_networks = _default_n_networks(n_regions) if n_networks is None else n_networks
    if not 1 <= n_networks <= n_regions:
        raise ValueError(f"n_networks must be in 1..{n_regions}, got {n_networks}")
    streams = [np.random.default_rng(s) for s in _atlas_seed(seed).spawn(4)]
    rng_centres, rng_blobs, rng_networks, rng_graph = streams

    brain_centre = np.array(BRAIN_CENTRE)
    brain_radii = np.array(BRAIN_RADII)
    centres = _spread_centres(
        rng_centres, n_regions, brain_centre, CENTRE_SHRINK * brain_radii
    )
    # Networks: balanced random groups; regions ordered by network, then by x, y, z.
    network = np.empty(n_regions, dtype=np.int64)
    network[rng_networks.permutation(n_regions)] = np.arange(n_regions) % n_networks
    order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0], network))
    centres, network = centres[order], network[order]

    # Blob widths scale with the spacing between centres (~27 mm for 39 regions).
    volume = 4.0 / 3.0 * math.pi * np.prod(CENTRE_SHRINK * brain_radii)
    spacing = (volume / n_regions) ** (1.0 / 3.0)
    precisions = np.empty((n_regions, 3, 3))
    for i in range(n_regions):
        sigmas = spacing * rng_blobs.uniform(0.3, 0.45, size=3)
        rotation = _random_rotation(rng_blobs)
        precisions[i] = rotation @ np.diag(sigmas**-2.0) @ rotation.T

    support, within = _random_support(rng_graph, network)
    partial = _group_partial_correlations(rng_graph, support, within)

    width = max(2, len(str(n_regions)))
    regions = np.array([f"R{i + 1:0{width}d}" for i in range(n_regions)])
    networks = np.array([f"Net{k + 1}" for k in network])
    truth: dict[str, Any] = {
        "support": support,
        "regions": regions,
        "networks": networks,
        "partial_correlation": partial,
        "centres": centres,
        "blob_precisions": precisions,
        "map_threshold": np.float64(MAP_THRESHOLD),
        "brain_centre": brain_centre,
        "brain_radii": brain_radii,
        "brain_taper": np.float64(BRAIN_TAPER),
        "compartment_centres": np.array(COMPARTMENT_CENTRES),
        "compartment_radii": np.array(COMPARTMENT_RADII),
        "compartment_edge": np.float64(COMPARTMENT_EDGE),
        "seed": np.int64(seed),
    }

    affine = np.asarray(affine, dtype=np.float64)
    shape = tuple(int(s) for s in shape)
    # float64: nilearn solves the least squares in the maps' precision, and float32
    # maps would make the reference itself inaccurate at the 1e-4 level.
    maps = map_values(truth, grid_coordinates(shape, affine)).astype(np.float64)
    maps = maps.reshape(*shape, n_regions, order="F")
    image = nib.Nifti1Image(maps, affine)
    _set_spatial_header(image, affine, t_r=None)
    save_nifti(image, maps_path)

    labels = pd.DataFrame(
        {
            "x": centres[:, 0],
            "y": centres[:, 1],
            "z": centres[:, 2],
            "name": regions,
            "net name": networks,
        }
    )
    with atomic_output(labels_path) as tmp:
        labels.to_csv(tmp, index=False, float_format="%.2f", lineterminator="\n")
    if dseg_path is not None:
        dseg = nib.Nifti1Image(parcellation_of(maps), affine)
        _set_spatial_header(dseg, affine, t_r=None)
        save_nifti(dseg, dseg_path)
        table = pd.DataFrame(
            {"index": np.arange(1, n_regions + 1), "name": regions, "network": networks}
        )
        with atomic_output(dseg_table_path) as tmp:
            table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    write_npz(truth_path, **truth)


def parcellation_of(maps: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Hard labels of probabilistic maps: the strongest map where it is >= threshold.

    Parameters
    ----------
    maps : ndarray, shape (x, y, z, p)

    Returns
    -------
    ndarray, shape (x, y, z), int16: 1..p, 0 where no map reaches ``threshold``
    """
    strongest = np.argmax(maps, axis=3)
    peak = np.take_along_axis(maps, strongest[..., None], axis=3)[..., 0]
    return np.where(peak >= threshold, strongest + 1, 0).astype(np.int16)


def load_group_truth(path: PathLike) -> dict[str, Any]:
    """Read the group truth written by :func:`generate_atlas` into a dict of arrays."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _set_spatial_header(
    image: nib.Nifti1Image, affine: np.ndarray, t_r: float | None
) -> None:
    """Units mm/s, sform and qform (MNI code), voxel sizes and TR in pixdim."""
    header = image.header
    header.set_xyzt_units("mm", "sec")
    image.set_sform(affine, code=4)
    image.set_qform(affine, code=4)
    zooms = list(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    if image.ndim == 4:
        zooms.append(1.0 if t_r is None else float(t_r))
    header.set_zooms(zooms)


# ------------------------------------------------------------------- subject


def _subject_precision(
    rng: np.random.Generator, partial: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a subject's covariance/precision on the group support.

    Returns
    -------
    covariance : ndarray, shape (p, p)
        Unit diagonal.
    precision : ndarray, shape (p, p)
        Its inverse, exactly zero off the support.
    partial_correlation : ndarray, shape (p, p)
        The subject's partial correlations (zero diagonal).
    """
    p = partial.shape[0]
    iu = np.triu_indices(p, k=1)
    factor = np.exp(_SUBJECT_LOG_SD * rng.standard_normal(iu[0].size))
    upper = np.zeros((p, p))
    upper[iu] = partial[iu] * factor
    rho = upper + upper.T
    top = np.linalg.eigvalsh(rho)[-1]
    if top > 1.0 - _MIN_EIGENVALUE:
        rho *= (1.0 - _MIN_EIGENVALUE) / top
    unit_precision = np.eye(p) - rho
    covariance = np.linalg.inv(unit_precision)
    covariance = 0.5 * (covariance + covariance.T)
    scale = np.sqrt(np.diag(covariance))
    covariance /= np.outer(scale, scale)
    np.fill_diagonal(covariance, 1.0)
    precision = unit_precision * np.outer(scale, scale)
    return covariance, precision, rho


def _ar1(innovations: np.ndarray, coef: float) -> np.ndarray:
    """Stationary AR(1) filter along axis 0 (keeps the marginal covariance)."""
    out = np.empty_like(innovations)
    out[0] = innovations[0]
    gain = math.sqrt(1.0 - coef**2)
    for t in range(1, innovations.shape[0]):
        out[t] = coef * out[t - 1] + gain * innovations[t]
    return out


def _detrend_columns(series: np.ndarray) -> np.ndarray:
    """Remove mean and linear trend from each column, shape (n, k)."""
    n = series.shape[0]
    design = np.column_stack([np.ones(n), np.linspace(-1.0, 1.0, n)])
    coef, *_ = np.linalg.lstsq(design, series, rcond=None)
    return series - design @ coef


def _motion_parameters(rng: np.random.Generator, n_volumes: int) -> np.ndarray:
    """Smooth random-walk motion parameters, shape (n_volumes, 6): mm then radians."""
    steps = rng.standard_normal((n_volumes + 8, 6))
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    kernel /= np.sqrt((kernel**2).sum())
    smooth = np.stack(
        [np.convolve(steps[:, k], kernel, mode="valid") for k in range(6)], axis=1
    )[:n_volumes]
    smooth *= np.array([_TRANSLATION_STEP] * 3 + [_ROTATION_STEP] * 3)
    walk = np.cumsum(smooth, axis=0)
    return walk - walk[0]


def _smooth_field(
    rng: np.random.Generator, coords: np.ndarray, n_waves: int = 3
) -> np.ndarray:
    """Smooth random spatial field in [-1, 1], shape (n,)."""
    field = np.zeros(coords.shape[0])
    weights = rng.uniform(0.5, 1.0, size=n_waves)
    for weight in weights:
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        wavelength = rng.uniform(120.0, 240.0)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        field += weight * np.cos(
            2.0 * math.pi * coords @ direction / wavelength + phase
        )
    return field / weights.sum()


def generate_subject(
    func_path: PathLike,
    confounds_path: PathLike,
    truth_path: PathLike,
    *,
    atlas_truth_path: PathLike,
    subject_index: int,
    subject: str,
    seed: int = 0,
    n_volumes: int = 176,
    t_r: float = 2.5,
    shape: tuple[int, int, int] = DEFAULT_FUNC_SHAPE,
    affine: np.ndarray = DEFAULT_FUNC_AFFINE,
    n_file_confounds: int = 6,
    dtype: str = "int16",
) -> None:
    """Write one subject's 4D func image, confounds table and ground truth.

    Parameters
    ----------
    func_path : path
        4D NIfTI-1 (``.nii.gz``), shape ``shape + (n_volumes,)``; int16 with
        ``scl_slope=1, scl_inter=0`` (rounded, clipped) or float32; TR in pixdim[4],
        units mm/s.
    confounds_path : path
        TSV with header, ``n_volumes`` rows, the first ``n_file_confounds`` of
        :data:`MOTION_COLUMNS` (translations in mm, rotations in radians).
    truth_path : path
        ``.npz``: ``covariance``, ``precision`` (p, p) float64 (precision is the
        inverse of covariance, unit-diagonal covariance, zero off the group support),
        ``partial_correlation`` (p, p), ``subject``, ``regions`` (p,),
        ``timeseries`` (n_volumes, p) the region time courses z, ``amplitude``,
        ``motion`` (n_volumes, 6), ``physio`` (n_volumes, 6) unit-RMS physiological
        time courses, ``physio_amplitudes`` (6,), ``drifts`` (n_volumes, 2) linear and
        cosine drift time courses, ``t_r``.
    atlas_truth_path : path
        Group truth written by :func:`generate_atlas`.
    subject_index : int
        >= 0; with ``seed`` it determines all of this subject's random draws.
    subject : str
        Subject label stored in the truth file.
    seed : int
        Seed of the dataset (use the atlas's).
    n_volumes : int
        Number of volumes (>= 8).
    t_r : float
        Repetition time in seconds.
    shape, affine
        Func grid: any 3D shape and 4x4 affine (e.g. x-flipped, or a field of view
        that covers only part of the brain).
    n_file_confounds : int
        Number of motion columns written, 1..6.
    dtype : {"int16", "float32"}
        Stored data type.
    """
    if dtype not in ("int16", "float32"):
        raise ValueError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
    if not 1 <= n_file_confounds <= len(MOTION_COLUMNS):
        raise ValueError(f"n_file_confounds must be in 1..6, got {n_file_confounds}")
    if n_volumes < 8:
        raise ValueError(f"n_volumes must be >= 8, got {n_volumes}")
    if t_r <= 0:
        raise ValueError(f"t_r must be > 0, got {t_r}")
    group = load_group_truth(atlas_truth_path)
    streams = [
        np.random.default_rng(s) for s in _subject_seed(seed, subject_index).spawn(7)
    ]
    rng_prec, rng_z, rng_motion, rng_physio, rng_drift, rng_space, rng_noise = streams

    # --- time courses -------------------------------------------------------
    covariance, precision, rho = _subject_precision(
        rng_prec, group["partial_correlation"]
    )
    p = covariance.shape[0]
    amplitude = _SIGNAL_AMPLITUDE * rng_prec.uniform(0.9, 1.1)
    chol = np.linalg.cholesky(covariance)
    z = _ar1(rng_z.standard_normal((n_volumes, p)) @ chol.T, _REGION_AR)
    motion = _motion_parameters(rng_motion, n_volumes)
    raw_physio = _ar1(rng_physio.standard_normal((n_volumes, 6)), _PHYSIO_AR)
    physio, _ = np.linalg.qr(_detrend_columns(raw_physio))
    physio *= math.sqrt(n_volumes)
    seconds = np.arange(n_volumes) * float(t_r)
    period = rng_drift.uniform(*_COSINE_PERIOD)
    phase = rng_drift.uniform(0.0, 2.0 * math.pi)
    drifts = np.column_stack(
        [
            np.linspace(-0.5, 0.5, n_volumes),
            np.cos(2.0 * math.pi * seconds / period + phase),
        ]
    )

    # --- spatial weights on the voxels of the head (brain + compartments) ----
    affine = np.asarray(affine, dtype=np.float64)
    shape = tuple(int(s) for s in shape)
    coords = grid_coordinates(shape, affine)
    brain_centre = np.asarray(group["brain_centre"])
    brain_radii = np.asarray(group["brain_radii"])
    radius = _ellipsoid_radius(coords, brain_centre, brain_radii)
    compartments = compartment_values(group, coords)
    in_brain = radius <= 1.0
    voxels = np.flatnonzero(in_brain | (compartments > 0).any(axis=1))
    # Canonical (world) voxel order: grids that list the same world points in
    # another order (e.g. an x-flipped affine) get exactly the same values.
    world = np.round(coords[voxels], 4)
    voxels = voxels[np.lexsort((world[:, 0], world[:, 1], world[:, 2]))]
    coords, radius, in_brain = coords[voxels], radius[voxels], in_brain[voxels]
    compartments = compartments[voxels]

    baseline = np.where(
        in_brain,
        _BASELINE + _BASELINE_VARIATION * _smooth_field(rng_space, coords),
        0.0,
    )
    baseline += _COMPARTMENT_BASELINE * compartments.sum(axis=1)
    relative = (coords - brain_centre) / brain_radii
    drift_weights = np.column_stack(
        [
            _LINEAR_DRIFT
            * (rng_space.uniform(-1, 1) + relative @ rng_space.normal(0, 0.3, 3)),
            _COSINE_DRIFT
            * (rng_space.uniform(-1, 1) + relative @ rng_space.normal(0, 0.3, 3)),
        ]
    )
    # Motion: intensity change = gain * rim * normal . displacement, with the
    # displacement trans + rot x r, i.e. normal . trans + (r x normal) . rot.
    normal = relative / brain_radii
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    offset = coords - brain_centre
    rim = np.where(in_brain, np.exp(-(((1.0 - radius) / _RIM_WIDTH) ** 2)), 0.0)
    motion_weights = (_MOTION_GAIN * rim)[:, None] * np.hstack(
        [normal, np.cross(offset, normal)]
    )
    # Physiology: contributions to the Gram matrix in the ratios PHYSIO_EIGEN_RATIOS.
    energy = (compartments**2).sum(axis=0)
    present = energy > 0
    reference = energy[present].mean() if present.any() else 1.0
    physio_amplitudes = np.zeros(6)
    physio_amplitudes[present] = _PHYSIO_STD * np.sqrt(
        np.asarray(PHYSIO_EIGEN_RATIOS)[present] * reference / energy[present]
    )
    maps = map_values(group, coords)

    # --- voxel time series, float32, (voxels, volumes) ----------------------
    f32 = np.float32
    data = rng_noise.standard_normal((voxels.size, n_volumes), dtype=f32)
    data *= f32(_NOISE_STD)
    data += baseline.astype(f32)[:, None]
    data += maps.astype(f32) @ (amplitude * z.T).astype(f32)
    data += drift_weights.astype(f32) @ drifts.T.astype(f32)
    data += motion_weights.astype(f32) @ motion.T.astype(f32)
    data += (compartments * physio_amplitudes).astype(f32) @ physio.T.astype(f32)

    if dtype == "int16":
        info = np.iinfo(np.int16)
        np.rint(data, out=data)
        np.clip(data, info.min, info.max, out=data)
        stored = data.astype(np.int16)
    else:
        stored = data
    del data
    volume = np.zeros((*shape, n_volumes), dtype=stored.dtype, order="F")
    volume.reshape((-1, n_volumes), order="F")[voxels] = stored
    del stored
    image = nib.Nifti1Image(volume, affine)
    image.header.set_data_dtype(volume.dtype)
    _set_spatial_header(image, affine, t_r=t_r)
    image.header.set_slope_inter(1.0, 0.0)
    save_nifti(image, func_path)
    del image, volume

    confounds = pd.DataFrame(
        motion[:, :n_file_confounds], columns=list(MOTION_COLUMNS[:n_file_confounds])
    )
    write_tsv(confounds, confounds_path)
    write_npz(
        truth_path,
        covariance=covariance,
        precision=precision,
        partial_correlation=rho,
        subject=np.array(subject),
        subject_index=np.int64(subject_index),
        seed=np.int64(seed),
        regions=group["regions"],
        timeseries=z,
        amplitude=np.float64(amplitude),
        motion=motion,
        physio=physio,
        physio_amplitudes=physio_amplitudes,
        drifts=drifts,
        t_r=np.float64(t_r),
    )


def group_sparse_samples(
    seed: int,
    n_subjects: int,
    n_regions: int,
    n_samples: int | Sequence[int],
    *,
    density: float,
    strength: tuple[float, float] = (0.2, 0.5),
    margin: float = 0.3,
) -> tuple[list[np.ndarray], np.ndarray]:
    """z-scored Gaussian samples of subject precisions sharing one sparse support.

    The group-sparse model in its plainest form, for tests and benchmarks of the
    estimators: each off-diagonal entry is in the shared support with probability
    ``density``; each subject draws its own values there (uniform in
    ``strength``, random sign) and a diagonal making its precision positive
    definite with at least ``margin`` (plus a uniform [0, 1) draw) of smallest
    eigenvalue. ``n_samples`` is one count for all subjects or one per subject.

    Returns
    -------
    subjects : list of ndarray, each (n_samples_k, n_regions), columns z-scored
    support : ndarray, shape (n_regions, n_regions), bool, symmetric, diagonal False
    """
    rng = np.random.default_rng(seed)
    counts = (
        [int(n_samples)] * n_subjects
        if np.isscalar(n_samples)
        else [int(n) for n in n_samples]
    )
    upper = np.triu_indices(n_regions, 1)
    support = rng.random(upper[0].size) < density
    m = int(support.sum())
    subjects = []
    for n in counts:
        values = np.zeros(upper[0].size)
        values[support] = rng.uniform(*strength, m) * rng.choice([-1.0, 1.0], m)
        precision = np.zeros((n_regions, n_regions))
        precision[upper] = values
        precision += precision.T
        shift = max(0.0, -np.linalg.eigvalsh(precision).min()) + margin
        precision += (shift + rng.random()) * np.eye(n_regions)
        chol = np.linalg.cholesky(np.linalg.inv(precision))
        x = rng.standard_normal((n, n_regions)) @ chol.T
        subjects.append((x - x.mean(0)) / x.std(0, ddof=1))
    truth = np.zeros((n_regions, n_regions), dtype=bool)
    truth[upper] = support
    return subjects, truth | truth.T
