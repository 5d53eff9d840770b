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


#: The statistics of rule stability_selection, as named in ``stat-`` and ``desc-``.
STABILITY_RELMATS = {
    "probability": ("selectionprobability", "groupsparse"),
    "precision": ("precision", "groupsparsestable"),
}
#: How the stable precisions are obtained (their sidecars say it).
STABLE_REFIT = (
    "each subject's maximum-likelihood precision constrained to the stable edges "
    "(Dempster's covariance selection, no penalty: the edges kept are not shrunk "
    "and the estimate is positive definite whenever the subject's covariance is; "
    "zeroing the non-stable entries of the cross-validated fit would keep its "
    "shrinkage and can leave a matrix that is not positive definite)"
)


def stability_sidecar(
    stat: str,
    fields: dict,
    *,
    atlas: str | None,
    sources: Sequence[str],
    dropped: dict[str, str] | None = None,
) -> dict:
    """The BEP017 sidecar of a relmat of rule stability_selection.

    ``stat``: ``probability`` (the selection probability of each edge, in
    [0, 1], zero diagonal) or ``precision`` (the stable precisions);
    ``fields``: the method's description (:func:`stability_fields`).
    """
    if stat == "probability":
        measure = {
            "Measure": "selection probability",
            "MeasureDescription": "Largest fraction, over the selection range of "
            "alphas, of the random halves of the data whose group-sparse estimate "
            "has the edge (stability selection); the edges at or above "
            "StabilitySelection.Threshold are the stable set. The same matrix for "
            "every subject: the group's",
            "Weighted": True,
            "Directed": False,
            "ValidDiagonal": False,
            "StorageFormat": "Full",
            "NonNegative": True,
        }
    else:
        measure = {
            "Measure": "precision",
            "MeasureDescription": MEASURES["precision"][1]
            + "; non-zero off the diagonal only on the stable edges",
            "Weighted": True,
            "Directed": False,
            "ValidDiagonal": True,
            "StorageFormat": "Full",
            "NonNegative": False,
            "Refit": STABLE_REFIT,
        }
    return {
        **measure,
        "StabilitySelection": fields,
        "Atlas": atlas,
        "RegionsDropped": dict(dropped or {}),
        "Sources": list(sources),
        "SoftwareVersion": f"sparseconn {__version__}",
    }


def stability_fields(
    result: object, *, pfer: float, n_blocks: int, cv_alpha: float, ebic: tuple
) -> dict:
    """The method, its settings and its outcome, as the sidecars state them.

    ``result``: a :class:`sparseconn.stability.StabilityResult`; ``ebic``:
    ``(alpha, gamma)``.
    """
    alphas = result.selection_alphas
    return {
        "Method": "stability selection of the group-sparse estimator "
        "(Meinshausen & Buhlmann 2010) with complementary pairs of halves (Shah "
        "& Samworth 2013)",
        "Threshold": result.threshold,
        "NResamples": result.n_resamples,
        "Scheme": result.scheme,
        "NBlocks": n_blocks if result.scheme == "time" else None,
        "Seed": result.seed,
        "PFER": pfer,
        "FalseEdgesBound": result.false_edges_bound,
        "FalseEdgesBoundDescription": "q^2 / ((2 Threshold - 1) NCandidateEdges): "
        "bound on the expected number of false stable edges (Meinshausen & "
        "Buhlmann, Theorem 1, under exchangeability; Shah & Samworth, Theorem 1, "
        "for the edges of low selection probability, without it)",
        "AverageSelected": result.q,
        "NCandidateEdges": result.n_candidates,
        "NStableEdges": result.n_edges,
        "SelectionRange": [float(alphas[0]), float(alphas[-1])],
        "PathAlphas": [float(a) for a in result.alphas],
        "AlphaCV": float(cv_alpha),
        "AlphaEBIC": float(ebic[0]),
        "EBICGamma": float(ebic[1]),
    }


def _check_stability_data(
    signals: Sequence[np.ndarray],
    subjects: Sequence[str],
    scheme: str,
    n_blocks: int,
    source: str,
) -> None:
    """Raise `InputError` naming the ``stability`` key the series cannot satisfy."""
    from sparseconn.configuration import check_stability

    check_stability({"scheme": scheme, "n_blocks": n_blocks}, len(signals), source)
    if scheme != "time":
        return
    for subject, x in zip(subjects, signals, strict=True):
        if x.shape[0] < 2 * n_blocks:
            raise InputError(
                source,
                f"stability.n_blocks {n_blocks}: too few volumes per half: "
                f"{subject} has {x.shape[0]} volumes, fewer than 2 a block (need "
                f"{2 * n_blocks}); use stability.n_blocks "
                f"{max(2, x.shape[0] // 4 * 2)} or fewer",
            )


