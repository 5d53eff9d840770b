"""Figures of the workflow, drawn with matplotlib alone (Agg, off-screen).

Connectomes in three orthogonal projections over a brain outline derived from the
atlas, region x region matrices (covariance, sparsity pattern, precision), the
cross-validation curve of an estimate and a per-subject quality-control figure.
Figures are saved with :func:`save_figure`: fixed DPI, no time stamp nor software
version in the file, written atomically, so a rerun writes the same bytes.

World coordinates are the atlas affine's (RAS+ millimetres, as NIfTI's): the
views follow the neurological convention (left on the left in the coronal and
axial views; anterior on the right in the sagittal view, seen from the left).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import ndimage

from sparseconn.io import PathLike, atomic_output

#: Diverging colormap of signed values (connectome edges, matrices).
DIVERGING_CMAP = "RdBu_r"
#: Figure formats that can be written, with the metadata that keeps them
#: byte-identical across reruns (no date, no software version).
FORMAT_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
}
#: The projections of a connectome: (name, horizontal world axis, vertical one).
VIEWS: tuple[tuple[str, int, int], ...] = (
    ("sagittal", 1, 2),
    ("coronal", 0, 2),
    ("axial", 0, 1),
)
_AXIS_NAMES = "xyz"
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")

# Fixed style: the same figure on every machine whatever its matplotlib config.
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "svg.hashsalt": "sparseconn",
    "svg.fonttype": "path",
    "path.simplify": True,
}


# ------------------------------------------------------------------------- saving


def save_figure(figure: Figure, path: PathLike, *, dpi: int = 100) -> None:
    """Save ``figure`` to ``path`` (format from the suffix), reproducibly.

    Parameters
    ----------
    figure : matplotlib Figure
    path : path-like
        Ends with ``.png`` or ``.svg``.
    dpi : int
        Dots per inch (PNG pixel size = figure inches x dpi).
    """
    fmt = str(path).rsplit(".", 1)[-1].lower()
    if fmt not in FORMAT_METADATA:
        raise ValueError(
            f"figure format {fmt!r} is not one of {sorted(FORMAT_METADATA)}"
        )
    with atomic_output(path) as tmp, matplotlib.rc_context(_STYLE):
        figure.savefig(tmp, format=fmt, dpi=dpi, metadata=FORMAT_METADATA[fmt])


def _new_figure(width: float, height: float) -> Figure:
    """A figure outside pyplot (no global state, nothing to close; Agg canvas)."""
    with matplotlib.rc_context(_STYLE):
        return Figure(figsize=(width, height))


# --------------------------------------------------------------- edge thresholds


def parse_edge_threshold(threshold: str | float) -> tuple[str, float]:
    """Read an edge threshold: ``"80%"`` (percentile) or a number (absolute).

    Returns
    -------
    kind : {"percentile", "absolute"}
    value : float
        The percentile (0..100) or the absolute value (>= 0).

    Raises
    ------
    ValueError
        A string that is not a percentage, a percentage above 100 or a negative
        number.
    """
    if isinstance(threshold, str):
        match = _PERCENT.match(threshold)
        if match is None:
            try:
                threshold = float(threshold)
            except ValueError:
                raise ValueError(
                    f"edge threshold {threshold!r} is neither a percentage such as "
                    "'80%' nor a number"
                ) from None
        else:
            value = float(match.group(1))
            if value > 100:
                raise ValueError(f"edge threshold {threshold!r} is above 100%")
            return "percentile", value
    value = float(threshold)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"edge threshold {threshold!r} must be a number >= 0")
    return "absolute", value


def edge_threshold_value(matrix: np.ndarray, threshold: str | float) -> float:
    """Absolute value at and above which an off-diagonal entry is an edge.

    Parameters
    ----------
    matrix : ndarray, shape (p, p), symmetric
    threshold : str or float
        ``"<q>%"``: the q-th percentile (linear interpolation) of the absolute
        off-diagonal values of the upper triangle; a number: itself.
    """
    kind, value = parse_edge_threshold(threshold)
    if kind == "absolute":
        return value
    upper = np.abs(matrix[np.triu_indices(matrix.shape[0], k=1)])
    return float(np.percentile(upper, value)) if upper.size else 0.0


def connectome_edges(
    matrix: np.ndarray, threshold: str | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges of a connectome: off-diagonal entries with ``|value| >= threshold``.

    Zero entries are never edges (a sparse precision's zeros are absent links).

    Parameters
    ----------
    matrix : ndarray, shape (p, p), symmetric
    threshold : str or float
        See :func:`edge_threshold_value`.

    Returns
    -------
    rows, cols : ndarray of int, shape (n_edges,)
        Region indices, ``rows < cols``.
    values : ndarray, shape (n_edges,)
        The entries, sorted by increasing absolute value (the strongest are
        drawn last, on top), ties in row-major order.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a square matrix is required, got shape {matrix.shape}")
    cutoff = edge_threshold_value(matrix, threshold)
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    values = matrix[rows, cols]
    keep = (np.abs(values) >= cutoff) & (values != 0)
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.argsort(np.abs(values), kind="stable")
    return rows[order], cols[order], values[order]


# ------------------------------------------------------------ region coordinates


def voxel_to_world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """World coordinates of voxel indices: ``affine @ [i, j, k, 1]``.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
    ijk : ndarray, shape (n, 3)

    Returns
    -------
    ndarray, shape (n, 3)
    """
    ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def map_centre(map_3d: np.ndarray, affine: np.ndarray, percentile: float = 90.0):
    """World centre of a map's largest connected component above a high threshold.

    The map's dominant sign is kept (a map whose largest absolute value is
    negative is negated); the voxels at or above the ``percentile``-th percentile
    of its positive values are split into face-connected components
    (``scipy.ndimage.label``); the largest (the first on ties) gives the centre,
    its centre of mass weighted by the map's values.

    Parameters
    ----------
    map_3d : ndarray, shape (x, y, z)
    affine : ndarray, shape (4, 4)
    percentile : float
        Threshold as a percentile of the map's positive values.

    Returns
    -------
    ndarray, shape (3,)
        World coordinates (mm).
    """
    values = np.asarray(map_3d, dtype=np.float64)
    if values.max() < -values.min():
        values = -values
    positive = values[values > 0]
    if positive.size == 0:
        raise ValueError("the map has no non-zero value")
    mask = values >= np.percentile(positive, percentile)
    labels, n_components = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=n_components + 1)[1:]
    largest = int(np.argmax(sizes)) + 1
    centre = ndimage.center_of_mass(np.where(labels == largest, values, 0.0))
    return voxel_to_world(affine, np.asarray(centre))[0]


def region_coordinates(
    maps: np.ndarray, affine: np.ndarray, labels: pd.DataFrame | None = None
) -> np.ndarray:
    """World coordinates of each region: the labels' x, y, z, else map centres.

    Parameters
    ----------
    maps : ndarray, shape (x, y, z, p)
    affine : ndarray, shape (4, 4)
    labels : DataFrame or None
        With columns ``x, y, z`` (all finite), those are used as they are.

    Returns
    -------
    ndarray, shape (p, 3)
    """
    if labels is not None and {"x", "y", "z"} <= set(labels.columns):
        coords = labels[["x", "y", "z"]].to_numpy(dtype=np.float64)
        if np.isfinite(coords).all():
            return coords
    return np.array(
        [map_centre(maps[..., index], affine) for index in range(maps.shape[3])]
    )


def brain_mask(maps: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Voxels covered by the atlas: any map above ``fraction`` of its own maximum.

    Parameters
    ----------
    maps : ndarray, shape (x, y, z, p)

    Returns
    -------
    ndarray of bool, shape (x, y, z)
    """
    magnitude = np.abs(maps)
    peaks = magnitude.reshape(-1, maps.shape[3]).max(axis=0)
    return np.any(magnitude > fraction * peaks, axis=3)


