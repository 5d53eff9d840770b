"""Figure steps: result files in, figures out, one function per figure (and per rule).

The rules' adapters (:mod:`sparseconn.workflow.adapters`) call these with the
paths and params of a job; everything here runs without Snakemake. Figures are drawn by
:mod:`sparseconn.plotting` and written atomically with reproducible bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparseconn import regions
from sparseconn.errors import InputError
from sparseconn.io import PathLike
from sparseconn.plotting import (
    network_colors,
    plot_connectome,
    plot_cv_curve,
    plot_matrix,
    plot_stability_path,
    plot_subject_qc,
    save_figure,
)
from sparseconn.regions import AtlasSpec, LoadedAtlas

logger = logging.getLogger(__name__)

#: Estimates (the ``desc`` entity of the group ``.npz``) and their display names,
#: as in nilearn's example.
ESTIMATE_NAMES = {
    "groupsparse": "GroupSparseCovariance",
    "graphlasso": "GraphLasso",
}


def load_estimate(npz: PathLike, estimate: str, subject: str) -> dict:
    """One subject's matrices from a group ``.npz``.

    Parameters
    ----------
    npz : path-like
        ``desc-groupsparse`` (covariances/precisions of shape (n_subjects, p, p)
        and ``subjects``) or ``desc-graphlasso`` (covariance/precision (p, p) and
        ``subject``).
    estimate : {"groupsparse", "graphlasso"}
    subject : str

    Returns
    -------
    dict
        ``covariance`` and ``precision`` (p, p), ``alpha``, ``cv_alphas``,
        ``cv_scores``, ``regions`` (list of str).

    Raises
    ------
    InputError
        The subject is not in the file.
    """
    if estimate not in ESTIMATE_NAMES:
        raise ValueError(f"estimate {estimate!r} is not one of {list(ESTIMATE_NAMES)}")
    with np.load(npz) as fit:
        if estimate == "groupsparse":
            subjects = [str(s) for s in fit["subjects"]]
            if subject not in subjects:
                raise InputError(
                    npz,
                    f"subject {subject!r} is not among the group's subjects "
                    f"({', '.join(subjects)})",
                )
            index = subjects.index(subject)
            covariance = fit["covariances"][index]
            precision = fit["precisions"][index]
        else:
            if str(fit["subject"]) != subject:
                raise InputError(
                    npz, f"fitted on subject {fit['subject']!s}, not {subject!r}"
                )
            covariance, precision = fit["covariance"], fit["precision"]
        return {
            "covariance": np.asarray(covariance, dtype=np.float64),
            "precision": np.asarray(precision, dtype=np.float64),
            "alpha": float(fit["alpha"]),
            "cv_alphas": np.asarray(fit["cv_alphas"], dtype=np.float64),
            "cv_scores": np.asarray(fit["cv_scores"], dtype=np.float64),
            "regions": [str(r) for r in fit["regions"]],
        }


def estimate_title(estimate: str, subject: str, alpha: float) -> str:
    """``Subject 01 GroupSparseCovariance $\\alpha=7.24e-02$`` (nilearn's titles)."""
    return f"Subject {subject} {ESTIMATE_NAMES[estimate]} $\\alpha={alpha:.2e}$"


def _outputs(png: PathLike, svg: PathLike | None) -> list[PathLike]:
    return [png] if svg is None else [png, svg]


def _atlas(atlas: AtlasSpec | Mapping[str, Any]) -> LoadedAtlas:
    """The atlas of a spec or rule param, read."""
    spec = atlas if isinstance(atlas, AtlasSpec) else AtlasSpec.from_param(atlas)
    return regions.load(spec)


def _fitted_regions(
    loaded: LoadedAtlas, fitted: Sequence[str], npz: PathLike
) -> list[int]:
    """Positions in the atlas of the regions a fit kept (all, or a subset in order).

    An atlas without a table names its regions after their number; then a fit
    of as many regions is taken as the atlas's, whatever their names.
    """
    names = loaded.names
    if len(fitted) == len(names) and (
        list(fitted) == names or loaded.spec.labels is None
    ):
        return list(range(len(names)))
    position = {name: index for index, name in enumerate(names)}
    shown = [position.get(name, -1) for name in fitted]
    if -1 in shown or shown != sorted(shown):
        raise InputError(
            npz,
            f"regions differ from those of the atlas {loaded.spec.image} (same "
            "atlas expected)",
        )
    return shown


def _networks(loaded: LoadedAtlas) -> list[str] | None:
    table = loaded.table
    return list(table["network"]) if "network" in table.columns else None


def run_plot_connectome(
    npz: PathLike,
    atlas: AtlasSpec | Mapping[str, Any],
    out_png: PathLike,
    out_svg: PathLike | None = None,
    *,
    estimate: str,
    subject: str,
    edge_threshold: str | float = "80%",
    dpi: int = 100,
    max_edges: int | None = None,
) -> None:
    """Connectome of the negated precision of ``subject`` over the atlas outline.

    As nilearn's example, the edges show ``-precision`` (proportional to the
    partial correlations): positive values are positive partial correlations.
    Nodes sit at the table's x, y, z when present, else at the map centres (maps)
    or the regions' centres of mass (labels).
    """
    fit = load_estimate(npz, estimate, subject)
    loaded = _atlas(atlas)
    shown = _fitted_regions(loaded, fit["regions"], npz)
    coords, mask, affine = regions.geometry(loaded)
    coords = coords[shown]
    networks = _networks(loaded)
    networks = None if networks is None else [networks[i] for i in shown]
    node_colors = None
    if networks is not None:
        colours = network_colors(networks)
        node_colors = [colours[n] for n in networks]
    drawn = plot_connectome(
        -fit["precision"],
        coords,
        mask=mask,
        affine=affine,
        edge_threshold=edge_threshold,
        title=estimate_title(estimate, subject, fit["alpha"]),
        node_colors=node_colors,
        max_edges=max_edges,
    )
    logger.info(
        "%d edges drawn, at or above the threshold %s (at most %s)",
        drawn.rows.size,
        edge_threshold,
        max_edges,
    )
    for path in _outputs(out_png, out_svg):
        save_figure(drawn.figure, path, dpi=dpi)


def run_plot_matrices(
    npz: PathLike,
    atlas: AtlasSpec | Mapping[str, Any] | None,
    out_covariance: Sequence[PathLike],
    out_sparsity: Sequence[PathLike],
    out_precision: Sequence[PathLike],
    *,
    estimate: str,
    subject: str,
    dpi: int = 100,
) -> None:
    """Covariance, sparsity pattern and precision of ``subject``, one figure each.

    Each ``out_*`` lists the files of one figure (a PNG, and an SVG when wanted).
    Networks (from the atlas table's network column) colour the region names.
    """
    fit = load_estimate(npz, estimate, subject)
    networks = None
    if atlas is not None:
        loaded = _atlas(atlas)
        every = _networks(loaded)
        if every is not None:
            shown = _fitted_regions(loaded, fit["regions"], npz)
            networks = [every[i] for i in shown]
    title = estimate_title(estimate, subject, fit["alpha"])
    for kind, matrix, outputs in (
        ("covariance", fit["covariance"], out_covariance),
        ("sparsity", fit["precision"], out_sparsity),
        ("precision", fit["precision"], out_precision),
    ):
        label = "sparsity pattern" if kind == "sparsity" else kind
        figure = plot_matrix(
            matrix,
            fit["regions"],
            kind=kind,
            title=f"{title} / {label}",
            networks=networks,
        )
        for path in outputs:
            save_figure(figure, path, dpi=dpi)


def run_plot_cv_curve(
    npz: PathLike,
    out_png: PathLike,
    out_svg: PathLike | None = None,
    *,
    estimate: str,
    dpi: int = 100,
) -> None:
    """Cross-validated score of every alpha tried, the chosen one marked."""
    with np.load(npz) as fit:
        alphas = np.asarray(fit["cv_alphas"], dtype=np.float64)
        scores = np.asarray(fit["cv_scores"], dtype=np.float64)
        alpha = float(fit["alpha"])
        refinements = fit["cv_refinements"] if "cv_refinements" in fit else None
    figure = plot_cv_curve(
        alphas,
        scores,
        alpha,
        refinements=refinements,
        title=f"{ESTIMATE_NAMES[estimate]}: cross-validation "
        f"({alphas.size} alphas tried)",
    )
    for path in _outputs(out_png, out_svg):
        save_figure(figure, path, dpi=dpi)


def run_plot_subject_qc(
    confounds: PathLike,
    timeseries: PathLike,
    sidecar: PathLike,
    out_png: PathLike,
    *,
    subject: str,
    n_regions: int = 5,
    dpi: int = 100,
) -> None:
    """One subject's high-variance confounds and a few cleaned region signals.

    Censored volumes (the sidecar's ``CensoredVolumes``: dropouts) have no row in
    the time series; their confounds rows are left out too.
    """
    confounds_table = pd.read_csv(confounds, sep="\t")
    signals = pd.read_csv(timeseries, sep="\t")
    metadata = json.loads(Path(sidecar).read_text())
    t_r = metadata.get("RepetitionTime")
    censored = metadata.get("CensoredVolumes") or []
    if censored:
        confounds_table = confounds_table.drop(index=censored).reset_index(drop=True)
    if len(confounds_table) != len(signals):
        raise InputError(
            confounds,
            f"{len(confounds_table)} rows but {timeseries} has {len(signals)}",
        )
    figure = plot_subject_qc(
        confounds_table,
        signals,
        t_r=t_r,
        n_regions=n_regions,
        title=f"Subject {subject}: confounds and region signals",
    )
    save_figure(figure, out_png, dpi=dpi)


#: The figures of stability selection (config ``stability``), in
#: :func:`run_plot_stability_figures`'s order.
STABILITY_FIGURE_KINDS = (
    "stability_path",
    "selection_probability",
    "stable_connectome",
)


def true_support(truth: PathLike, regions_kept: Sequence[str]) -> np.ndarray | None:
    """The generated group graph (synthetic ``atlas_truth.npz``) over the kept regions.

    None when the fit's regions are not among the truth's (another atlas). With
    regions dropped, the edges of the generating graph among those kept (the
    marginal model of the kept regions may have more).
    """
    with np.load(truth) as data:
        names = [str(r) for r in data["regions"]]
        support = np.asarray(data["support"], dtype=bool)
    if not set(regions_kept) <= set(names):
        return None
    index = [names.index(name) for name in regions_kept]
    return support[np.ix_(index, index)]


def run_plot_stability_figures(
    npz: PathLike,
    atlas: AtlasSpec | Mapping[str, Any],
    out_path: Sequence[PathLike],
    out_probability: Sequence[PathLike],
    out_connectome: Sequence[PathLike],
    *,
    subject: str,
    truth: PathLike | None = None,
    dpi: int = 100,
    max_edges: int | None = None,
) -> None:
    """The stability path, the selection-probability matrix, the stable connectome.

    ``npz``: rule stability_selection's. Each ``out_*`` lists one figure's files
    (PNG, then SVG when wanted). ``truth`` (synthetic ``atlas_truth.npz``): the
    path marks the true edges instead of the stable ones. The connectome shows
    ``subject``'s stable precision (negated, as the others): every stable edge,
    at most ``max_edges``.
    """
    with np.load(npz) as fit:
        alphas = np.asarray(fit["alphas"], dtype=np.float64)
        probabilities = np.asarray(fit["probabilities"], dtype=np.float64)
        max_probabilities = np.asarray(fit["max_probabilities"], dtype=np.float64)
        support = np.asarray(fit["support"], dtype=bool)
        threshold = float(fit["threshold"])
        n_selection = int(fit["n_selection_alphas"])
        bound = float(fit["false_edges_bound"])
        n_resamples = int(fit["n_resamples"])
        subjects = [str(s) for s in fit["subjects"]]
        fitted = [str(r) for r in fit["regions"]]
        if subject not in subjects:
            raise InputError(
                npz, f"subject {subject!r} is not among the group's subjects"
            )
        stable_precision = np.asarray(
            fit["stable_precisions"][subjects.index(subject)], dtype=np.float64
        )
    n_stable = int(np.triu(support, 1).sum())
    truth_support = None if truth is None else true_support(truth, fitted)
    summary = (
        f"{n_stable} stable edges (π = {threshold:g}, {n_resamples} halves); "
        f"expected false edges ≤ {bound:.2f}"
    )
    drawn = plot_stability_path(
        alphas,
        probabilities,
        threshold,
        n_selection,
        true_support=truth_support,
        stable_support=support,
        title=f"Stability path of the group-sparse edges\n{summary}",
    )
    if truth_support is not None:
        hits = int(np.triu(support & truth_support, 1).sum())
        logger.info(
            "%d of %d stable edges are true (%d true edges)",
            hits,
            n_stable,
            int(np.triu(truth_support, 1).sum()),
        )
    for path in out_path:
        save_figure(drawn.figure, path, dpi=dpi)
    loaded = _atlas(atlas)
    shown = _fitted_regions(loaded, fitted, npz)
    every = _networks(loaded)
    networks = None if every is None else [every[i] for i in shown]
    figure = plot_matrix(
        max_probabilities,
        fitted,
        kind="probability",
        title=f"Selection probability (largest over the selection range)\n{summary}",
        networks=networks,
    )
    for path in out_probability:
        save_figure(figure, path, dpi=dpi)
    coords, mask, affine = regions.geometry(loaded)
    node_colors = None
    if networks is not None:
        colours = network_colors(networks)
        node_colors = [colours[n] for n in networks]
    connectome = plot_connectome(
        -stable_precision,
        coords[shown],
        mask=mask,
        affine=affine,
        edge_threshold=0.0,
        title=f"Subject {subject}: stable edges, precision refitted on them",
        node_colors=node_colors,
        max_edges=max_edges,
    )
    for path in out_connectome:
        save_figure(connectome.figure, path, dpi=dpi)


#: The group-level figure kinds of :func:`run_plot_group_figures`.
GROUP_FIGURE_KINDS = ("connectome", "covariance", "sparsity", "precision", "cv")


def run_plot_group_figures(
    npzs: Sequence[PathLike],
    atlas: AtlasSpec | Mapping[str, Any],
    files: Mapping[str, Sequence[Sequence[PathLike]]],
    *,
    estimates: Sequence[str],
    subject: str,
    edge_threshold: str | float = "80%",
    dpi: int = 100,
    max_edges: int | None = None,
    stability_npz: PathLike | None = None,
    stability_files: Mapping[str, Sequence[PathLike]] | None = None,
    truth: PathLike | None = None,
    qcfc_files: Sequence[PathLike] | None = None,
) -> None:
    """Every group-level figure of every estimate, one after the other.

    ``npzs`` holds one group ``.npz`` per estimate of ``estimates``; ``files``
    maps each of :data:`GROUP_FIGURE_KINDS` to, per estimate in the same order,
    the files of that figure (its PNG, then its SVG when wanted). With
    ``stability_npz``, also :func:`run_plot_stability_figures`, whose files
    ``stability_files`` maps by :data:`STABILITY_FIGURE_KINDS`.
    ``qcfc_files``: the QC-FC table, its JSON and the histogram's PNG
    (:func:`run_plot_qcfc`), drawn last.
    """
    missing = [kind for kind in GROUP_FIGURE_KINDS if kind not in files]
    if missing:
        raise ValueError(f"no files for the figure kinds {missing}")
    for kind in GROUP_FIGURE_KINDS:
        if len(files[kind]) != len(estimates):
            raise ValueError(
                f"{len(files[kind])} {kind} figures for {len(estimates)} estimates"
            )
    if len(npzs) != len(estimates):
        raise ValueError(f"{len(npzs)} group files for {len(estimates)} estimates")
    for index, (estimate, npz) in enumerate(zip(estimates, npzs, strict=True)):
        figure = {kind: list(files[kind][index]) for kind in GROUP_FIGURE_KINDS}
        run_plot_connectome(
            npz,
            atlas,
            *figure["connectome"],
            estimate=estimate,
            subject=subject,
            edge_threshold=edge_threshold,
            dpi=dpi,
            max_edges=max_edges,
        )
        run_plot_matrices(
            npz,
            atlas,
            figure["covariance"],
            figure["sparsity"],
            figure["precision"],
            estimate=estimate,
            subject=subject,
            dpi=dpi,
        )
        run_plot_cv_curve(npz, *figure["cv"], estimate=estimate, dpi=dpi)
    if stability_npz is not None:
        stability_files = stability_files or {}
        missing = [k for k in STABILITY_FIGURE_KINDS if not stability_files.get(k)]
        if missing:
            raise ValueError(f"no files for the stability figures {missing}")
        run_plot_stability_figures(
            stability_npz,
            atlas,
            *(list(stability_files[kind]) for kind in STABILITY_FIGURE_KINDS),
            subject=subject,
            truth=truth,
            dpi=dpi,
            max_edges=max_edges,
        )
    if qcfc_files is not None:
        run_plot_qcfc(*qcfc_files, dpi=dpi)


def run_plot_subjects_qc(
    confounds: Sequence[PathLike],
    timeseries: Sequence[PathLike],
    sidecars: Sequence[PathLike],
    out_pngs: Sequence[PathLike],
    *,
    subjects: Sequence[str],
    n_regions: int = 5,
    dpi: int = 100,
) -> None:
    """The quality-control figure of each subject (the lists in the same order)."""
    sizes = {len(confounds), len(timeseries), len(sidecars), len(out_pngs)}
    if sizes != {len(subjects)}:
        raise ValueError(
            f"{len(subjects)} subjects but {len(confounds)} confounds, "
            f"{len(timeseries)} time series, {len(sidecars)} sidecars and "
            f"{len(out_pngs)} figures"
        )
    for subject, *paths in zip(
        subjects, confounds, timeseries, sidecars, out_pngs, strict=True
    ):
        run_plot_subject_qc(*paths, subject=subject, n_regions=n_regions, dpi=dpi)


def run_plot_qcfc(
    qcfc_tsv: PathLike, qcfc_json: PathLike, out_png: PathLike, *, dpi: int = 100
) -> None:
    """The QC-FC histogram (:func:`sparseconn.plotting.plot_qcfc`) of one atlas."""
    from sparseconn.plotting import plot_qcfc

    table = pd.read_csv(qcfc_tsv, sep="\t")
    summary = json.loads(Path(qcfc_json).read_text())
    plot_qcfc(table["r"].to_numpy(dtype=float), summary, out_png, dpi=dpi)