def run_stability_selection(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    group_npz: PathLike,
    out_npz: PathLike,
    probability_relmats: Sequence[PathLike],
    precision_relmats: Sequence[PathLike],
    regions_table: PathLike | None = None,
    sidecars: Sequence[PathLike] | None = None,
    *,
    atlas: str | None = None,
    links: dict[str, str] | None = None,
    n_resamples: int = 100,
    threshold: float = 0.9,
    pfer: float = 5.0,
    scheme: str = "time",
    n_blocks: int = 8,
    seed: int = 0,
    ebic_gamma: float = 0.5,
    tol: float = 1e-3,
    max_iter: int = 100,
) -> None:
    """Stable edges of the group-sparse estimator, and the extended-BIC alpha.

    Reads the same signals as :func:`run_group_sparse_covariance` (the regions
    ``regions_table`` keeps) and its ``.npz`` (``group_npz``: the CV's alpha).
    Runs :func:`sparseconn.stability.stability_selection` and refits each
    subject's precision on the stable edges
    (:func:`sparseconn.stability.support_precision`, see :data:`STABLE_REFIT`);
    finds :func:`sparseconn.stability.ebic_alpha` and fits the group-sparse
    estimator there (``tol``, ``max_iter``: those of the final CV fit).

    Writes ``out_npz`` (alphas, probabilities (n_alphas, p, p),
    max_probabilities, support, n_selected, union_sizes, n_selection_alphas,
    threshold, q, n_candidates, false_edges_bound, pfer, n_resamples, scheme,
    n_blocks, seed, stable_precisions (K, p, p), cv_alpha, ebic_alpha,
    ebic_gamma, ebic_scores, ebic_precisions (K, p, p), subjects, regions), per
    subject the selection-probability and stable-precision relmats, and with
    ``sidecars`` (probability, precision) the sidecar each statistic's relmats
    inherit (:func:`stability_sidecar`).

    Raises
    ------
    InputError
        Naming the ``stability`` key: too few subjects for the scheme, too few
        volumes for ``n_blocks``.
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.covariance import empirical_covariances, group_sparse_covariance
    from sparseconn.stability import ebic_alpha, stability_selection, support_precision

    signals, regions = read_unit_timeseries(timeseries, regions_table)
    dropped = _dropped(regions_table)
    source = ", ".join(map(str, timeseries))
    _check_stability_data(signals, subjects, scheme, n_blocks, source)
    with np.load(group_npz) as group:
        cv_alpha = float(group["alpha"])
        if [str(r) for r in group["regions"]] != list(regions):
            raise InputError(group_npz, "other regions than the time series")
    try:
        with threadpool_limits(limits=1):
            result = stability_selection(
                signals,
                n_resamples=n_resamples,
                threshold=threshold,
                pfer=pfer,
                scheme=scheme,
                n_blocks=n_blocks,
                seed=seed,
                n_jobs=1,
            )
            covariances, _ = empirical_covariances(signals)
            stable = np.stack(
                [
                    support_precision(covariances[..., k], result.support)
                    for k in range(len(signals))
                ]
            )
            alpha_ebic, ebic_scores = ebic_alpha(
                signals, gamma=ebic_gamma, tol=tol, max_iter=max_iter
            )
            _, ebic_precisions = group_sparse_covariance(
                signals, alpha_ebic, max_iter=max_iter, tol=tol
            )
    except (ValueError, np.linalg.LinAlgError) as error:
        raise InputError(source, f"stability selection: {error}") from error
    logger.info(
        "%d stable edges of %d (pi %g, %d halves), bound on the expected false "
        "edges %.3g; alpha CV %.4g, EBIC %.4g",
        result.n_edges,
        result.n_candidates,
        threshold,
        n_resamples,
        result.false_edges_bound,
        cv_alpha,
        alpha_ebic,
    )
    write_npz(
        out_npz,
        alphas=result.alphas,
        probabilities=result.probabilities,
        max_probabilities=result.max_probabilities,
        support=result.support,
        n_selected=result.n_selected,
        union_sizes=result.union_sizes,
        n_selection_alphas=np.int64(result.n_selection_alphas),
        threshold=np.float64(result.threshold),
        q=np.float64(result.q),
        n_candidates=np.int64(result.n_candidates),
        false_edges_bound=np.float64(result.false_edges_bound),
        pfer=np.float64(pfer),
        n_resamples=np.int64(result.n_resamples),
        scheme=np.asarray(scheme, dtype=str),
        n_blocks=np.int64(n_blocks),
        seed=np.int64(seed),
        stable_precisions=stable,
        cv_alpha=np.float64(cv_alpha),
        ebic_alpha=np.float64(alpha_ebic),
        ebic_gamma=np.float64(ebic_gamma),
        ebic_scores=np.asarray(ebic_scores, dtype=np.float64),
        ebic_precisions=np.moveaxis(ebic_precisions, 2, 0),
        subjects=np.asarray(subjects, dtype=str),
        regions=np.asarray(regions, dtype=str),
        **_dropped_arrays(dropped),
    )
    for index in range(len(subjects)):
        write_relmat(result.max_probabilities, regions, probability_relmats[index])
        write_relmat(stable[index], regions, precision_relmats[index])
    if sidecars is not None:
        sources = [uri for unit in timeseries for uri in _unit_sources(unit, links)]
        fields = stability_fields(
            result,
            pfer=pfer,
            n_blocks=n_blocks,
            cv_alpha=cv_alpha,
            ebic=(alpha_ebic, ebic_gamma),
        )
        for stat, path in zip(("probability", "precision"), sidecars, strict=True):
            sidecar = stability_sidecar(
                stat, fields, atlas=atlas, sources=sources, dropped=dropped
            )
            write_json(sidecar, Path(path))
