"""Stability selection and an information-criterion alpha for group-sparse graphs.

Cross-validation chooses ``alpha`` by held-out likelihood, which keeps many weak
edges: the ranking of the edges is good, the support too large. Two other ways
to choose the edges:

- :func:`stability_selection` (Meinshausen & Bühlmann 2010, with the
  complementary pairs of Shah & Samworth 2013): the group-sparse estimator is
  refitted on many random halves of the data along a decreasing path of alphas;
  an edge's selection probability at ``alpha`` is the fraction of halves whose
  estimate has it; the stable edges are those whose largest probability over
  the selection range ``Lambda`` (the top of the path) reaches ``threshold``.
  With ``q`` the average number of edges a half selects over ``Lambda`` (the
  size of the union of its supports) and ``m = p (p - 1) / 2`` candidate edges,
  ``q^2 / ((2 threshold - 1) m)`` bounds the expected number of false edges
  (M&B, Theorem 1, under exchangeability) and, with complementary pairs and no
  assumption, the expected number of stable edges whose selection probability
  on half the data is at most ``q / m`` (S&S, Theorem 1). ``Lambda`` is the
  longest top part of the path whose bound is at most ``pfer``.
- :func:`ebic_alpha`: the extended BIC of Foygel & Drton (2010), summed over
  subjects, along a path of full-data fits.

Halves. ``scheme="time"`` (the default) splits each subject's series into
``n_blocks`` contiguous blocks and draws half of them (the other half is the
complementary half; each subject is drawn independently): every half keeps every
subject, so the group penalty keeps its scale (``alpha_max`` of ``K`` subjects
scales as ``1 / sqrt(K)``) and the question is the one the group estimate
answers, which edges these subjects share; blocks, not single volumes, because
successive volumes are autocorrelated. ``scheme="subjects"`` draws half of the
subjects (population stability; one subject is left out of each pair when
their number is odd).

Speed: the halves are independent group-sparse problems, solved side by side in
one batch by :mod:`sparseconn.covariance`'s solver (as the folds of its
cross-validation), each warm-started along the path from its previous alpha
with its inverse and log determinant carried over, and its weighted covariances
computed once. A problem's bits do not depend on the others in its batch, so
the result is the same for any batching and any ``n_jobs``.

References
----------
N. Meinshausen, P. Bühlmann. "Stability selection". J. R. Stat. Soc. B 72(4),
2010.

R. D. Shah, R. J. Samworth. "Variable selection with error control: another look
at stability selection". J. R. Stat. Soc. B 75(1), 2013.

R. Foygel, M. Drton. "Extended Bayesian information criteria for Gaussian
graphical models". NIPS 2010.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sparseconn.covariance import (
    _check_alpha,
    _check_subjects,
    _check_tol,
    _covariances_of,
    _solve,
    _weighted_rows,
    compute_alpha_max,
)

__all__ = [
    "StabilityResult",
    "complementary_halves",
    "ebic_alpha",
    "ebic_scores",
    "stability_selection",
    "support_precision",
]

SCHEMES = ("time", "subjects")

# Halves solved side by side in one batch. The solver's per-coordinate work has a
# Python loop over the problems of a batch, visited for the union of their
# supports: beyond a few tens of halves that costs more than the numpy calls a
# batch saves (measured, 100 halves of 10 subjects x 39 regions: 12.0 s in one
# batch, 7.2 s in batches of 25, 6.8 s of 10, 7.4 s of 5).
_HALVES_PER_BATCH = 20
# Largest number of matrix entries (n * n * halves * subjects) in one batch:
# bounds the memory of a large atlas (the solver holds ~8 arrays of this size).
_MAX_BATCH_ENTRIES = 2**22


@dataclass(frozen=True)
class StabilityResult:
    """Outcome of :func:`stability_selection`.

    Attributes
    ----------
    alphas : numpy.ndarray, shape (n_alphas,)
        The path, decreasing.
    probabilities : numpy.ndarray, shape (n_alphas, p, p)
        Selection probability of each edge at each alpha (symmetric, zero
        diagonal): the fraction of halves whose estimate has the edge.
    n_selected : numpy.ndarray, shape (n_alphas,)
        Average number of edges of a half's estimate at each alpha.
    union_sizes : numpy.ndarray, shape (n_alphas,)
        Average number of edges a half selects at any alpha down to each one
        (the ``q`` of the selection range ending there).
    n_selection_alphas : int
        Size of the selection range ``Lambda``: ``alphas[:n_selection_alphas]``.
    max_probabilities : numpy.ndarray, shape (p, p)
        Largest selection probability over ``Lambda``.
    support : numpy.ndarray of bool, shape (p, p)
        The stable edges: ``max_probabilities >= threshold`` (symmetric, False
        on the diagonal).
    threshold : float
        The threshold ``pi``.
    q : float
        Average number of edges selected by a half over ``Lambda``.
    n_candidates : int
        Candidate edges, ``p (p - 1) / 2``.
    false_edges_bound : float
        ``q^2 / ((2 pi - 1) n_candidates)``: bound on the expected number of
        false stable edges (see the module docstring).
    scheme : str
        How the halves were drawn (``"time"`` or ``"subjects"``).
    n_resamples : int
        Number of halves (``n_resamples / 2`` complementary pairs).
    seed : int
        Seed of the draw.
    """

    alphas: np.ndarray
    probabilities: np.ndarray
    n_selected: np.ndarray
    union_sizes: np.ndarray
    n_selection_alphas: int
    max_probabilities: np.ndarray
    support: np.ndarray
    threshold: float
    q: float
    n_candidates: int
    false_edges_bound: float
    scheme: str
    n_resamples: int
    seed: int

    @property
    def n_edges(self) -> int:
        """Number of stable edges."""
        return int(np.triu(self.support, 1).sum())

    @property
    def selection_alphas(self) -> np.ndarray:
        """The selection range ``Lambda``."""
        return self.alphas[: self.n_selection_alphas]


# --------------------------------------------------------------------------------
# Parameter checks (each error names the parameter)
# --------------------------------------------------------------------------------


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a number in (0.5, 1], got {threshold!r}")
    if not 0.5 < threshold <= 1:
        raise ValueError(
            f"threshold must be in (0.5, 1] (the bound on false edges needs "
            f"2 threshold - 1 > 0), got {threshold!r}"
        )
    return float(threshold)


def _check_integer(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_even(value: Any, name: str, minimum: int, why: str) -> int:
    value = _check_integer(value, name, minimum)
    if value % 2:
        raise ValueError(f"{name} must be even ({why}), got {value}")
    return value


def _check_pfer(pfer: Any) -> float | None:
    if pfer is None:
        return None
    if isinstance(pfer, bool) or not isinstance(pfer, numbers.Real):
        raise ValueError(f"pfer must be a positive number or None, got {pfer!r}")
    if not (math.isfinite(pfer) and pfer > 0):
        raise ValueError(f"pfer must be a positive number or None, got {pfer!r}")
    return float(pfer)


def _check_alphas(alphas: Any) -> np.ndarray:
    if isinstance(alphas, (str, bytes)) or not hasattr(alphas, "__iter__"):
        raise ValueError(
            f"alphas must be a sequence of positive numbers, got {alphas!r}"
        )
    values = [_check_alpha(a, "each of alphas") for a in alphas]
    if not values:
        raise ValueError("alphas is empty")
    return np.array(sorted(values, reverse=True))


def _n_workers(n_jobs: Any, n_tasks: int) -> int:
    if n_jobs is None or n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    n_jobs = _check_integer(n_jobs, "n_jobs", 1)
    return max(1, min(n_jobs, n_tasks))


# --------------------------------------------------------------------------------
# Halves
# --------------------------------------------------------------------------------


def complementary_halves(
    n_volumes: Sequence[int],
    n_resamples: int = 100,
    *,
    scheme: str = "time",
    n_blocks: int = 8,
    seed: int = 0,
) -> list[list[tuple[int, np.ndarray]]]:
    """The random halves of :func:`stability_selection`, in complementary pairs.

    Parameters
    ----------
    n_volumes : sequence of int
        Number of volumes of each subject.
    n_resamples : int, default=100
        Number of halves (even: halves ``2 i`` and ``2 i + 1`` are complementary).
    scheme : {"time", "subjects"}, default="time"
        ``"time"``: each subject's volumes are split into ``n_blocks`` contiguous
        blocks of (nearly) equal length (``numpy.array_split``), and each subject
        draws ``n_blocks / 2`` of them for one half, the others going to the
        complementary half. ``"subjects"``: a half is ``len(n_volumes) // 2``
        subjects drawn at random, with all their volumes; its complement is as
        many of the others (one subject is left out when their number is odd).
    n_blocks : int, default=8
        Blocks per subject (``scheme="time"`` only; even).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    list of halves, each a list of ``(subject, volumes)``: the subject's index
    and the sorted indices of its volumes in the half.
    """
    rng = np.random.default_rng(seed)
    halves: list[list[tuple[int, np.ndarray]]] = []
    n_subjects = len(n_volumes)
    if scheme == "time":
        blocks = [np.array_split(np.arange(n), n_blocks) for n in n_volumes]
        half_blocks = n_blocks // 2
        for _ in range(n_resamples // 2):
            first: list[tuple[int, np.ndarray]] = []
            second: list[tuple[int, np.ndarray]] = []
            for k in range(n_subjects):
                order = rng.permutation(n_blocks)
                for half, chosen in (
                    (first, order[:half_blocks]),
                    (second, order[half_blocks:]),
                ):
                    volumes = np.concatenate([blocks[k][b] for b in np.sort(chosen)])
                    half.append((k, volumes))
            halves += [first, second]
    else:
        size = n_subjects // 2
        for _ in range(n_resamples // 2):
            order = rng.permutation(n_subjects)
            for chosen in (order[:size], order[size : 2 * size]):
                halves.append(
                    [(int(k), np.arange(n_volumes[k])) for k in np.sort(chosen)]
                )
    return halves


def _check_halves_data(arrays: list[np.ndarray], scheme: str, n_blocks: int) -> None:
    """Raise if the subjects are too few or too short for the halves."""
    n_subjects = len(arrays)
    if scheme == "subjects":
        if n_subjects < 4:
            raise ValueError(
                f"subjects: scheme='subjects' needs at least 4 subjects (2 in each "
                f"half), got {n_subjects}"
            )
        return
    if n_subjects < 2:
        raise ValueError(
            f"subjects: stability selection of a group-sparse model needs at least "
            f"2 subjects, got {n_subjects}"
        )
    for k, x in enumerate(arrays):
        if x.shape[0] < 2 * n_blocks:
            raise ValueError(
                f"n_blocks: subject {k} has {x.shape[0]} volumes, too few for "
                f"{n_blocks} blocks of at least 2 volumes (halves of "
                f"{n_blocks // 2} blocks); use fewer blocks"
            )


def _half_covariances(
    arrays: list[np.ndarray],
    halves: list[list[tuple[int, np.ndarray]]],
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised covariances (n, n, B, K) and weights (B, K) of the halves.

    ``first`` is the number of the first half (for the error messages).
    """
    covs, weights = [], []
    for index, half in enumerate(halves, start=first):
        parts = [arrays[k][volumes] for k, volumes in half]
        for (k, _), x in zip(half, parts, strict=True):
            constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
            if constant.size:
                raise ValueError(
                    f"subjects: subject {k}, region {constant[0]} is constant over "
                    f"the volumes of half {index} (zero variance)"
                )
        counts = np.array([x.shape[0] for x in parts], dtype=np.float64)
        # as the training folds of the cross-validation: correlation matrices
        covs.append(_covariances_of(parts, False, True))
        weights.append(counts / counts.sum())
    return np.ascontiguousarray(np.stack(covs, axis=2)), np.stack(weights)