def _projected_outline(
    world: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth 2D occupancy image of projected points, on a grid of ``step`` mm."""
    low = world.min(axis=0) - 3 * step
    high = world.max(axis=0) + 3 * step
    bins = np.maximum(np.ceil((high - low) / step).astype(int), 1)
    counts, edges_a, edges_b = np.histogram2d(
        world[:, 0],
        world[:, 1],
        bins=bins,
        range=[[low[0], high[0]], [low[1], high[1]]],
    )
    filled = ndimage.binary_fill_holes(ndimage.binary_closing(counts > 0))
    smooth = ndimage.gaussian_filter(filled.astype(np.float64), sigma=1.0)
    centres_a = (edges_a[:-1] + edges_a[1:]) / 2
    centres_b = (edges_b[:-1] + edges_b[1:]) / 2
    return centres_a, centres_b, smooth.T


# ---------------------------------------------------------------------- connectome


@dataclass
class ConnectomeFigure:
    """A drawn connectome and what was drawn, for inspection.

    Attributes
    ----------
    figure : matplotlib Figure
    rows, cols, values : ndarray, shape (n_edges,)
        The edges drawn (see :func:`connectome_edges`).
    coords : ndarray, shape (p, 3)
        World coordinates of the nodes.
    axes : dict of str to Axes
        One per view (``sagittal``, ``coronal``, ``axial``).
    edge_collections : dict of str to LineCollection
        The edges of each view, one segment per edge, in ``values`` order.
    node_collections : dict of str to PathCollection
        The nodes of each view (offsets = the projected coordinates).
    """

    figure: Figure
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    coords: np.ndarray
    axes: dict[str, Any] = field(default_factory=dict)
    edge_collections: dict[str, LineCollection] = field(default_factory=dict)
    node_collections: dict[str, Any] = field(default_factory=dict)


def plot_connectome(
    matrix: np.ndarray,
    coords: np.ndarray,
    *,
    mask: np.ndarray,
    affine: np.ndarray,
    edge_threshold: str | float = "80%",
    title: str = "",
    node_colors: Sequence[Any] | None = None,
    max_edges: int | None = None,
) -> ConnectomeFigure:
    """Draw a connectome in sagittal, coronal and axial projections.

    Parameters
    ----------
    matrix : ndarray, shape (p, p), symmetric
        Edge values (e.g. the negated precision); the diagonal is ignored.
    coords : ndarray, shape (p, 3)
        World coordinates of the nodes (mm).
    mask : ndarray of bool, shape (x, y, z)
        Voxels of the brain outline (e.g. :func:`brain_mask`), on ``affine``'s grid.
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine of ``mask``.
    edge_threshold : str or float
        ``"80%"`` keeps the entries at or above the 80th percentile of the
        absolute off-diagonal values; a number is an absolute threshold.
    title : str
    node_colors : sequence of colours, length p, optional
        Default black.
    max_edges : int, optional
        Draw at most this many edges: the strongest (largest ``|value|``) of
        those the threshold keeps (hundreds of regions keep tens of thousands).

    Returns
    -------
    ConnectomeFigure
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    p = matrix.shape[0]
    if coords.shape != (p, 3):
        raise ValueError(f"coords must have shape ({p}, 3), got {coords.shape}")
    rows, cols, values = connectome_edges(matrix, edge_threshold)
    n_above = rows.size
    if max_edges is not None and n_above > max_edges:
        strongest = np.sort(np.argsort(-np.abs(values), kind="stable")[:max_edges])
        rows, cols, values = rows[strongest], cols[strongest], values[strongest]
    off_diagonal = matrix[~np.eye(p, dtype=bool)]
    span = float(np.abs(off_diagonal).max()) if off_diagonal.size else 0.0
    norm = Normalize(vmin=-span, vmax=span) if span > 0 else Normalize(-1, 1)
    cmap = matplotlib.colormaps[DIVERGING_CMAP]
    colors = cmap(norm(values))
    widths = 0.8 + 2.2 * (np.abs(values) / span if span > 0 else np.zeros_like(values))

    outline_world = voxel_to_world(affine, np.argwhere(mask))
    step = float(np.min(np.linalg.norm(affine[:3, :3], axis=0)))
    everything = np.vstack([outline_world, coords]) if outline_world.size else coords
    low, high = everything.min(axis=0), everything.max(axis=0)
    sizes = {name: high[a] - low[a] for name, a, _ in VIEWS}
    height = max(high[2] - low[2], high[1] - low[1])
    ratios = [max(sizes[name], 1.0) for name, _, _ in VIEWS]

    cutoff = edge_threshold_value(matrix, edge_threshold)
    kind, amount = parse_edge_threshold(edge_threshold)
    rule = f"{amount:g}th percentile" if kind == "percentile" else "threshold"
    figure = _new_figure(12.0, 4.6)
    with matplotlib.rc_context(_STYLE):
        grid = figure.add_gridspec(
            1,
            4,
            width_ratios=[*ratios, 0.03 * sum(ratios)],
            left=0.01,
            right=0.95,
            bottom=0.04,
            top=0.84,
            wspace=0.06,
        )
        figure.text(0.01, 0.985, title, fontsize=12, va="top", ha="left")
        figure.text(
            0.01,
            0.915,
            (
                f"{rows.size} edges: |value| ≥ {cutoff:.3g} ({rule})"
                if rows.size == n_above
                else f"the {rows.size} strongest of {n_above} edges with "
                f"|value| ≥ {cutoff:.3g} ({rule})"
            ),
            fontsize=8,
            va="top",
            ha="left",
            color="0.3",
        )
        result = ConnectomeFigure(figure, rows, cols, values, coords)
        node_colors = ["black"] * p if node_colors is None else list(node_colors)
        for index, (name, a, b) in enumerate(VIEWS):
            ax = figure.add_subplot(grid[0, index])
            if outline_world.size:
                x_grid, y_grid, image = _projected_outline(
                    outline_world[:, [a, b]], step
                )
                ax.contourf(x_grid, y_grid, image, levels=[0.5, 2.0], colors=["0.93"])
                ax.contour(
                    x_grid, y_grid, image, levels=[0.5], colors=["0.55"], linewidths=1
                )
            segments = np.stack(
                [coords[rows][:, [a, b]], coords[cols][:, [a, b]]], axis=1
            ).reshape(-1, 2, 2)
            lines = LineCollection(segments, colors=colors, linewidths=widths, zorder=2)
            ax.add_collection(lines)
            nodes = ax.scatter(
                coords[:, a],
                coords[:, b],
                s=18,
                c=node_colors,
                edgecolors="white",
                linewidths=0.5,
                zorder=3,
            )
            margin = 0.04 * height + 2 * step
            ax.set_xlim(low[a] - margin, high[a] + margin)
            ax.set_ylim(low[b] - margin, high[b] + margin)
            ax.set_aspect("equal", adjustable="box", anchor="S")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(name, fontsize=9, color="0.3")
            if name == "sagittal":
                ax.text(0.0, 0.0, "P", transform=ax.transAxes, color="0.4")
                ax.text(1.0, 0.0, "A", transform=ax.transAxes, color="0.4", ha="right")
            else:
                ax.text(0.0, 0.0, "L", transform=ax.transAxes, color="0.4")
                ax.text(1.0, 0.0, "R", transform=ax.transAxes, color="0.4", ha="right")
            result.axes[name] = ax
            result.edge_collections[name] = lines
            result.node_collections[name] = nodes
        cell = figure.add_subplot(grid[0, 3])
        cell.set_axis_off()
        colorbar_ax = cell.inset_axes((0.0, 0.15, 0.6, 0.7))
        mappable = ScalarMappable(norm=norm, cmap=cmap)
        colorbar = figure.colorbar(mappable, cax=colorbar_ax)
        colorbar.ax.tick_params(labelsize=8)
    return result


# ------------------------------------------------------------------------ matrices


def network_colors(networks: Sequence[str]) -> dict[str, Any]:
    """A colour per network, in order of first appearance (tab10, then tab20)."""
    names = list(dict.fromkeys(networks))
    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: palette(index % palette.N) for index, name in enumerate(names)}


