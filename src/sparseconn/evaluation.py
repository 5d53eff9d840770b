"""Does the group prior help? Held-out likelihood and ground-truth recovery.

Varoquaux et al. (NIPS 2010) compare estimators by the Gaussian log-likelihood of
each subject's held-out data under the precision fitted on the rest of it; on
synthetic data the true precisions are known, so the support (which edges) and
the values can be scored too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.covariance import GraphicalLassoCV, LedoitWolf, empirical_covariance

from sparseconn.graph_lasso import graph_lasso_cv_many

#: Estimators compared, in display order.
ESTIMATORS = ("group_sparse", "graph_lasso", "ledoit_wolf", "empirical")
#: The group-sparse model with its edges chosen otherwise than by CV (config
#: ``stability``): refitted on the stable set, fitted at the extended-BIC alpha.
STABILITY_ESTIMATORS = ("group_sparse_stable", "group_sparse_ebic")
#: Every estimator's place in the tables (the group-sparse rows first).
ESTIMATOR_ORDER = (ESTIMATORS[0], *STABILITY_ESTIMATORS, *ESTIMATORS[1:])
#: Columns of the held-out log-likelihood tables.
COMPARISON_COLUMNS = ["subject", "estimator", "fold", "log_likelihood"]


def off_diagonal_support(matrix: np.ndarray) -> np.ndarray:
    """Boolean upper-triangle (i < j) entries that are non-zero.

    Parameters
    ----------
    matrix : ndarray, shape (p, p)

    Returns
    -------
    ndarray, shape (p * (p - 1) / 2,), bool
    """
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    return matrix[rows, cols] != 0


def support_scores(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of the estimated off-diagonal support.

    An edge is an off-diagonal entry (i < j) that is not exactly zero. Precision
    is 1 when nothing is estimated (no false edge); recall is 1 when the truth
    has no edge.

    ``top_k_precision`` ranks instead of thresholding: the fraction of true edges
    among the ``n_true`` entries of largest absolute value.

    Returns
    -------
    dict with keys ``precision``, ``recall``, ``f1``, ``n_estimated``, ``n_true``,
    ``top_k_precision``.
    """
    estimated, true = off_diagonal_support(estimate), off_diagonal_support(truth)
    hits = int(np.sum(estimated & true))
    precision = hits / estimated.sum() if estimated.any() else 1.0
    recall = hits / true.sum() if true.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    rows, cols = np.triu_indices(estimate.shape[0], k=1)
    strongest = np.argsort(-np.abs(estimate[rows, cols]), kind="stable")[: true.sum()]
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "n_estimated": int(estimated.sum()),
        "n_true": int(true.sum()),
        "top_k_precision": float(true[strongest].mean()) if true.any() else 1.0,
    }


def relative_frobenius_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """``||estimate - truth||_F / ||truth||_F``."""
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


def gaussian_log_likelihood(test: np.ndarray, precision: np.ndarray) -> float:
    """Mean Gaussian log-likelihood per sample of ``test`` under ``precision``.

    The test samples are centred on their own mean (as scikit-learn's
    ``score``): ``(log det K - tr(S K) - p log 2 pi) / 2`` with S their empirical
    covariance.

    Parameters
    ----------
    test : ndarray, shape (n_samples, p)
    precision : ndarray, shape (p, p), symmetric positive definite
    """
    covariance = empirical_covariance(test)
    sign, logdet = np.linalg.slogdet(precision)
    if sign <= 0:
        return float("-inf")
    p = precision.shape[0]
    return float((logdet - np.sum(covariance * precision) - p * np.log(2 * np.pi)) / 2)


def contiguous_folds(n_samples: int, n_blocks: int = 2) -> list[np.ndarray]:
    """Split ``range(n_samples)`` into ``n_blocks`` contiguous blocks in time.

    Returns
    -------
    list of ndarray of sample indices, one per block (sizes differ by at most 1).
    """
    if not 2 <= n_blocks <= n_samples // 2:
        raise ValueError(
            f"n_blocks={n_blocks}: use 2 to {n_samples // 2} for {n_samples} samples"
        )
    return list(np.array_split(np.arange(n_samples), n_blocks))