# --------------------------------------------------------------------------------
# Batched paths
# --------------------------------------------------------------------------------


@dataclass
class _Batch:
    """Halves solved side by side: their data and their fits at the last alpha."""

    covs: np.ndarray  # (n, n, B, K) standardised covariances
    weights: np.ndarray  # (B, K)
    precisions: np.ndarray | None = None  # (n, n, B, K)
    inverses: np.ndarray | None = None  # (B, K, n, n)
    logdets: np.ndarray | None = None  # (B, K)


def _advance(
    task: tuple[_Batch, float, float | None, int],
) -> tuple[_Batch, np.ndarray]:
    """Fit a batch at the next alpha, warm-started; return it and its supports.

    The supports are bool (B, n_edges): the edges (i < j) of each half's estimate.
    The weighted covariances are computed here once per call (cheap next to a
    sweep); the precisions, their inverses and log determinants are carried from
    the previous alpha, as in the cross-validation's path.
    """
    batch, alpha, tol, max_iter = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = _solve(
            batch.covs,
            batch.weights,
            alpha,
            max_iter,
            tol,
            init=batch.precisions,
            init_inverses=batch.inverses,
            init_logdets=batch.logdets,
            weighted_covs=_weighted_rows(batch.covs, batch.weights),
        )
    batch = _Batch(
        batch.covs, batch.weights, result.precisions, result.inverses, result.logdets
    )
    rows, cols = np.triu_indices(batch.covs.shape[0], 1)
    supports = (result.precisions[rows, cols] != 0).any(axis=-1).T
    return batch, supports