#: Up to this many regions, a matrix names each one on its axes; beyond, its
#: regions are grouped by network (one label per network block) or every k-th
#: region is named.
MATRIX_NAMED_REGIONS = 80


def plot_matrix(
    matrix: np.ndarray,
    names: Sequence[str],
    *,
    kind: str,
    title: str = "",
    networks: Sequence[str] | None = None,
) -> Figure:
    """Draw a region x region matrix with region names on both axes.

    Parameters
    ----------
    matrix : ndarray, shape (p, p)
    names : sequence of str, length p
    kind : {"covariance", "sparsity", "precision", "probability"}
        ``covariance``: limits -1..1, diverging colormap; ``sparsity``: where the
        matrix is zero (black) or not; ``precision``: the diagonal set to zero and
        symmetric limits at the largest remaining absolute value;
        ``probability``: limits 0..1, sequential colormap, diagonal blank.
    title : str
    networks : sequence of str, length p, optional
        Network of each region: tick labels take the network's colour and lines
        separate consecutive regions of different networks. Beyond
        :data:`MATRIX_NAMED_REGIONS` regions, the regions are reordered into
        network blocks (networks in order of first appearance) and each block is
        labelled with its network; without networks, every k-th region is named.

    Returns
    -------
    matplotlib Figure
    """
    matrix = np.array(matrix, dtype=np.float64)
    p = matrix.shape[0]
    if matrix.shape != (p, p) or len(names) != p:
        raise ValueError(
            f"a square matrix with one name per row is required, got shape "
            f"{matrix.shape} and {len(names)} names"
        )
    if networks is not None and p > MATRIX_NAMED_REGIONS:
        # network-ordered blocks (e.g. Schaefer's hemispheres split each network)
        first = {name: i for i, name in reversed(list(enumerate(networks)))}
        order = sorted(range(p), key=lambda i: (first[networks[i]], i))
        matrix = matrix[np.ix_(order, order)]
        names = [names[i] for i in order]
        networks = [networks[i] for i in order]
    figure = _new_figure(7.6, 6.8)
    with matplotlib.rc_context(_STYLE):
        ax = figure.add_axes((0.2, 0.2, 0.64, 0.72))
        if kind == "covariance":
            image = ax.imshow(
                matrix, cmap=DIVERGING_CMAP, vmin=-1, vmax=1, interpolation="nearest"
            )
            colorbar_label = "covariance"
        elif kind == "sparsity":
            zero = (matrix == 0).astype(np.float64)
            image = ax.imshow(
                zero,
                cmap=ListedColormap(["#f4f4f4", "#202020"]),
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            colorbar_label = None
        elif kind == "precision":
            np.fill_diagonal(matrix, 0.0)
            span = float(np.abs(matrix).max()) or 1.0
            image = ax.imshow(
                matrix,
                cmap=DIVERGING_CMAP,
                vmin=-span,
                vmax=span,
                interpolation="nearest",
            )
            colorbar_label = "precision (diagonal set to 0)"
        elif kind == "probability":
            np.fill_diagonal(matrix, np.nan)
            image = ax.imshow(
                matrix, cmap="viridis", vmin=0, vmax=1, interpolation="nearest"
            )
            colorbar_label = "selection probability"
        else:
            raise ValueError(
                f"kind {kind!r} is not one of 'covariance', 'sparsity', "
                "'precision', 'probability'"
            )
        fontsize = float(np.clip(260.0 / max(p, 1), 3.0, 8.0))
        if p <= MATRIX_NAMED_REGIONS:
            ticks, labels = np.arange(p), list(names)
        elif networks is not None:
            # one label per network, at the middle of each of its blocks
            starts = np.flatnonzero(
                np.r_[True, np.asarray(networks[1:]) != np.asarray(networks[:-1])]
            )
            ends = np.r_[starts[1:], p]
            ticks = (starts + ends - 1) / 2
            labels = [str(networks[start]) for start in starts]
            fontsize = 7.0
        else:
            step = int(np.ceil(p / MATRIX_NAMED_REGIONS))
            ticks = np.arange(0, p, step)
            labels = [str(names[i]) for i in ticks]
        ax.set_xticks(ticks, labels=labels, rotation=90, fontsize=fontsize)
        ax.set_yticks(ticks, labels=labels, fontsize=fontsize)
        ax.tick_params(length=2, pad=1)
        if networks is not None:
            colours = network_colors(networks)
            tick_networks = (
                networks if p <= MATRIX_NAMED_REGIONS else [str(n) for n in labels]
            )
            for axis_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
                for label, network in zip(axis_labels, tick_networks, strict=True):
                    label.set_color(colours[network])
            for boundary in np.flatnonzero(
                np.asarray(networks[1:]) != np.asarray(networks[:-1])
            ):
                ax.axhline(boundary + 0.5, color="0.2", linewidth=0.6)
                ax.axvline(boundary + 0.5, color="0.2", linewidth=0.6)
            handles = [
                Patch(color=colour, label=name) for name, colour in colours.items()
            ]
            figure.legend(
                handles=handles,
                loc="lower right",
                fontsize=7,
                frameon=False,
                ncols=1 + len(handles) // 9,
                title="network",
                title_fontsize=7,
            )
        if kind == "sparsity":
            zero_count = int((matrix == 0).sum())
            title = f"{title}\n{zero_count} of {p * p} entries are zero (black)"
        ax.set_title(title, fontsize=10)
        if colorbar_label is not None:
            colorbar_ax = figure.add_axes((0.86, 0.35, 0.025, 0.5))
            colorbar = figure.colorbar(image, cax=colorbar_ax)
            colorbar.set_label(colorbar_label, fontsize=8)
            colorbar.ax.tick_params(labelsize=7)
    return figure


# ------------------------------------------------------------- cross-validation


def plot_cv_curve(
    alphas: np.ndarray,
    scores: np.ndarray,
    alpha: float,
    *,
    refinements: np.ndarray | None = None,
    title: str = "",
) -> Figure:
    """Cross-validated score against the regularisation, log x, chosen α marked.

    Parameters
    ----------
    alphas : ndarray, shape (n_alphas,)
        Every alpha tried (any order; sorted for the line).
    scores : ndarray, shape (n_alphas,)
        Mean held-out score of each alpha (higher is better).
    alpha : float
        The chosen alpha.
    refinements : ndarray of int, shape (n_alphas,), optional
        The refinement in which each alpha was scored (0 = first grid): each
        refinement's points get their own marker and colour.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if alphas.shape != scores.shape or alphas.ndim != 1:
        raise ValueError(
            f"one score per alpha is required, got {alphas.shape} alphas and "
            f"{scores.shape} scores"
        )
    order = np.argsort(alphas, kind="stable")
    figure = _new_figure(6.0, 4.0)
    with matplotlib.rc_context(_STYLE):
        ax = figure.add_axes((0.14, 0.13, 0.82, 0.76))
        finite = np.isfinite(scores[order])
        ax.plot(
            alphas[order][finite],
            scores[order][finite],
            "-" if refinements is not None else "-o",
            color="#1f5fa8",
            markersize=4,
            linewidth=1,
            label="alphas tried",
        )
        if refinements is not None:
            refinements = np.asarray(refinements)
            markers = "osD^v<>p*h"
            for step in np.unique(refinements):
                shown = (refinements == step) & np.isfinite(scores)
                ax.plot(
                    alphas[shown],
                    scores[shown],
                    markers[int(step) % len(markers)],
                    color=matplotlib.colormaps["viridis"](
                        float(step) / max(1, int(refinements.max()))
                    ),
                    markersize=5,
                    label="first grid" if step == 0 else f"refinement {int(step)}",
                )
        ax.axvline(alpha, color="#c0392b", linestyle="--", linewidth=1)
        chosen = np.flatnonzero(np.isclose(alphas, alpha, rtol=1e-12, atol=0))
        if chosen.size and np.isfinite(scores[chosen[0]]):
            ax.plot(
                [alpha],
                [scores[chosen[0]]],
                "o",
                color="#c0392b",
                markersize=8,
                label=f"chosen α = {alpha:.3g}",
            )
        else:
            ax.plot([], [], "--", color="#c0392b", label=f"chosen α = {alpha:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel("α (regularisation)")
        ax.set_ylabel("cross-validated score (held-out log-likelihood)")
        ax.set_title(title)
        ax.grid(True, which="both", color="0.9", linewidth=0.5)
        ax.legend(fontsize=8, frameon=False)
    return figure


# ------------------------------------------------------------ stability path

#: Colour of the true edges (synthetic data) or of the stable ones on a path.
MARKED_EDGE_COLOR = "#c0392b"


@dataclass
class StabilityPathFigure:
    """A drawn stability path and what it shows (for the tests and the log).

    ``marked``: the lines of the marked edges (true edges when the truth is
    given, else the stable ones); ``others``: every other edge's.
    """

    figure: Figure
    marked: LineCollection
    others: LineCollection
    n_marked: int


def plot_stability_path(
    alphas: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    n_selection_alphas: int,
    *,
    true_support: np.ndarray | None = None,
    stable_support: np.ndarray | None = None,
    title: str = "",
) -> StabilityPathFigure:
    """Selection probability of every edge against alpha (log x), one line each.

    Parameters
    ----------
    alphas : ndarray, shape (n_alphas,)
        The path (decreasing: the x axis is reversed, sparse fits on the left).
    probabilities : ndarray, shape (n_alphas, p, p)
        Selection probability of each edge at each alpha.
    threshold : float
        The threshold pi: a dashed horizontal line.
    n_selection_alphas : int
        The selection range is ``alphas[:n_selection_alphas]`` (shaded).
    true_support : ndarray of bool, shape (p, p), optional
        The true edges (synthetic data): drawn in colour, the others in grey.
    stable_support : ndarray of bool, shape (p, p), optional
        Without ``true_support``, the stable edges are drawn in colour.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_alphas, p = alphas.size, probabilities.shape[-1]
    if probabilities.shape != (n_alphas, p, p):
        raise ValueError(
            f"probabilities must have shape ({n_alphas}, p, p), got "
            f"{probabilities.shape}"
        )
    rows, cols = np.triu_indices(p, 1)
    paths = probabilities[:, rows, cols].T  # (n_edges, n_alphas)
    chosen = true_support if true_support is not None else stable_support
    marked = (
        np.zeros(rows.size, dtype=bool)
        if chosen is None
        else np.asarray(chosen, dtype=bool)[rows, cols]
    )
    segments = np.stack([np.broadcast_to(alphas, paths.shape), paths], axis=-1)
    if n_alphas == 1:  # one alpha: a short horizontal tick per edge
        segments = np.concatenate([segments * [0.97, 1], segments * [1.03, 1]], axis=1)
    figure = _new_figure(7.0, 4.4)
    with matplotlib.rc_context(_STYLE):
        ax = figure.add_axes((0.11, 0.12, 0.62, 0.78))
        low, high = alphas[n_selection_alphas - 1], alphas[0]
        ax.axvspan(low, high, color="#f2e7c9", zorder=0, label="selection range")
        what = "true edges" if true_support is not None else "stable edges"
        others = LineCollection(
            list(segments[~marked]),
            colors="0.7",
            linewidths=0.6,
            zorder=1,
            label="other edges",
        )
        shown = LineCollection(
            list(segments[marked]),
            colors=MARKED_EDGE_COLOR,
            linewidths=1.0,
            zorder=2,
            label=f"{what} ({int(marked.sum())})",
        )
        ax.add_collection(others)
        ax.add_collection(shown)
        ax.axhline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"threshold π = {threshold:g}",
        )
        ax.set_xscale("log")
        ax.set_xlim(alphas.max() * 1.05, alphas.min() / 1.05)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("α (regularisation; sparser on the left)")
        ax.set_ylabel("selection probability")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", color="0.92", linewidth=0.5)
        ax.legend(
            fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )
    return StabilityPathFigure(figure, shown, others, int(marked.sum()))


