"""Group steps: the group-sparse inverse covariance of all subjects, the graph lasso.

One function per rule, paths in, files out; outputs are written atomically.
BLAS runs on one thread, so that the bytes written do not depend on the machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sparseconn import __version__
from sparseconn.errors import InputError
from sparseconn.io import (
    PathLike,
    read_unit_timeseries,
    write_json,
    write_npz,
    write_relmat,
    write_tsv,
)

logger = logging.getLogger(__name__)


def split_sizes(paths: Sequence[PathLike], sizes: Sequence[int] | None) -> list:
    """Group a flat list of files into consecutive runs of ``sizes`` files.

    ``sizes=None`` is one file per group. Each group is returned as a path (one
    file) or a list of paths (runs to concatenate).
    """
    paths = list(paths)
    if sizes is None:
        return paths
    if sum(sizes) != len(paths) or min(sizes, default=1) < 1:
        raise ValueError(f"sizes {list(sizes)} do not split {len(paths)} files")
    groups, start = [], 0
    for size in sizes:
        chunk = paths[start : start + size]
        groups.append(chunk[0] if size == 1 else chunk)
        start += size
    return groups


#: How each statistic written as a relmat is described in its sidecar (BEP017).
MEASURES = {
    "covariance": (
        "covariance",
        "Covariance of the cleaned (z-scored) region signals implied by the "
        "estimate: the inverse of its precision",
    ),
    "precision": (
        "precision",
        "Precision (inverse covariance); an off-diagonal entry is zero when the "
        "two regions are conditionally independent given all the others, and "
        "minus it, normalised by the diagonal, is their partial correlation",
    ),
}
#: The estimators, as named in the sidecars.
ESTIMATORS = {
    "groupsparse": {
        "Name": "GroupSparseCovarianceCV",
        "Description": "group-sparse inverse covariance of all subjects (Varoquaux "
        "et al. 2010): one shared sparsity pattern",
        "AlphaSelection": "cross-validated held-out log-likelihood",
    },
    "graphlasso": {
        "Name": "GraphicalLassoCV",
        "Description": "graphical lasso of one subject (Friedman et al. 2008)",
        "AlphaSelection": "cross-validated held-out log-likelihood "
        "(scikit-learn's GraphicalLassoCV choice)",
    },
}


def relmat_sidecar(
    stat: str,
    estimate: str,
    alpha: float,
    *,
    atlas: str | None,
    sources: Sequence[str],
    dropped: dict[str, str] | None = None,
) -> dict:
    """The JSON sidecar of a relmat (BEP017 fields, the estimator and its alpha)."""
    measure, description = MEASURES[stat]
    return {
        "Measure": measure,
        "MeasureDescription": description,
        "Weighted": True,
        "Directed": False,
        "ValidDiagonal": True,
        "StorageFormat": "Full",
        "NonNegative": False,
        "Estimator": {**ESTIMATORS[estimate], "Alpha": float(alpha)},
        "Atlas": atlas,
        "RegionsDropped": dict(dropped or {}),
        "Sources": list(sources),
        "SoftwareVersion": f"sparseconn {__version__}",
    }


def _unit_sources(
    unit: PathLike | Sequence[PathLike], links: dict[str, str] | None
) -> list[str]:
    from sparseconn.steps.subject import source_uris

    files = [unit] if isinstance(unit, str | Path) else list(unit)
    return source_uris(files, links)


def run_group_regions(
    tables: Sequence[PathLike],
    scans: Sequence[str],
    out_tsv: PathLike,
    *,
    strict: bool = False,
) -> None:
    """The regions of the group stage: usable in every scan, or dropped and why.

    ``tables``: the region table of each scan of the group stage (in ``scans``'s
    order). Writes the group's region table
    (:func:`sparseconn.regions.group_region_table`); every group fit reads its
    regions from it, so every relmat of the atlas has the same nodes in the same
    order.

    Raises
    ------
    InputError
        With ``strict``, when a region is unusable in some scan (naming the
        first such scan's table, the region and why); always when fewer than
        two regions are left.
    """
    from sparseconn.io import read_region_table
    from sparseconn.regions import group_region_table

    frames = [read_region_table(path) for path in tables]
    try:
        table = group_region_table(frames, scans)
    except ValueError as error:
        raise InputError(", ".join(map(str, tables)), str(error)) from error
    dropped = table[~table["kept"]]
    if strict and len(dropped):
        for path, frame in zip(tables, frames, strict=True):
            bad = frame[~frame["usable"]]
            if len(bad):
                raise InputError(
                    path,
                    f"region {bad['name'].iloc[0]}: {bad['reason'].iloc[0]} "
                    f"({len(dropped)} region(s) unusable in the group; strict_regions "
                    "is set: without it they are dropped from the group stage)",
                )
    if int(table["kept"].sum()) < 2:
        raise InputError(
            tables[0],
            f"only {int(table['kept'].sum())} region(s) usable in every scan of the "
            "group stage; check the atlas and the images' field of view",
        )
    for name, reason in zip(dropped["name"], dropped["reason"], strict=True):
        logger.warning("region %s dropped from the group stage: %s", name, reason)
    write_tsv(table, out_tsv)


def _dropped(regions_table: PathLike | None) -> dict[str, str]:
    """The regions the group table leaves out -> why (empty without a table)."""
    if regions_table is None:
        return {}
    from sparseconn.io import read_region_table

    table = read_region_table(regions_table)
    dropped = table[~table["kept"]]
    return dict(zip(dropped["name"], dropped["reason"], strict=True))


def _dropped_arrays(dropped: dict[str, str]) -> dict[str, np.ndarray]:
    """The group ``.npz``'s record of the regions left out (nothing when none are)."""
    if not dropped:
        return {}
    return {
        "dropped_regions": np.asarray(list(dropped), dtype=str),
        "dropped_reasons": np.asarray(list(dropped.values()), dtype=str),
    }


def run_group_sparse_covariance(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    out_npz: PathLike,
    covariance_relmats: Sequence[PathLike],
    precision_relmats: Sequence[PathLike],
    regions_table: PathLike | None = None,
    sidecars: Sequence[PathLike] | None = None,
    *,
    atlas: str | None = None,
    links: dict[str, str] | None = None,
    alphas: int = 4,
    n_refinements: int = 4,
    tol_cv: float = 1e-2,
    max_iter_cv: int = 50,
    tol: float = 1e-3,
    max_iter: int = 100,
) -> None:
    """Cross-validated group-sparse inverse covariance of all subjects.

    ``timeseries`` has one element per subject: a TSV, or a list of TSVs (runs,
    concatenated). Writes the group ``.npz`` (covariances and precisions of shape
    (n_subjects, p, p), alpha, cv_alphas, cv_scores, subjects, regions) and each
    subject's covariance and precision as ``relmat`` TSVs, in ``subjects`` order,
    and with ``sidecars`` (covariance, precision) the JSON sidecar every relmat of
    that statistic inherits (:func:`relmat_sidecar`; sources: every subject's
    time series).
    With ``regions_table`` (:func:`run_group_regions`), on the regions it keeps
    (the ``.npz`` lists the others: ``dropped_regions``, ``dropped_reasons``).
    BLAS runs on one thread: the bytes written do not depend on the machine's
    core count (multi-threaded BLAS sums in a different order).
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.covariance import GroupSparseCovarianceCV

    signals, regions = read_unit_timeseries(timeseries, regions_table)
    dropped = _dropped(regions_table)
    estimator = GroupSparseCovarianceCV(
        alphas=alphas,
        n_refinements=n_refinements,
        tol_cv=tol_cv,
        max_iter_cv=max_iter_cv,
        tol=tol,
        max_iter=max_iter,
    )
    try:
        with threadpool_limits(limits=1):
            estimator.fit(signals)
    except ValueError as error:
        raise InputError(", ".join(map(str, timeseries)), str(error)) from error
    covariances = np.moveaxis(estimator.covariances_, 2, 0)
    precisions = np.moveaxis(estimator.precisions_, 2, 0)
    write_npz(
        out_npz,
        covariances=covariances,
        precisions=precisions,
        alpha=np.float64(estimator.alpha_),
        cv_alphas=np.asarray(estimator.cv_alphas_, dtype=np.float64),
        cv_scores=np.asarray(estimator.cv_scores_, dtype=np.float64),
        cv_refinements=np.asarray(estimator.cv_refinements_, dtype=np.int64),
        subjects=np.asarray(subjects, dtype=str),
        regions=np.asarray(regions, dtype=str),
        **_dropped_arrays(dropped),
    )
    for index in range(len(subjects)):
        write_relmat(covariances[index], regions, covariance_relmats[index])
        write_relmat(precisions[index], regions, precision_relmats[index])
    if sidecars is not None:
        sources = [uri for unit in timeseries for uri in _unit_sources(unit, links)]
        for stat, path in zip(("covariance", "precision"), sidecars, strict=True):
            sidecar = relmat_sidecar(
                stat,
                "groupsparse",
                estimator.alpha_,
                atlas=atlas,
                sources=sources,
                dropped=dropped,
            )
            write_json(sidecar, Path(path))


def run_graph_lasso(
    timeseries: PathLike | Sequence[PathLike],
    covariance_relmat: PathLike,
    precision_relmat: PathLike,
    out_npz: PathLike | None = None,
    regions_table: PathLike | None = None,
    *,
    subject: str,
    atlas: str | None = None,
    links: dict[str, str] | None = None,
) -> None:
    """``GraphicalLassoCV()`` (scikit-learn's defaults) on one subject's signals.

    Cross-validated by :func:`sparseconn.graph_lasso.graph_lasso_cv` (scikit-learn's
    choices, a few times faster), or by ``GraphicalLassoCV()`` itself with a
    scikit-learn that module does not restate. Writes the covariance and
    precision ``relmat`` TSVs, and when ``out_npz`` is given the ``.npz``
    (covariance, precision, alpha, cv_alphas, cv_scores: the mean over folds,
    subject, regions). BLAS runs on one thread, for the same bytes on any machine.
    ``timeseries``: a TSV, or a list of them (runs, concatenated in time);
    ``regions_table``: as for :func:`run_group_sparse_covariance`.
    """
    from sklearn.covariance import GraphicalLassoCV
    from threadpoolctl import threadpool_limits

    from sparseconn.graph_lasso import graph_lasso_cv, restates_installed_scikit_learn

    (signals,), regions = read_unit_timeseries([timeseries], regions_table)
    with threadpool_limits(limits=1):
        if restates_installed_scikit_learn():
            fit = graph_lasso_cv(signals)
            covariance, precision, alpha = fit.covariance, fit.precision, fit.alpha
            cv_alphas, cv_scores = fit.cv_alphas, fit.cv_scores.mean(axis=1)
        else:
            estimator = GraphicalLassoCV().fit(signals)
            covariance, precision = estimator.covariance_, estimator.precision_
            alpha = estimator.alpha_
            cv_alphas = estimator.cv_results_["alphas"]
            cv_scores = estimator.cv_results_["mean_test_score"]
    sources = _unit_sources(timeseries, links)
    dropped = _dropped(regions_table)
    for stat, matrix, relmat in (
        ("covariance", covariance, covariance_relmat),
        ("precision", precision, precision_relmat),
    ):
        sidecar = relmat_sidecar(
            stat, "graphlasso", alpha, atlas=atlas, sources=sources, dropped=dropped
        )
        write_relmat(matrix, regions, relmat, sidecar)
    if out_npz is not None:
        write_npz(
            out_npz,
            covariance=covariance,
            precision=precision,
            alpha=np.float64(alpha),
            cv_alphas=np.asarray(cv_alphas, dtype=np.float64),
            cv_scores=np.asarray(cv_scores, dtype=np.float64),
            subject=np.asarray(subject, dtype=str),
            regions=np.asarray(regions, dtype=str),
            **_dropped_arrays(dropped),
        )