def graph_lasso_precisions(signals: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Precision of the graph lasso cross-validated as ``GraphicalLassoCV()`` does.

    One per element of ``signals`` (each (n_samples_k, p_k)), all
    cross-validations run side by side by
    :func:`sparseconn.graph_lasso.graph_lasso_cv_many`: the alpha, precision
    and scores of scikit-learn's ``GraphicalLassoCV()`` (default parameters),
    several times faster; with a scikit-learn it does not restate
    (:func:`~sparseconn.graph_lasso.restates_installed_scikit_learn`),
    ``GraphicalLassoCV()`` itself on each. BLAS on one thread.
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.graph_lasso import restates_installed_scikit_learn

    with threadpool_limits(limits=1):
        if restates_installed_scikit_learn():
            return [fit.precision for fit in graph_lasso_cv_many(signals)]
        return [GraphicalLassoCV().fit(x).precision_ for x in signals]


def graph_lasso_precision(signals: np.ndarray) -> np.ndarray:
    """:func:`graph_lasso_precisions` of one subject's ``signals`` (n_samples, p)."""
    return graph_lasso_precisions([signals])[0]


def _split(x: np.ndarray, n_blocks: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Training (every block but ``fold``, 1-based) and held-out samples of ``x``."""
    blocks = contiguous_folds(x.shape[0], n_blocks)
    train = np.concatenate([b for i, b in enumerate(blocks, 1) if i != fold])
    return x[train], x[blocks[fold - 1]]


def _check_fold(fold: int, n_blocks: int) -> None:
    if not 1 <= fold <= n_blocks:
        raise ValueError(f"fold={fold} must be in 1..{n_blocks}")


def heldout_group_sparse(
    series: Sequence[np.ndarray],
    subjects: Sequence[str],
    fold: int,
    n_blocks: int = 2,
    group_cv_options: dict | None = None,
) -> pd.DataFrame:
    """Held-out log-likelihood of the group-sparse fit of one fold, per subject.

    Every subject's block ``fold`` (1-based, of ``n_blocks`` contiguous blocks) is
    held out; ``GroupSparseCovarianceCV(**group_cv_options)`` is fitted on the
    other blocks of all subjects together (alpha chosen by its cross-validation).

    Returns
    -------
    DataFrame with columns subject, estimator (``group_sparse``), fold,
    log_likelihood; one row per subject.
    """
    from sparseconn.covariance import GroupSparseCovarianceCV

    _check_fold(fold, n_blocks)
    parts = [_split(x, n_blocks, fold) for x in series]
    group = GroupSparseCovarianceCV(**(group_cv_options or {})).fit(
        [train for train, _ in parts]
    )
    rows = [
        (
            subject,
            "group_sparse",
            fold,
            gaussian_log_likelihood(test, group.precisions_[..., k]),
        )
        for k, (subject, (_, test)) in enumerate(zip(subjects, parts, strict=True))
    ]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def stable_precisions(
    series: Sequence[np.ndarray], support: np.ndarray
) -> list[np.ndarray]:
    """Each subject's maximum-likelihood precision on the edges ``support``.

    See :func:`sparseconn.stability.support_precision` (on each subject's
    empirical covariance, centred, as the group-sparse estimator's final fit).
    """
    from sparseconn.covariance import empirical_covariances
    from sparseconn.stability import support_precision

    covariances, _ = empirical_covariances(series)
    return [support_precision(covariances[..., k], support) for k in range(len(series))]


def heldout_stability(
    series: Sequence[np.ndarray],
    subjects: Sequence[str],
    fold: int,
    n_blocks: int = 2,
    stability_options: dict | None = None,
    ebic_gamma: float = 0.5,
    tol: float = 1e-3,
    max_iter: int = 100,
) -> pd.DataFrame:
    """Held-out log-likelihood of the stable set and of the EBIC alpha, one fold.

    As :func:`heldout_group_sparse`, on the same training parts: stability
    selection (:func:`sparseconn.stability.stability_selection`,
    ``**stability_options``) and each subject's precision refitted on its stable
    edges (:func:`stable_precisions`), estimator ``group_sparse_stable``; the
    group-sparse fit at :func:`sparseconn.stability.ebic_alpha` (``tol``,
    ``max_iter``: the final fit's), estimator ``group_sparse_ebic``.

    Returns
    -------
    DataFrame with columns subject, estimator, fold, log_likelihood.
    """
    from sparseconn.covariance import group_sparse_covariance
    from sparseconn.stability import ebic_alpha, stability_selection

    _check_fold(fold, n_blocks)
    parts = [_split(x, n_blocks, fold) for x in series]
    training = [train for train, _ in parts]
    result = stability_selection(training, **(stability_options or {}))
    stable = stable_precisions(training, result.support)
    alpha, _ = ebic_alpha(training, gamma=ebic_gamma, tol=tol, max_iter=max_iter)
    _, ebic = group_sparse_covariance(training, alpha, max_iter=max_iter, tol=tol)
    rows = []
    for k, (subject, (_, test)) in enumerate(zip(subjects, parts, strict=True)):
        rows.append(
            (
                subject,
                "group_sparse_stable",
                fold,
                gaussian_log_likelihood(test, stable[k]),
            )
        )
        rows.append(
            (
                subject,
                "group_sparse_ebic",
                fold,
                gaussian_log_likelihood(test, ebic[..., k]),
            )
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def heldout_single_subject(
    x: np.ndarray,
    subject: str,
    n_blocks: int = 2,
    graph_lasso: Sequence[np.ndarray] | None = None,
) -> pd.DataFrame:
    """Held-out log-likelihood of the per-subject estimators, every fold.

    For each fold, the subject's block is held out and fitted on the others: the
    graph lasso (:func:`graph_lasso_precisions`, its own cross-validation),
    Ledoit-Wolf shrinkage and the empirical covariance (NaN where it is not
    invertible).

    Parameters
    ----------
    x : ndarray, shape (n_samples, p)
    subject : str
    n_blocks : int
        Number of contiguous blocks in time (folds).
    graph_lasso : sequence of ndarray (p, p), optional
        The graph lasso precisions of the folds' training parts, in fold order,
        if already fitted (:func:`heldout_subjects` fits many subjects' at
        once); fitted here otherwise.

    Returns
    -------
    DataFrame with columns subject, estimator, fold, log_likelihood.
    """
    parts = [_split(x, n_blocks, fold) for fold in range(1, n_blocks + 1)]
    if graph_lasso is None:
        graph_lasso = graph_lasso_precisions([train for train, _ in parts])
    if len(graph_lasso) != n_blocks:
        raise ValueError(
            f"graph_lasso: {len(graph_lasso)} precisions for {n_blocks} folds"
        )
    rows = []
    for fold, (train, test), graph_lasso_fit in zip(
        range(1, n_blocks + 1), parts, graph_lasso, strict=True
    ):
        covariance = empirical_covariance(train)
        invertible = (
            train.shape[0] > train.shape[1] and np.linalg.cond(covariance) < 1e12
        )
        precisions = {
            "graph_lasso": graph_lasso_fit,
            "ledoit_wolf": LedoitWolf().fit(train).precision_,
            "empirical": np.linalg.inv(covariance) if invertible else None,
        }
        for estimator, precision in precisions.items():
            score = (
                np.nan
                if precision is None
                else gaussian_log_likelihood(test, precision)
            )
            rows.append((subject, estimator, fold, score))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def single_subject_precisions(
    x: np.ndarray, graph_lasso: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The per-subject estimators' precisions on a subject's whole series.

    ``graph_lasso`` (:func:`graph_lasso_precisions`; the argument if given,
    already fitted on ``x``), ``ledoit_wolf`` and ``empirical`` (the inverse of
    the empirical covariance), as scored against the truth by
    :func:`recovery_scores`.
    """
    return {
        "graph_lasso": graph_lasso_precision(x) if graph_lasso is None else graph_lasso,
        "ledoit_wolf": LedoitWolf().fit(x).precision_,
        "empirical": np.linalg.inv(empirical_covariance(x)),
    }


def heldout_subjects(
    series: Sequence[np.ndarray],
    subjects: Sequence[str],
    n_blocks: int = 2,
    whole_series: bool = False,
) -> tuple[pd.DataFrame, list[dict[str, np.ndarray]]]:
    """:func:`heldout_single_subject` of many subjects, graph lassos side by side.

    Every graph lasso cross-validation (each subject's training parts, and with
    ``whole_series`` its whole series) runs in one batch
    (:func:`graph_lasso_precisions`); the numbers are those of the functions
    called one subject at a time.

    Returns
    -------
    The held-out table (:func:`heldout_single_subject` of each subject, in
    order) and, with ``whole_series``, each subject's
    :func:`single_subject_precisions` (else an empty list).
    """
    trainings = [
        _split(x, n_blocks, fold)[0] for x in series for fold in range(1, n_blocks + 1)
    ]
    fits = graph_lasso_precisions(trainings + (list(series) if whole_series else []))
    tables = [
        heldout_single_subject(
            x, subject, n_blocks, fits[k * n_blocks : (k + 1) * n_blocks]
        )
        for k, (x, subject) in enumerate(zip(series, subjects, strict=True))
    ]
    precisions = (
        [
            single_subject_precisions(x, graph_lasso)
            for x, graph_lasso in zip(series, fits[len(trainings) :], strict=True)
        ]
        if whole_series
        else []
    )
    return pd.concat(tables, ignore_index=True), precisions


def sorted_comparison(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The held-out tables as one, sorted by subject, estimator order, fold."""
    table = pd.concat(list(tables), ignore_index=True)
    order = {name: i for i, name in enumerate(ESTIMATOR_ORDER)}
    return (
        table.assign(_order=table["estimator"].map(order))
        .sort_values(["subject", "_order", "fold"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def compare_models(
    series: Sequence[np.ndarray],
    subjects: Sequence[str],
    n_blocks: int = 2,
    group_cv_options: dict | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Held-out log-likelihood of each estimator, subject and fold.

    For each fold ``f``, every subject's block ``f`` is held out and the
    estimators are fitted on the other blocks: group-sparse (alpha chosen by
    cross-validation on the training parts of all subjects,
    :func:`heldout_group_sparse`), and per subject the graph lasso (its own
    cross-validation), Ledoit-Wolf shrinkage and the empirical covariance (only
    where invertible, :func:`heldout_single_subject`); each is scored on the
    held-out block. The workflow runs these pieces as separate jobs.

    Parameters
    ----------
    series : sequence of ndarray, each (n_samples_k, p)
    subjects : sequence of str, same length
    n_blocks : int
        Number of contiguous blocks in time (2: the two halves).
    group_cv_options : dict, optional
        Parameters of the ``GroupSparseCovarianceCV``.
    n_jobs : int
        Worker processes for the per-subject estimators (results do not
        depend on it).

    Returns
    -------
    DataFrame with columns subject, estimator, fold, log_likelihood (rows sorted
    by subject, estimator order of ``ESTIMATORS``, fold); the empirical estimator
    has NaN where the covariance is not invertible.
    """
    from concurrent.futures import ProcessPoolExecutor

    for x in series:
        contiguous_folds(x.shape[0], n_blocks)
    group = [
        heldout_group_sparse(series, subjects, fold, n_blocks, group_cv_options)
        for fold in range(1, n_blocks + 1)
    ]
    if n_jobs > 1:
        with ProcessPoolExecutor(n_jobs) as pool:
            single = list(
                pool.map(
                    heldout_single_subject, series, subjects, [n_blocks] * len(series)
                )
            )
    else:
        single = [
            heldout_single_subject(x, s, n_blocks)
            for x, s in zip(series, subjects, strict=True)
        ]
    return sorted_comparison([*group, *single])


def recovery_scores(
    estimates: dict[str, Sequence[np.ndarray]],
    truths: Sequence[np.ndarray],
    subjects: Sequence[str],
) -> pd.DataFrame:
    """Support precision/recall/F1 and relative Frobenius error per estimate.

    Parameters
    ----------
    estimates : dict estimator -> sequence of precision matrices (p, p), one per
        subject (in ``subjects`` order)
    truths : sequence of true precision matrices (p, p)
    subjects : sequence of str

    Returns
    -------
    DataFrame with columns subject, estimator, precision, recall, f1,
    n_estimated, n_true, relative_frobenius_error.
    """
    rows = []
    for estimator, matrices in estimates.items():
        for subject, estimate, truth in zip(subjects, matrices, truths, strict=True):
            rows.append(
                {
                    "subject": subject,
                    "estimator": estimator,
                    **support_scores(estimate, truth),
                    "relative_frobenius_error": relative_frobenius_error(
                        estimate, truth
                    ),
                }
            )
    return pd.DataFrame(rows)