# ----------------------------------------------------------------- subject QC


def qc_region_indices(n_regions: int, n_shown: int) -> np.ndarray:
    """Indices of ``n_shown`` regions spread evenly over ``n_regions`` (sorted)."""
    n_shown = max(0, min(n_shown, n_regions))
    if n_shown == 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.round(np.linspace(0, n_regions - 1, n_shown)).astype(int))


def plot_subject_qc(
    confounds: pd.DataFrame,
    timeseries: pd.DataFrame,
    *,
    t_r: float | None,
    n_regions: int = 5,
    title: str = "",
) -> Figure:
    """High-variance confounds and a few cleaned region signals over time.

    Parameters
    ----------
    confounds : DataFrame, shape (n_volumes, n_confounds)
    timeseries : DataFrame, shape (n_volumes, p)
        Cleaned region signals, columns = region names.
    t_r : float or None
        Repetition time in seconds (time axis in s), None for volume numbers.
    n_regions : int
        Number of regions shown, spread over the atlas (:func:`qc_region_indices`).
    """
    n_volumes = len(timeseries)
    if len(confounds) != n_volumes:
        raise ValueError(
            f"{len(confounds)} rows of confounds for {n_volumes} volumes of signals"
        )
    time = np.arange(n_volumes) * (t_r if t_r else 1.0)
    figure = _new_figure(8.0, 5.0)
    with matplotlib.rc_context(_STYLE):
        top, bottom = figure.subplots(2, 1, sharex=True)
        figure.subplots_adjust(left=0.08, right=0.78, top=0.9, bottom=0.1, hspace=0.25)
        values = confounds.to_numpy(dtype=np.float64)
        scale = np.abs(values).max(axis=0)
        scale[scale == 0] = 1.0
        for index, column in enumerate(confounds.columns):
            top.plot(time, values[:, index] / scale[index], linewidth=0.8, label=column)
        top.set_title("high-variance confounds (each scaled to max |value| = 1)")
        top.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
        shown = qc_region_indices(timeseries.shape[1], n_regions)
        offset = 4.0
        for rank, index in enumerate(shown):
            bottom.plot(
                time,
                timeseries.iloc[:, index].to_numpy() - rank * offset,
                linewidth=0.8,
                label=str(timeseries.columns[index]),
            )
        bottom.set_yticks([])
        bottom.set_title(
            f"cleaned signals of {shown.size} of {timeseries.shape[1]} regions "
            f"(offset by {offset:g})"
        )
        bottom.legend(
            fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1)
        )
        bottom.set_xlabel("time (s)" if t_r else "volume")
        figure.suptitle(title)
    return figure