def _batch_bounds(n_halves: int, halves_per_batch: int) -> list[tuple[int, int]]:
    """Contiguous ranges of at most ``halves_per_batch`` halves."""
    return [
        (start, min(start + halves_per_batch, n_halves))
        for start in range(0, n_halves, halves_per_batch)
    ]


def default_alphas(
    subjects: Sequence[np.ndarray], n_alphas: int = 12, ratio: float = 0.1
) -> np.ndarray:
    """A decreasing grid log-spaced from ``alpha_max`` to ``ratio * alpha_max``.

    ``alpha_max`` is that of the subjects' standardised covariances (all
    volumes): the smallest alpha at which the full-data estimate has no edge.
    """
    arrays = _check_subjects(subjects)
    covs = _covariances_of(arrays, False, True)
    counts = np.array([x.shape[0] for x in arrays], dtype=np.float64)
    alpha_max, _ = compute_alpha_max(covs, counts)
    return np.logspace(np.log10(alpha_max), np.log10(ratio * alpha_max), n_alphas)


def stability_selection(
    subjects: Sequence[np.ndarray],
    *,
    alphas: Sequence[float] | None = None,
    n_resamples: int = 100,
    threshold: float = 0.9,
    pfer: float | None = 5.0,
    scheme: str = "time",
    n_blocks: int = 8,
    seed: int = 0,
    n_jobs: int | None = 1,
    tol: float | None = 1e-2,
    max_iter: int = 50,
) -> StabilityResult:
    """Stable edges of the group-sparse estimator (complementary pairs).

    The halves are fitted along the path from its largest alpha down; the path
    stops after the first alpha whose bound exceeds ``pfer`` (the alphas below
    could not enter the selection range), so the result holds the alphas
    fitted.

    Parameters
    ----------
    subjects : list of numpy.ndarray, each of shape (n_volumes_k, n_regions)
        Time series of each subject (at least 2 subjects).
    alphas : sequence of float, optional
        The path (sorted decreasing). Default: :func:`default_alphas` (12 alphas
        from ``alpha_max`` down to ``alpha_max / 10``; the path usually stops at
        ``pfer`` halfway down).
    n_resamples : int, default=100
        Number of halves, even and at least 10 (``n_resamples / 2`` complementary
        pairs).
    threshold : float, default=0.9
        ``pi`` in (0.5, 1]: an edge is stable when its largest selection
        probability over the selection range reaches it.
    pfer : float or None, default=5.0
        Largest bound on the expected number of false edges: the selection range
        is the longest top part of the path whose ``q^2 / ((2 pi - 1) m)`` is at
        most ``pfer`` (at least its first alpha). None: the whole path.
    scheme : {"time", "subjects"}, default="time"
        How the halves are drawn (see :func:`complementary_halves`).
    n_blocks : int, default=8
        Contiguous blocks per subject (``scheme="time"``; even, each block at
        least 2 volumes).
    seed : int, default=0
        Seed of the halves.
    n_jobs : int or None, default=1
        Processes (None or -1: all cores); the result does not depend on it.
    tol : float or None, default=1e-2
        Tolerance of each fit (as
        :func:`~sparseconn.covariance.group_sparse_covariance`); the default and
        ``max_iter``'s are those of the cross-validation's search fits
        (``tol_cv``, ``max_iter_cv``): the supports are what counts here.
    max_iter : int, default=50
        Largest number of sweeps of each fit.

    Returns
    -------
    StabilityResult

    Raises
    ------
    ValueError
        Naming the parameter: ``threshold`` outside (0.5, 1], ``n_resamples`` odd
        or below 10, ``scheme`` unknown, ``n_blocks`` odd or too many for a
        subject's volumes, fewer than 2 subjects (4 with ``scheme="subjects"``),
        and the checks of the subjects' time series.
    """
    threshold = _check_threshold(threshold)
    n_resamples = _check_even(n_resamples, "n_resamples", 10, "complementary pairs")
    pfer = _check_pfer(pfer)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    n_blocks = _check_even(n_blocks, "n_blocks", 2, "two halves of as many blocks")
    seed = _check_integer(seed, "seed", 0)
    tol = _check_tol(tol)
    max_iter = _check_integer(max_iter, "max_iter", 1)
    n_workers = _n_workers(n_jobs, n_resamples)
    arrays = _check_subjects(subjects)
    _check_halves_data(arrays, scheme, n_blocks)
    grid = default_alphas(arrays) if alphas is None else _check_alphas(alphas)
    n_regions = arrays[0].shape[1]
    n_candidates = n_regions * (n_regions - 1) // 2
    halves = complementary_halves(
        [x.shape[0] for x in arrays],
        n_resamples,
        scheme=scheme,
        n_blocks=n_blocks,
        seed=seed,
    )
    per_half = n_regions * n_regions * len(halves[0])
    per_batch = max(1, min(_HALVES_PER_BATCH, _MAX_BATCH_ENTRIES // per_half))
    batches = []
    for start, stop in _batch_bounds(n_resamples, per_batch):
        covs, weights = _half_covariances(arrays, halves[start:stop], start)
        batches.append(_Batch(covs, weights))
    pool = ProcessPoolExecutor(n_workers) if n_workers > 1 else None
    supports = []
    union = np.zeros((n_resamples, n_candidates), dtype=bool)
    try:
        for alpha in grid:
            tasks = [(batch, float(alpha), tol, max_iter) for batch in batches]
            outputs = (
                [_advance(task) for task in tasks]
                if pool is None
                else list(pool.map(_advance, tasks))
            )
            batches = [batch for batch, _ in outputs]
            step = np.concatenate([support for _, support in outputs])
            supports.append(step)
            union |= step
            q = union.sum(axis=1).mean()
            if pfer is not None and _bound(q, threshold, n_candidates) > pfer:
                break
    finally:
        if pool is not None:
            pool.shutdown()
    fitted = grid[: len(supports)]
    return _summarise(
        np.stack(supports), fitted, n_regions, threshold, pfer, scheme, seed
    )


def _bound(q: Any, threshold: float, n_candidates: int) -> Any:
    """``q^2 / ((2 pi - 1) m)``: bound on the expected number of false edges."""
    return q**2 / ((2 * threshold - 1) * n_candidates)


def _summarise(
    supports: np.ndarray,
    alphas: np.ndarray,
    n_regions: int,
    threshold: float,
    pfer: float | None,
    scheme: str,
    seed: int,
) -> StabilityResult:
    """Selection probabilities, selection range, stable set and bound."""
    n_alphas, n_resamples, n_candidates = supports.shape
    edge_probabilities = supports.mean(axis=1)  # (n_alphas, n_edges)
    n_selected = supports.sum(axis=2).mean(axis=1)
    union_sizes = np.logical_or.accumulate(supports, axis=0).sum(axis=2).mean(axis=1)
    bounds = _bound(union_sizes, threshold, n_candidates)
    if pfer is None:
        n_selection = n_alphas
    else:
        within = bounds <= pfer
        # the longest top part of the path within pfer (bounds grow down the path)
        n_selection = max(1, int(np.argmin(within)) if not within.all() else n_alphas)
    max_edge = edge_probabilities[:n_selection].max(axis=0)
    rows, cols = np.triu_indices(n_regions, 1)

    def square(values: np.ndarray) -> np.ndarray:
        out = np.zeros((*values.shape[:-1], n_regions, n_regions), dtype=values.dtype)
        out[..., rows, cols] = values
        out[..., cols, rows] = values
        return out

    q = float(union_sizes[n_selection - 1])
    return StabilityResult(
        alphas=np.asarray(alphas, dtype=np.float64),
        probabilities=square(edge_probabilities),
        n_selected=n_selected,
        union_sizes=union_sizes,
        n_selection_alphas=n_selection,
        max_probabilities=square(max_edge),
        support=square(max_edge >= threshold),
        threshold=threshold,
        q=q,
        n_candidates=int(n_candidates),
        false_edges_bound=float(bounds[n_selection - 1]),
        scheme=scheme,
        n_resamples=int(n_resamples),
        seed=seed,
    )


# --------------------------------------------------------------------------------
# Extended BIC
# --------------------------------------------------------------------------------


def ebic_scores(
    precisions: np.ndarray,
    emp_covs: np.ndarray,
    n_samples: Sequence[float],
    gamma: float = 0.5,
) -> float:
    """Extended BIC of group-sparse precisions, summed over subjects.

    ``sum_k [n_k (tr(S_k K_k) - log det K_k) + |E| log n_k + 4 gamma |E| log p]``
    (Foygel & Drton 2010, per subject, with ``-2 l_k = n_k (tr(S_k K_k) - log det
    K_k)`` up to a constant), ``|E|`` the number of edges of the shared support
    (off-diagonal pairs ``i < j`` non-zero in some subject), ``p`` the number of
    regions.
    """
    precisions = np.asarray(precisions, dtype=np.float64)
    emp_covs = np.asarray(emp_covs, dtype=np.float64)
    counts = np.asarray(n_samples, dtype=np.float64)
    n_regions = precisions.shape[0]
    rows, cols = np.triu_indices(n_regions, 1)
    n_edges = int((precisions[rows, cols] != 0).any(axis=-1).sum())
    stack = np.moveaxis(precisions, -1, 0)
    sign, logdet = np.linalg.slogdet(stack)
    if (sign <= 0).any():
        return math.inf
    traces = np.einsum("ijk,ijk->k", emp_covs, precisions)
    fit = counts * (traces - logdet)
    penalty = n_edges * (np.log(counts) + 4 * gamma * math.log(n_regions))
    return float((fit + penalty).sum())


def ebic_alpha(
    subjects: Sequence[np.ndarray],
    alphas: Sequence[float] | None = None,
    gamma: float = 0.5,
    *,
    tol: float | None = 1e-3,
    max_iter: int = 100,
) -> tuple[float, np.ndarray]:
    """The alpha of smallest extended BIC along a path of full-data fits.

    The subjects' covariances (centred, not standardised: those of the final
    fit of :class:`~sparseconn.covariance.GroupSparseCovarianceCV`) are fitted along the
    decreasing path, each fit warm-started from the previous one, and scored by
    :func:`ebic_scores`.

    Parameters
    ----------
    subjects : list of numpy.ndarray, each of shape (n_volumes_k, n_regions)
        Time series of each subject.
    alphas : sequence of float, optional
        The path. Default: 20 alphas log-spaced from ``alpha_max`` to
        ``alpha_max / 100`` (the CV's range).
    gamma : float, default=0.5
        In [0, 1]; 0 is the BIC, 0.5 Foygel & Drton's default.
    tol, max_iter
        Of each fit.

    Returns
    -------
    alpha : float
        The alpha of smallest score (the larger one on ties).
    scores : numpy.ndarray, shape (n_alphas,)
        The scores, in the order of the path (decreasing alphas).
    """
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    tol = _check_tol(tol)
    max_iter = _check_integer(max_iter, "max_iter", 1)
    arrays = _check_subjects(subjects)
    covs = _covariances_of(arrays, False, False)
    counts = np.array([x.shape[0] for x in arrays], dtype=np.float64)
    if alphas is None:
        alpha_max, _ = compute_alpha_max(covs, counts)
        grid = np.logspace(np.log10(alpha_max), np.log10(alpha_max / 100), 20)
    else:
        grid = _check_alphas(alphas)
    weights = (counts / counts.sum())[None, :]
    batch = np.ascontiguousarray(covs[:, :, None, :])
    weighted = _weighted_rows(batch, weights)
    scores = np.empty(grid.size)
    precisions = inverses = logdets = None
    for index, alpha in enumerate(grid):
        result = _solve(
            batch,
            weights,
            float(alpha),
            max_iter,
            tol,
            init=precisions,
            init_inverses=inverses,
            init_logdets=logdets,
            weighted_covs=weighted,
        )
        precisions, inverses, logdets = (
            result.precisions,
            result.inverses,
            result.logdets,
        )
        scores[index] = ebic_scores(precisions[:, :, 0], covs, counts, gamma)
    best = int(np.argmin(scores))
    return float(grid[best]), scores


# --------------------------------------------------------------------------------
# Refit on a fixed support
# --------------------------------------------------------------------------------


def support_precision(
    covariance: np.ndarray,
    support: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 500,
) -> np.ndarray:
    """Maximum-likelihood precision whose off-diagonal zeros are those of ``support``.

    Dempster's covariance selection, solved by the column-by-column regressions
    of Hastie, Tibshirani & Friedman (The Elements of Statistical Learning, 2nd
    ed., Algorithm 17.1): the fitted covariance ``W`` equals ``covariance`` on
    the diagonal and on the support, and its inverse is zero off the support.
    No penalty, so no shrinkage of the kept edges; positive definite whenever
    ``covariance`` is.

    Parameters
    ----------
    covariance : numpy.ndarray, shape (p, p)
        Empirical covariance (symmetric positive definite).
    support : numpy.ndarray of bool, shape (p, p)
        Edges allowed (symmetric; the diagonal is ignored).
    tol : float, default=1e-10
        Stop when no entry of ``W`` moves more than ``tol`` times the mean
        absolute diagonal in a sweep.
    max_iter : int, default=500
        Largest number of sweeps.

    Returns
    -------
    numpy.ndarray, shape (p, p): the precision, symmetric, exactly zero off
    ``support``.

    Raises
    ------
    ValueError
        When a regression is singular (``covariance`` not positive definite on
        a neighbourhood).
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    support = np.asarray(support, dtype=bool)
    n_regions = covariance.shape[0]
    if covariance.shape != (n_regions, n_regions) or support.shape != covariance.shape:
        raise ValueError(
            f"covariance {covariance.shape} and support {support.shape} must be "
            "square and of the same shape"
        )
    support = support | support.T
    np.fill_diagonal(support, False)
    neighbours = [np.flatnonzero(support[j]) for j in range(n_regions)]
    fitted = covariance.copy()
    scale = float(np.abs(np.diag(covariance)).mean()) or 1.0
    for _ in range(max_iter if support.any() else 0):
        change = 0.0
        for j, near in enumerate(neighbours):
            others = np.r_[0:j, j + 1 : n_regions]
            if near.size:
                beta = np.linalg.solve(fitted[np.ix_(near, near)], covariance[near, j])
                column = fitted[np.ix_(others, near)] @ beta
            else:
                column = np.zeros(others.size)
            change = max(change, float(np.abs(column - fitted[others, j]).max()))
            fitted[others, j] = column
            fitted[j, others] = column
        if change <= tol * scale:
            break
    precision = np.zeros_like(covariance)
    for j, near in enumerate(neighbours):
        beta = (
            np.linalg.solve(fitted[np.ix_(near, near)], covariance[near, j])
            if near.size
            else np.zeros(0)
        )
        diagonal = 1.0 / (covariance[j, j] - covariance[near, j] @ beta)
        precision[j, j] = diagonal
        precision[near, j] = -beta * diagonal
    return (precision + precision.T) / 2