# ------------------------------------------------------------- science check

_ESTIMATOR_LABELS = {
    "group_sparse": "group-sparse",
    "graph_lasso": "graph lasso",
    "ledoit_wolf": "Ledoit-Wolf",
    "empirical": "empirical",
    "group_sparse_stable": "stable set",
    "group_sparse_ebic": "EBIC α",
}


def plot_model_comparison(table: pd.DataFrame, path: PathLike, dpi: int = 100) -> None:
    """Held-out log-likelihood per estimator: one line per subject and fold.

    Parameters
    ----------
    table : DataFrame with columns subject, estimator, fold, log_likelihood
    path : where the PNG is written
    """
    estimators = list(dict.fromkeys(table["estimator"]))
    wide = table.pivot_table(
        index=["subject", "fold"], columns="estimator", values="log_likelihood"
    )[estimators]
    figure = _new_figure(6.5, 4.2)
    with matplotlib.rc_context(_STYLE):
        ax = figure.add_axes((0.12, 0.12, 0.84, 0.78))
        positions = np.arange(len(estimators))
        for _, row in wide.iterrows():
            ax.plot(positions, row.to_numpy(), "-", color="0.75", linewidth=0.8)
        medians = wide.median(axis=0).to_numpy()
        ax.plot(positions, medians, "o", color="#c0392b", markersize=8, label="median")
        ax.set_xticks(positions)
        ax.set_xticklabels([_ESTIMATOR_LABELS.get(e, e) for e in estimators])
        ax.set_ylabel("held-out log-likelihood per sample")
        ax.set_title(
            f"Each subject's held-out data ({wide.shape[0]} subject-folds; higher is "
            "better)",
            fontsize=9,
        )
        ax.grid(True, axis="y", color="0.9", linewidth=0.5)
        ax.legend(fontsize=8, frameon=False)
    save_figure(figure, path, dpi=dpi)


def plot_recovery(table: pd.DataFrame, path: PathLike, dpi: int = 100) -> None:
    """Support F1 and relative Frobenius error of each estimator, per subject.

    Parameters
    ----------
    table : DataFrame with columns subject, estimator, f1, relative_frobenius_error
    path : where the PNG is written
    """
    estimators = list(dict.fromkeys(table["estimator"]))
    figure = _new_figure(8.0, 3.6)
    with matplotlib.rc_context(_STYLE):
        for index, (column, label) in enumerate(
            (
                ("f1", "support F1 (higher is better)"),
                (
                    "relative_frobenius_error",
                    "relative Frobenius error (lower is better)",
                ),
            )
        ):
            ax = figure.add_axes((0.08 + 0.5 * index, 0.16, 0.4, 0.72))
            values = [table.loc[table["estimator"] == e, column] for e in estimators]
            ax.boxplot(values, widths=0.5)
            for position, points in enumerate(values, start=1):
                ax.plot(np.full(len(points), position), points, ".", color="#1f5fa8")
            ax.set_xticks(np.arange(1, len(estimators) + 1))
            ax.set_xticklabels(
                [_ESTIMATOR_LABELS.get(e, e) for e in estimators], fontsize=7
            )
            ax.set_title(label, fontsize=9)
            ax.grid(True, axis="y", color="0.9", linewidth=0.5)
    save_figure(figure, path, dpi=dpi)


def plot_qcfc(r: np.ndarray, summary: dict, path: PathLike, dpi: int = 100) -> None:
    """Histogram of the QC-FC correlations, their median marked (Ciric et al. 2017).

    ``r``: each edge's correlation with mean framewise displacement across
    subjects; ``summary``: the QC-FC JSON (``MedianAbsoluteR``,
    ``FractionSignificant``...); when it says ``Computed: false``, the figure
    states why instead.
    """
    figure = _new_figure(6.5, 4.2)
    with matplotlib.rc_context(_STYLE):
        ax = figure.add_axes((0.12, 0.13, 0.84, 0.74))
        ax.set_xlabel("QC-FC: correlation of an edge with mean FD across subjects")
        ax.set_ylabel("edges")
        if not summary.get("Computed") or r.size == 0:
            ax.set_xlim(-1, 1)
            ax.text(
                0.5,
                0.5,
                f"QC-FC not computed:\n{summary.get('Reason', 'no edges')}",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
            )
            ax.set_title("QC-FC", fontsize=9)
        else:
            ax.hist(r, bins=np.linspace(-1, 1, 41), color="#4a7ab5", edgecolor="white")
            median = float(np.median(r))
            ax.axvline(0.0, color="0.5", linewidth=0.8)
            ax.axvline(
                median, color="#c0392b", linewidth=1.6, label=f"median r {median:.3f}"
            )
            ax.set_xlim(-1, 1)
            ax.set_title(
                f"{r.size} edges, {summary['NumberOfSubjects']} subjects: median "
                f"|r| {summary['MedianAbsoluteR']:.3f}, "
                f"{100 * summary['FractionSignificant']:.1f}% with p < 0.05 "
                f"({100 * summary['FractionSignificantFDR']:.1f}% FDR)",
                fontsize=9,
            )
            ax.legend(fontsize=8, frameon=False)
        ax.grid(True, axis="y", color="0.9", linewidth=0.5)
    save_figure(figure, path, dpi=dpi)
