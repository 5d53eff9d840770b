"""Group-sparse inverse covariance estimation (one sparsity pattern for all subjects).

Given the time series of several subjects over the same regions, estimate one
precision (inverse covariance) matrix per subject such that all subjects share the
same set of zero entries (the same conditional-independence graph). With ``S_k`` the
empirical covariance of subject ``k`` and ``w_k = n_k / sum(n)`` its share of the
samples, the estimate minimises (Varoquaux et al. 2010)::

    sum_k w_k (-log det K_k + tr(S_k K_k)) + alpha * sum_{i != j} ||K[i, j, :]||_2

over symmetric positive-definite ``K_1 .. K_n``. The group penalty (an l21 norm over
the subjects axis) zeros an off-diagonal entry in all subjects at once.

The API mirrors ``nilearn.connectome`` (names, parameters, defaults, shapes
``(n_regions, n_regions, n_subjects)``), so a nilearn user switches by changing one
import. The solver is block coordinate descent over columns (Honorio & Samaras 2012),
each column a pass of coordinate descent over its entries, each entry a group
soft-threshold across subjects. It runs the same sweep order and stopping rule as
nilearn (stop when the largest change of any precision entry over a sweep is below
``tol``), so the cross-validated choice of ``alpha`` is the same. It is written for
speed in numpy:

- every operation is vectorised over subjects and, in cross-validation, over folds
  (the folds are independent problems solved side by side in one batch);
- the inverse of each precision without one row/column is obtained from the current
  covariance estimate ``K^-1`` by a rank-one downdate, and ``K^-1`` is updated in
  closed form after each column (no factorisation inside a sweep); the update after
  one column and the downdate before the next are applied together, as one batched
  rank-two matrix product; ``W^-1 y`` (``W`` the precision without row/column
  ``p``, ``y`` its column ``p``) is read off column ``p`` of ``K^-1`` (as
  ``K^-1 K = I``) instead of being computed;
- ``K^-1`` is carried over from one sweep to the next and from one alpha of a
  path to the next (warm starts), and recomputed from scratch only every
  ``_REFRESH_SWEEPS`` sweeps; ``log det K`` is carried along too, updated at each
  column by the ratio of the old and new Schur complements, so the early-stopping
  test and the scores of cross-validation need no factorisation;
- entries that are zero and stay zero are skipped in bulk: the thresholding test is
  evaluated for all remaining entries of a column at once, and only entries that are
  (or become) non-zero are visited one at a time;
- each group soft-threshold solves its secular equation by Newton's method on
  ``1 / ||x(gamma)||`` (a concave function, Moré & Sorensen 1983) from a
  second-order approximation of its root, after which one Newton step nearly
  always meets the stopping test; the sums over subjects are batched numpy calls
  into preallocated buffers, the per-fold scalars plain Python floats; each
  fold's Newton iteration stops on its own, so batched folds give the same bits
  as folds solved alone; the common case (one Newton step for every fold) is
  inlined in the sweep, with ``c``, ``c q`` and ``c q^2`` from one product;
- cross-validation folds can run in several processes (``n_jobs``: the first
  group of folds in this process, the others in workers), with results identical
  to the last bit for any ``n_jobs``.

From ``_LARGE_REGIONS`` (64) regions on, two changes of organisation that leave
the iterates (hence the stopping rule and the cross-validated choice) those of
the coordinate path, up to rounding; below it (the default atlas has 39 regions)
the sweep above runs unchanged, bit for bit:

- exact screening: the regions are split into the connected components of the
  graph ``||w S[i, j, :]||_2 > alpha`` (for batched folds, of the union of their
  graphs). If every pair in different components has ``||w S[i, j, :]||_2 <=
  alpha``, then a block-diagonal iterate stays block diagonal through a sweep,
  the sweep is the sweeps of the blocks, and the optimum is block diagonal; and
  conversely the optimum cannot be block diagonal on a partition with a pair
  above ``alpha`` (KKT; see :func:`_screened_sweep`). Single regions are solved
  in closed form (``1 / S[i, i]``); a start that is not block diagonal (a user's
  ``precisions_init``) is not screened;
- blocks of ``_LARGE_REGIONS`` regions or more are swept by :func:`_sweep_large`,
  the same visits with less memory traffic: the inverses' low-rank updates kept
  as factors and added by BLAS every few columns, the rank-one updates of a
  column's coefficients applied per chunk of coordinates.

Progress is logged through the :mod:`logging` logger ``sparseconn.covariance``.

References
----------
G. Varoquaux, A. Gramfort, J.-B. Poline, B. Thirion. "Brain covariance selection:
better individual functional connectivity models using population prior". NIPS 2010.

J. Honorio, D. Samaras. "Simultaneous and group-sparse multi-task learning of
Gaussian graphical models". arXiv:1207.4255, 2012.

P. Danaher, P. Wang, D. M. Witten. "The joint graphical lasso for inverse
covariance estimation across multiple classes". J. R. Stat. Soc. B 76(2), 2014.

D. M. Witten, J. H. Friedman, N. Simon. "New insights and faster computations for
the graphical lasso". J. Comput. Graph. Stat. 20(4), 2011.

J. J. Moré, D. C. Sorensen. "Computing a trust region step". SIAM J. Sci. Stat.
Comput. 4(3), 1983.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import sparse
from scipy.linalg.blas import dgemm as _dgemm
from scipy.sparse.csgraph import connected_components
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv

__all__ = [
    "GroupSparseCovariance",
    "GroupSparseCovarianceCV",
    "compute_alpha_max",
    "empirical_covariances",
    "group_sparse_covariance",
    "group_sparse_covariance_path",
    "group_sparse_scores",
]

logger = logging.getLogger(__name__)

#: Signature of a probe: (emp_covs, n_samples, alpha, max_iter, tol, iteration,
#: precisions, previous precisions) -> True to stop.
ProbeFunction = Callable[..., Any]

# Newton on the secular equation stops when a step is below this (relative); it
# converges quadratically, so the relative error left is then ~1e-8 times a
# curvature constant that is small here (measured: < 1e-12).
_NEWTON_RTOL = 1e-4
_NEWTON_MAX_ITER = 60
# Below this relative excess ||c|| / alpha - 1, the root of the secular equation is
# taken from its second-order expansion (relative error ~ excess^2 < 1e-12), with
# the excess computed exactly: Newton's steps measure the excess in floating point,
# to ~1e-16, so their relative accuracy degrades as 1e-16 / excess, and
# ||c|| / alpha may even round to 1 (a zero start, a division by zero).
_SMALL_EXCESS = 1e-6

# A sweep keeps the inverses of the precisions up to date by low-rank updates, so
# the next sweep starts from them; they are recomputed from scratch every this
# many sweeps, to bound the drift of rounding errors.
_REFRESH_SWEEPS = 10


# --------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------


def _check_subjects(subjects: Any, min_samples: int = 2) -> list[np.ndarray]:
    """Validate subjects' time series and return them as float64 arrays.

    The messages for sparse, complex and object input and for too few samples or
    regions use scikit-learn's words (as its ``check_array``), after the subject.

    Parameters
    ----------
    subjects : list of array-like, each of shape (n_samples_k, n_regions)
        One array per subject (a single 2D array is taken as one subject).
    min_samples : int
        Smallest number of samples accepted for a subject.

    Returns
    -------
    list of numpy.ndarray, each of shape (n_samples_k, n_regions)

    Raises
    ------
    TypeError
        On a sparse matrix, or values that are neither numbers nor strings.
    ValueError
        On no subject, a subject that is not 2D, complex or non-numeric values,
        fewer than 2 regions, fewer than ``min_samples`` samples, subjects with
        different numbers of regions, NaN or infinite values, or a constant region.
    """
    if (isinstance(subjects, np.ndarray) and subjects.ndim == 2) or sparse.issparse(
        subjects
    ):
        subjects = [subjects]
    if isinstance(subjects, (str, bytes)) or not hasattr(subjects, "__iter__"):
        raise ValueError(
            "'subjects' (the time series) must be an iterable of 2D arrays "
            f"(n_samples, n_regions); got {type(subjects).__name__}"
        )
    arrays = [_numeric_array(subject, k) for k, subject in enumerate(subjects)]
    if not arrays:
        raise ValueError("subjects is empty: at least one subject is needed")
    n_regions = arrays[0].shape[1]
    for k, x in enumerate(arrays):
        if x.shape[1] != n_regions:
            raise ValueError(
                "All subjects must have the same number of features, i.e. the "
                f"same number of regions: subject {k} has {x.shape[1]} regions, "
                f"subject 0 has {n_regions}"
            )
    if n_regions < 2:
        raise ValueError(
            f"subject 0: Found array with {n_regions} feature(s) (shape="
            f"{arrays[0].shape}) while a minimum of 2 is required: at least 2 "
            "regions are needed"
        )
    for k, x in enumerate(arrays):
        if x.shape[0] < min_samples:
            raise ValueError(
                f"subject {k}: Found array with {x.shape[0]} sample(s) (shape="
                f"{x.shape}) while a minimum of {min_samples} is required"
            )
        finite = np.isfinite(x)
        if not finite.all():
            sample, region = np.argwhere(~finite)[0]
            raise ValueError(
                f"subject {k} contains NaN or infinite values: first at sample "
                f"{sample}, region {region} (value {x[sample, region]})"
            )
        constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
        if constant.size:
            region = constant[0]
            raise ValueError(
                f"subject {k}, region {region} is constant (zero variance, value "
                f"{x[0, region]}); constant regions: {constant.tolist()}"
            )
    return arrays


def _numeric_array(subject: Any, k: int) -> np.ndarray:
    """Subject ``k``'s time series as a 2D float64 array (see _check_subjects)."""
    if sparse.issparse(subject):
        raise TypeError(
            f"subject {k}: Sparse data was passed ({type(subject).__name__} of "
            f"shape {subject.shape}), but dense data is required. Use '.toarray()' "
            "to convert to a dense numpy array."
        )
    try:
        x = np.asarray(subject)
        if x.dtype.kind != "c":
            x = x.astype(np.float64, copy=False)
    except (TypeError, ValueError) as error:
        # TypeError for values that are neither numbers nor strings (as numpy)
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(
            f"subject {k}: cannot be read as a numeric array ({error})"
        ) from error
    if x.dtype.kind == "c":
        imaginary = np.flatnonzero(x.imag)
        example = x.flat[imaginary[0] if imaginary.size else 0]
        raise ValueError(
            f"subject {k}: Complex data not supported (dtype {x.dtype}, value "
            f"{example})"
        )
    if x.ndim != 2:
        raise ValueError(
            f"subject {k}: expected a 2D array (n_samples, n_regions), got "
            f"shape {x.shape}"
        )
    return x


def _check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Return ``alpha`` as a float, or raise if it is not a finite number > 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"{name} must be a positive number, got {alpha!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"{name} must be a positive finite number, got {alpha!r}")
    return float(alpha)


def _check_tol(tol: Any, name: str = "tol") -> float | None:
    """Return ``tol`` (None or -1 meaning no tolerance check)."""
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise ValueError(f"{name} must be a positive number or None, got {tol!r}")
    if tol == -1:
        return None
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"{name} must be a positive number or None, got {tol!r}")
    return float(tol)


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------
# Covariances, alpha_max, scores
# --------------------------------------------------------------------------------


def _covariances_of(
    subjects: Sequence[np.ndarray], assume_centered: bool, standardize: bool
) -> np.ndarray:
    """Empirical covariances, shape (n_regions, n_regions, n_subjects)."""
    n_regions = subjects[0].shape[1]
    covs = np.empty((n_regions, n_regions, len(subjects)), order="F")
    for k, x in enumerate(subjects):
        if standardize:
            # a region constant over these samples (only the test samples of a
            # CV fold can be) keeps scale 1, as in scikit-learn's StandardScaler
            x = x / np.where(np.ptp(x, axis=0) == 0, 1.0, x.std(axis=0))
        if not assume_centered:
            x = x - x.mean(axis=0)
        cov = x.T @ x / x.shape[0]
        covs[..., k] = (cov + cov.T) / 2
    return covs


def empirical_covariances(
    subjects: Sequence[np.ndarray],
    assume_centered: bool = False,
    standardize: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical covariance of each subject.

    Parameters
    ----------
    subjects : list of numpy.ndarray, each of shape (n_samples_k, n_regions)
        Time series of each subject (samples in rows); the number of samples may
        differ between subjects, the number of regions may not.
    assume_centered : bool, default=False
        If True, the signals are taken as centred (the mean is not removed).
    standardize : bool, default=False
        If True, each signal is divided by its standard deviation (``ddof=0``)
        first, giving correlation matrices.

    Returns
    -------
    emp_covs : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Maximum-likelihood covariances (divided by ``n_samples_k``), symmetrised.
    n_samples : numpy.ndarray of float64, shape (n_subjects,)
        Number of samples of each subject.

    Raises
    ------
    ValueError
        See :func:`group_sparse_covariance` for the input checks.
    """
    arrays = _check_subjects(subjects, min_samples=1 if assume_centered else 2)
    covs = _covariances_of(arrays, assume_centered, standardize)
    n_samples = np.array([x.shape[0] for x in arrays], dtype=np.float64)
    return covs, n_samples


def compute_alpha_max(
    emp_covs: np.ndarray, n_samples: np.ndarray
) -> tuple[float, float]:
    """Smallest ``alpha`` giving fully sparse precisions, and the fully dense one.

    At the diagonal starting point, the gradient of the smooth part at entry
    ``(i, j)`` is ``w_k S_k[i, j]``; the group soft-threshold keeps every
    off-diagonal entry at zero as long as ``alpha`` is at least the largest group
    norm ``||w S[i, j, :]||_2``.

    Parameters
    ----------
    emp_covs : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Empirical covariances.
    n_samples : array-like, shape (n_subjects,)
        Number of samples of each subject (normalised here to sum to 1).

    Returns
    -------
    alpha_max : float
        Largest off-diagonal group norm: for ``alpha >= alpha_max`` every
        off-diagonal precision entry is zero.
    alpha_min : float
        Smallest non-zero off-diagonal group norm: below it no entry is thresholded
        at the diagonal starting point.
    """
    emp_covs = np.asarray(emp_covs, dtype=np.float64)
    weights = np.asarray(n_samples, dtype=np.float64)
    weights = weights / weights.sum()
    weighted = emp_covs * weights
    norms = np.sqrt((weighted**2).sum(axis=-1))
    np.fill_diagonal(norms, 0)
    return float(norms.max()), float(norms[norms > 0].min())


def _logdet(matrices: np.ndarray) -> np.ndarray:
    """log det of a stack of matrices (..., n, n); -inf where not positive."""
    sign, logdet = np.linalg.slogdet(matrices)
    return np.where(sign > 0, logdet, -np.inf)


def _log_likelihood(
    precisions: np.ndarray,
    weights: np.ndarray,
    covs: np.ndarray,
    logdets: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted log-likelihood of batched problems.

    precisions, covs: (n, n, B, K); weights: (B, K); logdets: (B, K), the log
    determinants of the precisions if known. Returns shape (B,).
    """
    if logdets is None:
        logdets = _logdet(np.moveaxis(precisions, (0, 1), (2, 3)))
    per_subject = logdets - np.einsum("ijbk,ijbk->bk", covs, precisions)
    return (weights * per_subject).sum(axis=-1)


def group_sparse_scores(
    precisions: np.ndarray,
    n_samples: np.ndarray,
    emp_covs: np.ndarray,
    alpha: float,
    duality_gap: bool = False,
    debug: bool = False,
) -> tuple[float, ...]:
    """Log-likelihood, objective (and duality gap) of group-sparse precisions.

    Parameters
    ----------
    precisions : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Precision matrices.
    n_samples : array-like, shape (n_subjects,)
        Weight of each subject (used as given: pass weights summing to 1 to get the
        objective minimised by :func:`group_sparse_covariance`).
    emp_covs : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Empirical covariances.
    alpha : float
        Regularisation parameter.
    duality_gap : bool, default=False
        If True, also return an upper bound on the distance to the optimal
        objective (zero at the optimum), from the dual point obtained by projecting
        ``w_k (K_k^-1 - S_k)`` on the feasible set of the dual problem.
    debug : bool, default=False
        Unused; kept for compatibility with nilearn's signature.

    Returns
    -------
    log_lik : float
        ``sum_k w_k (log det K_k - tr(S_k K_k))`` (-inf if a K_k is not positive
        definite).
    objective : float
        ``alpha * sum_{i != j} ||K[i, j, :]|| - log_lik``.
    gap : float
        Only if ``duality_gap``: primal minus dual objective (``inf`` when the
        projected dual point is not feasible).
    """
    del debug
    precisions = np.asarray(precisions, dtype=np.float64)
    emp_covs = np.asarray(emp_covs, dtype=np.float64)
    weights = np.asarray(n_samples, dtype=np.float64)
    log_lik = float(
        _log_likelihood(
            precisions[:, :, None, :], weights[None, :], emp_covs[:, :, None]
        )[0]
    )
    norms = np.sqrt((precisions**2).sum(axis=-1))
    penalty = norms.sum() - np.trace(norms)
    objective = float(alpha * penalty - log_lik)
    if not duality_gap:
        return log_lik, objective
    n_regions = precisions.shape[0]
    subjects_first = np.moveaxis(precisions, -1, 0)
    dual = weights[:, None, None] * (
        np.linalg.inv(subjects_first) - np.moveaxis(emp_covs, -1, 0)
    )
    group = np.sqrt((dual**2).sum(axis=0))
    scale = np.where(group > alpha, alpha / np.where(group > 0, group, 1), 1.0)
    dual = dual * scale
    diagonal = np.arange(n_regions)
    dual[:, diagonal, diagonal] = 0
    inner = np.moveaxis(emp_covs, -1, 0) + dual / weights[:, None, None]
    dual_objective = float((weights * (n_regions + _logdet(inner))).sum())
    gap = objective - dual_objective if np.isfinite(dual_objective) else np.inf
    return log_lik, objective, float(gap)


# --------------------------------------------------------------------------------
# Solver (batched over independent problems and subjects)
# --------------------------------------------------------------------------------
#
# Internal layout: matrices are stored as (n, n, B, K): the two matrix axes first,
# then B independent problems (cross-validation folds), then K subjects. Indexing a
# row (``M[j]``) gives a contiguous (n, B, K) block, which is what the inner loop
# reads and writes. The exception is the running inverse inside a sweep, stored as
# a (B, K, n, n) stack so that its low-rank updates are batched matrix products.


def _to_stack(matrices: np.ndarray) -> np.ndarray:
    """(n, n, B, K) -> (B, K, n, n) contiguous, for numpy.linalg."""
    return np.ascontiguousarray(np.moveaxis(matrices, (0, 1), (2, 3)))


if hasattr(np, "vecdot"):
    _rowdot = np.vecdot
else:  # numpy < 2

    def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Dot products of the last axes: ``(a * b).sum(axis=-1)``."""
        return np.einsum("...k,...k->...", a, b)


class _Workspace:
    """Preallocated (B, K) buffers of the coordinate visits of one sweep.

    ``z`` stacks the linear coefficients ``c`` of the visited coordinate, ``c q``
    and ``c q^2`` (``z2`` is its first two); ``u`` stacks the Newton iterate's
    ``c / d`` and ``c q / d^2`` with ``d = 1 / gamma + q``; ``g`` holds one scalar
    per problem as a column, broadcast over subjects.
    """

    __slots__ = (
        "c",
        "cq",
        "cq2",
        "d",
        "g",
        "g_column",
        "u",
        "u_ratio",
        "u_x",
        "z",
        "z2",
    )

    def __init__(self, n_problems: int, n_subjects: int) -> None:
        shape = (n_problems, n_subjects)
        self.z = np.empty((3, *shape))
        self.c, self.cq, self.cq2 = self.z
        self.z2 = self.z[:2]
        self.u = np.empty((2, *shape))
        self.u_x, self.u_ratio = self.u
        self.d = np.empty(shape)
        self.g = np.empty((n_problems, 1))
        self.g_column = self.g[:, 0]


def _threshold(
    q: np.ndarray,
    norms2: list[float],
    c2q: list[float],
    c2q2: list[float],
    alpha: float,
    work: _Workspace,
    out: np.ndarray,
) -> None:
    """Solve ``min_x sum_k (q_k x_k^2 / 2 - c_k x_k) + alpha ||x||`` row by row.

    For each row with ``||c|| > alpha`` the minimiser is
    ``x = gamma c / (1 + gamma q)`` where ``gamma > 0`` solves the secular equation
    ``||c / (1 + gamma q)|| = alpha`` (the other rows are zero). Newton's method is
    run on ``phi(gamma) = 1 / ||c / (1 + gamma q)||``, which is concave and
    increasing (Moré & Sorensen 1983), so the iterates converge quadratically and,
    once left of the root, monotonically. The start is the root of the secular
    equation with ``1 / (1 + gamma q)^2`` expanded to second order around the
    ``c^2``-weighted mean ``m`` of ``q`` (``v`` the weighted variance):
    ``gamma_0 = g + 1.5 g^2 v / (m ||c|| / alpha)`` with ``g = (||c|| / alpha - 1)
    / m`` the root for equal ``q_k``. It is above the lower bound
    ``(||c|| / alpha - 1) / max(q)`` of the root, and close enough that one
    Newton step nearly always meets the stopping test (measured: 99.7 % of the
    calls); later iterates are kept above that bound. When ``||c||`` exceeds
    ``alpha`` by a relative ``_SMALL_EXCESS`` or less, ``||c|| / alpha - 1`` is
    mostly rounding noise (it may even round to 0), so the root is taken from its
    second-order expansion instead (see :func:`_small_root`), with no Newton step.

    The sums over subjects are numpy calls on all rows at once (each iteration
    is three elementwise calls and one batched dot product into preallocated
    buffers); the per-row scalars (start, Newton step, stopping test) are Python
    floats, which costs less than numpy calls on arrays of a few elements. Each
    row stops on its own (a row whose step is small is frozen while the others
    go on), so a row's result does not depend on the other rows: batching
    problems together gives the same bits as solving them one by one.

    Parameters
    ----------
    q : numpy.ndarray, shape (m, K)
        Quadratic coefficients (positive).
    norms2, c2q, c2q2 : list of float, length m
        ``||c||^2``, ``sum_k c_k^2 q_k`` and ``sum_k c_k^2 q_k^2`` of each row.
    alpha : float
        Threshold.
    work : _Workspace
        Buffers; ``work.c`` and ``work.cq`` hold the linear coefficients ``c``
        and ``c * q`` on entry (unchanged on exit).
    out : numpy.ndarray, shape (m, K)
        Receives the minimiser.
    """
    inv_alpha = 1.0 / alpha
    alpha2 = alpha * alpha
    rtol = _NEWTON_RTOL
    sqrt = math.sqrt
    inf = math.inf
    n_rows = len(norms2)
    gamma = [0.0] * n_rows
    lam = [inf] * n_rows  # 1 / gamma
    active = []  # rows still iterating
    n_nonzero = 0
    for i, norm2 in enumerate(norms2):
        if norm2 > alpha2:  # other rows stay at zero (c may be 0 there)
            root = sqrt(norm2) * inv_alpha
            if root - 1.0 > _SMALL_EXCESS:
                mean = c2q[i] / norm2
                spread = c2q2[i] / norm2 - mean * mean
                value = (root - 1.0) / mean
                value += 1.5 * value * value * spread / (root * mean)
                active.append(i)
            else:  # rounding-level excess: closed form, no Newton
                value = _small_root(work.c[i].tolist(), c2q[i], c2q2[i], alpha)
                if value <= 0.0:
                    continue
            gamma[i] = value
            lam[i] = 1.0 / value
            n_nonzero += 1
    all_on = n_nonzero == n_rows
    lower = None
    d = work.d
    g = work.g
    g_column = work.g_column
    z = work.z2
    u = work.u
    u_x = work.u_x
    u_ratio = work.u_ratio
    divide = np.divide
    add = np.add
    rowdot = _rowdot
    for _ in range(_NEWTON_MAX_ITER):
        # with d = 1 / gamma + q: c / (1 + gamma q) = c / (gamma d)
        g_column[:] = lam
        add(q, g, d)
        divide(z, d, u)  # c / d, and c q / d
        divide(u_ratio, d, u_ratio)  # c q / d^2
        # s = ||c / (1 + gamma q)||^2 = lam^2 sum (c / d)^2 and
        # ds = sum c^2 q / (1 + gamma q)^3 = lam^3 sum c^2 q / d^3 = -1/2 ds/dgamma
        s, ds = rowdot(u_x, u).tolist()
        moving = []
        for i in active:
            s_i = s[i]
            lam_i = lam[i]
            step = (lam_i * sqrt(s_i) * inv_alpha - 1.0) * s_i / (lam_i * ds[i])
            value = gamma[i] + step
            if abs(step) - rtol * value > 0.0:
                moving.append(i)
                if lower is None:
                    lower = np.maximum.reduce(q, axis=-1).tolist()
                # lower bound of the root: (||c|| / alpha - 1) / max(q)
                value = max(value, (sqrt(norms2[i]) * inv_alpha - 1.0) / lower[i])
            gamma[i] = value
            lam[i] = 1.0 / value
        if not moving:
            break
        active = moving
    # x = gamma c / (1 + gamma q) = c / (1 / gamma + q); rows at zero: c / inf
    g_column[:] = lam
    add(q, g, d)
    divide(work.c, d, out)
    if not all_on:
        add(out, 0.0, out)  # -0.0 -> 0.0 in the rows left at zero


def _small_root(c: list[float], c2q: float, c2q2: float, alpha: float) -> float:
    """Root of the secular equation when ``||c||`` exceeds ``alpha`` by a hair.

    With ``E = 1 - alpha^2 / ||c||^2`` and ``m``, ``m2`` the ``c^2``-weighted means
    of ``q`` and ``q^2``, ``||c / (1 + gamma q)||^2 = alpha^2`` expands to ``2 m
    gamma - 3 m2 gamma^2 + O(gamma^3) = E``, whose root is ``g + 1.5 m2 g^2 / m``
    with ``g = E / (2 m)``, to a relative error of order ``E^2``. ``||c||^2 -
    alpha^2`` is taken exactly (rational arithmetic on the floats given): in
    floating point it would be a few rounding errors, or nothing. Returns 0 when
    ``||c|| <= alpha`` exactly (the minimiser is then zero).
    """
    norm2 = sum(Fraction(value) ** 2 for value in c)
    excess = norm2 - Fraction(alpha) ** 2
    if excess <= 0:
        return 0.0
    norm2_float = float(norm2)
    mean = c2q / norm2_float
    g = float(excess / norm2) / (2.0 * mean)
    return g + 1.5 * (c2q2 / norm2_float) * g * g / mean


def _weighted_rows(covs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rows of the weighted covariances: (n, n, B, K) -> (n, B, K, n) ``w S``."""
    return np.ascontiguousarray((covs * weights).transpose(0, 2, 3, 1))


def _sweep(
    omega: np.ndarray,
    sigma: np.ndarray,
    weighted_covs: np.ndarray,
    diag_covs: np.ndarray,
    weights: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """One sweep of block coordinate descent over all columns, in place.

    Parameters
    ----------
    omega : numpy.ndarray, shape (n, n, B, K)
        Precisions, updated in place.
    sigma : numpy.ndarray, shape (B, K, n, n)
        Their inverses on entry (matrix axes last); kept equal to ``inv(omega)``
        in place.
    weighted_covs : numpy.ndarray, shape (n, B, K, n)
        Rows of the weighted empirical covariances ``w S`` (see
        :func:`_weighted_rows`); row ``p`` is ``w S[:, p]`` (S is symmetric).
    diag_covs : numpy.ndarray, shape (n, B, K)
        Diagonals of the empirical covariances.
    weights : numpy.ndarray, shape (B, K)
        Subjects' weights (each problem's sum to 1).
    alpha : float
        Regularisation parameter.

    Returns
    -------
    numpy.ndarray, shape (B, K)
        ``log det`` of the precisions after the sweep minus before it.

    Notes
    -----
    For column ``p``, with ``W`` the precision without row/column ``p``, ``y`` its
    off-diagonal column and ``s = S[p, p]``, the objective restricted to ``y`` (the
    diagonal entry being optimal, ``K[p, p] = 1 / s + y' W^-1 y``) is, per subject,
    ``w (s y' W^-1 y + 2 S[-p, p]' y)`` plus the group penalty. Coordinate ``j`` of
    ``y`` then solves a group soft-threshold with ``q = w s W^-1[j, j]`` and
    ``c = -w (s (W^-1 y)_j - s W^-1[j, j] y_j + S[j, p])``. At the start of the
    column ``W^-1 y = -K^-1[:, p] / K^-1[p, p]`` (from ``K^-1 K = I``), and
    ``rc = c(y) - q y + q y_start`` (``y_start`` the column on entry) is kept up
    to date for all coordinates by a rank-one update after each change: as each
    coordinate is visited once per column, ``rc[j]`` is the ``c`` of coordinate
    ``j`` when it is visited (the rank-one update's own term at ``j`` cancels the
    change of ``q y``). Runs of coordinates that are zero and stay zero
    (``||c|| <= alpha``) are skipped in one vectorised test. ``W^-1`` is held in
    ``sigma`` with a zero row and column ``p`` (so ``rc[p]`` stays zero and
    coordinate ``p`` is never visited). After column ``p`` the inverse is
    ``W^-1 + s v v'`` with ``v = W^-1 y - e_p`` (the block-inverse formula; the
    Schur complement is exactly ``1 / s``), and ``W^-1 y`` is read off ``rc``.
    That rank-one update and the downdate by column ``p + 1`` giving the next
    ``W^-1`` are applied together, as one batched rank-two matrix product. By the
    same formula the update of column ``p`` multiplies ``det K`` by
    ``K^-1[p, p] / s`` (the old and the new Schur complements), which gives the
    change of ``log det K`` over the sweep for free.
    """
    n = omega.shape[0]
    n_problems, n_subjects = weights.shape
    alpha = float(alpha)
    alpha2 = alpha * alpha
    left = np.zeros((*sigma.shape[:-1], 2))  # factors of the rank-two updates
    right = np.zeros((*sigma.shape[:-2], 2, n))
    # Full-size temporaries are costly to allocate (page faults): reuse one.
    buffer = np.empty_like(sigma)
    # per-visit buffers
    work = _Workspace(n_problems, n_subjects)
    c = work.c
    z = work.z
    z2 = work.z2
    u = work.u
    u_x = work.u_x
    u_ratio = work.u_ratio
    d = work.d
    g = work.g
    g_column = work.g_column
    inv_alpha = 1.0 / alpha
    rtol = _NEWTON_RTOL
    small_excess = _SMALL_EXCESS
    sqrt = math.sqrt
    inf = math.inf
    problems = range(n_problems)
    new = np.empty((n_problems, n_subjects))
    change = np.empty((n_problems, n_subjects, 1))
    change_column = change[..., 0]
    product = np.empty((n_problems, n_subjects, n))
    multiply = np.multiply
    subtract = np.subtract
    add = np.add
    divide = np.divide
    maximum = np.maximum.reduce
    vecdot = _rowdot
    pivots = np.empty((n, n_problems, n_subjects))  # K^-1[p, p] before column p
    sigma_rows = [sigma[..., i, :] for i in range(n)]  # views, follow updates
    sigma_diagonal = np.diagonal(sigma, axis1=2, axis2=3).transpose(2, 0, 1)  # view
    # 1, q and q^2 of each coordinate: c times them gives the visit's z at once
    q_powers = np.empty((n, 3, n_problems, n_subjects))
    q_powers[:, 0] = 1.0
    q = q_powers[:, 1]
    q2 = q_powers[:, 2]
    # the rank-two update is left @ right = s v v' + w_inv_y col', where s v v'
    # is the previous column's update and w_inv_y col' the downdate by this one
    s_v = left[..., 0]  # (B, K, n) views
    w_inv_y = left[..., 1]
    v = right[..., 0, :]
    col_row = right[..., 1, :]
    neg_scales = weights * diag_covs  # (n, B, K): -scale of each column
    scales = -neg_scales
    scale_columns = scales[..., None]
    inv_diag_covs = 1.0 / diag_covs
    for p in range(n):
        # col = inv[:, p], inv the current inverse (after the previous column's
        # rank-one update); sigma <- W^-1 = inv - col col' / col[p]; and as
        # inv K[:, p] = e_p, W^-1 y = -col / col[p] off p.
        # (for p = 0, s v v' is zero: s_v and v start at zero)
        col = s_v * v[..., p, None]
        col += sigma_rows[p]
        np.divide(col, -col[..., p, None], out=w_inv_y)
        col_row[...] = col
        np.matmul(left, right, out=buffer)
        sigma += buffer
        sigma[..., p, :] = 0.0
        sigma[..., :, p] = 0.0
        pivots[p] = col[..., p]
        s_pp = diag_covs[p]  # (B, K)
        scale = scales[p]
        neg_scale = neg_scales[p]
        # per-coordinate arrays read one coordinate at a time are (n, B, K)
        np.multiply(sigma_diagonal, neg_scale, out=q)  # q = w s W^-1[j, j] (0 at p)
        np.multiply(q, q, out=q2)
        y_start = omega[:, p]  # (n, B, K), not written before the column's end
        y = y_start.copy()
        y[p] = 0
        qy = q * y  # (n, B, K)
        qy_rows = qy.transpose(1, 2, 0)
        rc = w_inv_y * scale_columns[p]  # (B, K, n)
        weighted_cov = weighted_covs[p]
        rc -= weighted_cov
        # rc + q y_start: c of every coordinate not yet visited in this column
        rc += qy_rows
        rc[..., p] = 0
        rc_rows = rc.transpose(2, 0, 1)  # (n, B, K) view, follows updates of rc
        nonzero = y.reshape(n, -1).any(axis=1).nonzero()[0].tolist()
        nonzero.append(n)
        j = 0
        k = 0
        while j < n:
            stop = nonzero[k]
            if j < stop:
                # run of zero coordinates j .. stop - 1: find the first to leave 0
                run = rc_rows[j:stop]
                norms = vecdot(run, run)  # (stop - j, B)
                if maximum(norms, axis=None) <= alpha2:
                    j = stop
                    continue
                j += int((norms > alpha2).argmax()) // n_problems
                entering = True
            else:
                k += 1
                entering = False
            multiply(rc_rows[j], q_powers[j], out=z)  # c, c q, c q^2
            norms2, c2q, c2q2 = vecdot(c, z).tolist()
            y_j = y[j]
            if max(norms2) > alpha2:
                q_j = q[j]
                # _threshold inlined for its common case, with the same arithmetic
                # (so the same bits): every row's Newton iteration stops after one
                # step; otherwise _threshold solves the visit from the start
                gamma = [0.0] * n_problems
                lam = [inf] * n_problems
                one_step = True
                for i in problems:
                    norm2 = norms2[i]
                    if norm2 > alpha2:
                        root = sqrt(norm2) * inv_alpha
                        if root - 1.0 <= small_excess:
                            one_step = False
                            break
                        mean = c2q[i] / norm2
                        spread = c2q2[i] / norm2 - mean * mean
                        value = (root - 1.0) / mean
                        value += 1.5 * value * value * spread / (root * mean)
                        gamma[i] = value
                        lam[i] = 1.0 / value
                if one_step:
                    g_column[:] = lam
                    add(q_j, g, d)
                    divide(z2, d, u)  # c / d, and c q / d
                    divide(u_ratio, d, u_ratio)  # c q / d^2
                    s, ds = vecdot(u_x, u).tolist()
                    for i in problems:
                        lam_i = lam[i]
                        if lam_i != inf:
                            s_i = s[i]
                            step = (lam_i * sqrt(s_i) * inv_alpha - 1.0) * s_i
                            step /= lam_i * ds[i]
                            value = gamma[i] + step
                            if abs(step) - rtol * value > 0.0:
                                one_step = False
                                break
                            lam[i] = 1.0 / value
                if one_step:
                    g_column[:] = lam
                    add(q_j, g, d)
                    divide(c, d, new)  # -0.0 in rows left at zero: see below
                else:
                    _threshold(q_j, norms2, c2q, c2q2, alpha, work, new)
                subtract(new, y_j, change_column)
                multiply(change_column, scale, change_column)
                y_j[...] = new
            elif entering:
                j += 1
                continue
            else:
                multiply(y_j, neg_scale, change_column)
                y_j.fill(0.0)
            multiply(sigma_rows[j], change, product)
            rc += product
            j += 1
        # r = W^-1 y, read off rc = scale W^-1 y - w S[:, p] + q y_start (at the
        # coordinates visited, the rank-one updates cancel the change of q y)
        rc -= qy_rows
        rc += weighted_cov
        # inverse = [[W^-1 + s r r', -s r], [-s r', s]] = W^-1 + s v v' with
        # r = W^-1 y and v = r - e_p
        np.divide(rc, scale_columns[p], out=v)
        v[..., p] = -1.0  # (y[p] = 0 below)
        add(y, 0.0, out=y)  # -0.0 -> 0.0 in the rows left at zero
        omega[:, p] = y
        omega[p, :] = y
        omega[p, p] = inv_diag_covs[p] + vecdot(y.transpose(1, 2, 0), v)
        np.multiply(v, s_pp[..., None], out=s_v)
    w_inv_y.fill(0.0)
    col_row.fill(0.0)
    np.matmul(left, right, out=buffer)
    sigma += buffer
    pivots /= diag_covs
    return np.log(pivots).sum(axis=0)


# --------------------------------------------------------------------------------
# Hundreds of regions: screening and the large-block sweep
# --------------------------------------------------------------------------------
#
# Both change only how a sweep's arithmetic is organised, not which iterate it
# computes (see :func:`_screened_sweep` and :func:`_sweep_large`), so the stopping
# rule, the early stopping of cross-validation and hence the choice of alpha are
# those of the coordinate path. Results differ from it by rounding only (sums in
# another order), which is why problems with fewer than ``_LARGE_REGIONS``
# regions (the default atlas has 39) keep :func:`_sweep` itself, bit for bit.

#: Problems with at least this many regions are screened into independent blocks,
#: and blocks with at least this many regions are swept by :func:`_sweep_large`.
_LARGE_REGIONS = 64
#: Width of the chunks of coordinates whose rank-one updates are batched.
_CHUNK = 16
#: Columns whose low-rank updates of the inverses are added up before applying.
_LAZY_COLUMNS = 8


def _components(weighted_norms: np.ndarray, alpha: float) -> list[np.ndarray]:
    """Connected components of the graph ``||w S[i, j, :]||_2 > alpha``.

    ``weighted_norms`` (n, n) holds the group norms of the off-diagonal weighted
    covariances (for batched problems, their largest over the problems). Returns
    the components as sorted index arrays, ordered by their smallest index.
    """
    graph = weighted_norms > alpha
    np.fill_diagonal(graph, False)
    _, labels = connected_components(sparse.csr_matrix(graph), directed=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    blocks = np.split(order, bounds)
    blocks.sort(key=lambda block: int(block[0]))
    return blocks


def _weighted_norms(covs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Largest over problems of ``||w S[i, j, :]||_2``: (n, n, B, K) -> (n, n)."""
    return np.sqrt(((covs * weights) ** 2).sum(axis=-1)).max(axis=-1)


def _block_diagonal(matrices: np.ndarray, blocks: list[np.ndarray]) -> bool:
    """True if ``matrices`` (n, n, ...) are zero outside the diagonal blocks."""
    labels = np.empty(matrices.shape[0], dtype=int)
    for index, block in enumerate(blocks):
        labels[block] = index
    across = labels[:, None] != labels[None, :]
    return not matrices[across].any()


def _screened_sweep(
    omega: np.ndarray,
    sigma: np.ndarray,
    weighted_covs: np.ndarray,
    diag_covs: np.ndarray,
    weights: np.ndarray,
    alpha: float,
    blocks: list[np.ndarray],
) -> np.ndarray:
    """One sweep of :func:`_sweep`, block by block, for block-diagonal iterates.

    Exactness (KKT): the smooth part's gradient at entry ``(i, j)`` is ``w_k
    (S_k - K_k^-1)[i, j]`` and the group soft-threshold leaves ``K[i, j, :]`` at
    zero when its norm is at most ``alpha``. If the precisions (hence their
    inverses) are block diagonal on a partition of the regions such that
    ``||w S[i, j, :]||_2 <= alpha`` for every pair ``(i, j)`` in different blocks,
    that gradient is ``w S[i, j, :]`` across blocks: every coordinate visit of a
    sweep leaves those entries at zero, and a column's visits inside its block
    read only that block's entries. So a sweep of the whole matrix is the sweeps
    of the blocks (in any order: they share no entry). At the optimum, the
    subgradient condition for ``K[i, j, :] = 0`` is ``||w (S - K^-1)[i, j, :]||_2
    <= alpha`` (the pair ``(i, j), (j, i)`` counted once on both sides), which
    for a block-diagonal ``K`` reads ``||w S[i, j, :]||_2 <= alpha``: the block
    solutions put together satisfy it, so (the objective being strictly convex)
    they are the optimum; and conversely, no optimum is block diagonal on a
    partition with a pair above ``alpha`` across it (Danaher, Wang & Witten 2014;
    Witten, Friedman & Simon 2011 for one subject). A block of one region has
    ``K[i, i] = 1 / S[i, i]``. ``blocks`` are the components of
    :func:`_components` (the caller checks that the iterate is block diagonal).

    Arguments and return value as :func:`_sweep`.
    """
    change = np.zeros(weights.shape)
    for block in blocks:
        if block.size == 1:
            i = int(block[0])
            change -= np.log(omega[i, i] * diag_covs[i])
            omega[i, i] = 1.0 / diag_covs[i]
            sigma[..., i, i] = diag_covs[i]
            continue
        if block.size == omega.shape[0]:
            sub_omega, sub_sigma = omega, sigma
            sub_covs, sub_diag = weighted_covs, diag_covs
        else:
            mesh = np.ix_(block, block)
            sub_omega = np.ascontiguousarray(omega[mesh])
            sub_sigma = np.ascontiguousarray(sigma[..., block[:, None], block])
            sub_covs = np.ascontiguousarray(weighted_covs[block][..., block])
            sub_diag = np.ascontiguousarray(diag_covs[block])
        sweep = _sweep_large if block.size >= _LARGE_REGIONS else _sweep
        change += sweep(sub_omega, sub_sigma, sub_covs, sub_diag, weights, alpha)
        if sub_omega is not omega:
            omega[mesh] = sub_omega
            sigma[..., block[:, None], block] = sub_sigma
    return change


def _add_products(
    sigma_t: list[np.ndarray], left_t: list[np.ndarray], right_t: list[np.ndarray]
) -> None:
    """``sigma += left @ right`` for each matrix, in place, by BLAS ``dgemm``.

    The lists hold the transposes (Fortran-ordered views) of each problem's and
    subject's ``sigma``, ``left`` (n, r) and ``right`` (r, n), so each product is
    one call that reads and writes each entry of ``sigma`` once (numpy would
    write the product to a buffer first).
    """
    gemm = _dgemm
    for target, a, b in zip(sigma_t, right_t, left_t, strict=True):
        gemm(1.0, a, b, beta=1.0, c=target, overwrite_c=True, trans_b=1)


def _sweep_large(
    omega: np.ndarray,
    sigma: np.ndarray,
    weighted_covs: np.ndarray,
    diag_covs: np.ndarray,
    weights: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """:func:`_sweep` with its memory traffic cut, for hundreds of regions.

    The same visits in the same order, with the same arithmetic for each visit
    (so the same iterate, up to rounding in the low-rank updates). At hundreds of
    regions :func:`_sweep`'s time goes to streaming the (B, K, n, n) inverses
    through memory: four times per column for its rank-two update, twice per
    changed coordinate for the rank-one update of the linear coefficients
    ``rc``. Here:

    - the low-rank updates of the inverses (a downdate before each column, an
      update after it) are kept as factors ``left @ right`` of rank up to
      ``2 * _LAZY_COLUMNS`` and added to ``sigma`` by one BLAS ``dgemm`` per
      matrix every ``_LAZY_COLUMNS`` columns (compute-bound instead of
      memory-bound); what a column reads of the current inverse (its row ``p``,
      the blocks of rows below) is ``sigma`` plus the pending factors' product,
      and the diagonal (for ``q``) is updated in O(n) per term;
    - the rank-one updates of ``rc`` after each changed coordinate are applied at
      once only inside the current chunk of ``_CHUNK`` coordinates (the only ones
      visited before the chunk ends), from the chunk's diagonal block of the
      inverse, computed once; the other coordinates get them as one product of
      the chunk's changes with the chunk's rows of the inverse when the chunk
      ends (each row read once per column).

    Arguments and return value as :func:`_sweep`.
    """
    n = omega.shape[0]
    n_problems, n_subjects = weights.shape
    alpha = float(alpha)
    alpha2 = alpha * alpha
    width = 2 * _LAZY_COLUMNS
    # the current inverse is sigma + left[..., :terms, :]^T @ right[..., :terms, :]
    left = np.zeros((n_problems, n_subjects, width, n))
    right = np.zeros((n_problems, n_subjects, width, n))
    terms = 0
    matrices = [(b, k) for b in range(n_problems) for k in range(n_subjects)]
    sigma_t = [sigma[b, k].T for b, k in matrices]
    left_t = [left[b, k].T for b, k in matrices]  # (n, r): op(b) = b^T
    right_t = [right[b, k].T for b, k in matrices]
    diagonal = np.diagonal(sigma, axis1=2, axis2=3).copy()  # of the current inverse
    work = _Workspace(n_problems, n_subjects)
    c = work.c
    z = work.z
    z2 = work.z2
    u = work.u
    u_x = work.u_x
    u_ratio = work.u_ratio
    d = work.d
    g = work.g
    g_column = work.g_column
    inv_alpha = 1.0 / alpha
    rtol = _NEWTON_RTOL
    small_excess = _SMALL_EXCESS
    sqrt = math.sqrt
    inf = math.inf
    problems = range(n_problems)
    new = np.empty((n_problems, n_subjects))
    change = np.empty((n_problems, n_subjects, 1))
    change_column = change[..., 0]
    chunk_changes = np.zeros((n_problems, n_subjects, 1, _CHUNK))
    n_chunks = -(-n // _CHUNK)
    chunk_coefs = np.zeros((n_problems, n_subjects, n_chunks + 1, width))
    panel = np.empty((n_problems, n_subjects, 1, n))
    panel_row = panel[..., 0, :]
    multiply = np.multiply
    subtract = np.subtract
    add = np.add
    divide = np.divide
    matmul = np.matmul
    vecdot = _rowdot
    maximum = np.maximum.reduce
    pivots = np.empty((n, n_problems, n_subjects))
    q_powers = np.empty((n, 3, n_problems, n_subjects))
    q_powers[:, 0] = 1.0
    q = q_powers[:, 1]
    q2 = q_powers[:, 2]
    neg_scales = weights * diag_covs
    scales = -neg_scales
    scale_columns = scales[..., None]
    inv_diag_covs = 1.0 / diag_covs
    for p in range(n):
        # row p of the current inverse; W^-1 = inverse - col col' / col[p]
        col = sigma[..., p, :].copy()
        if terms:
            col += matmul(left[..., None, :terms, p], right[..., :terms, :])[..., 0, :]
        pivot = col[..., p].copy()
        w_inv_y = left[..., terms, :]
        np.divide(col, -pivot[..., None], out=w_inv_y)
        right[..., terms, :] = col
        terms += 1
        pivots[p] = pivot
        w_diagonal = diagonal + w_inv_y * col
        w_diagonal[..., p] = 0.0
        scale = scales[p]
        neg_scale = neg_scales[p]
        np.multiply(w_diagonal.transpose(2, 0, 1), neg_scale, out=q)
        np.multiply(q, q, out=q2)
        y = omega[:, p].copy()
        y[p] = 0
        qy_rows = (q * y).transpose(1, 2, 0)
        rc = w_inv_y * scale_columns[p]
        weighted_cov = weighted_covs[p]
        rc -= weighted_cov
        rc += qy_rows
        rc[..., p] = 0
        rc_rows = rc.transpose(2, 0, 1)
        nonzero = y.reshape(n, -1).any(axis=1).nonzero()[0].tolist()
        nonzero.append(n)
        j = 0
        k = 0
        start = 0  # current chunk: start .. end - 1
        end = min(_CHUNK, n)
        block = None  # its diagonal block of W^-1, once a coordinate changes
        changed: list[int] = []  # the chunk's changed coordinates (from start)
        # The pending factors' share of the chunks' updates, sum_j change_j
        # left[:, j]' right, is deferred: ``coef`` adds up change_j left[j] over the
        # chunks done, and each chunk gets ``coef @ right`` on its own coordinates
        # when it starts; the rest reaches every coordinate at the column's end.
        coef = chunk_coefs[..., 0, :terms]  # (B, K, terms) view
        coef.fill(0.0)
        chunk = 0
        while True:
            if j >= end:
                if len(changed) == 1:
                    # one change: to all coordinates outside the chunk
                    index = start + changed[0]
                    single = chunk_changes[..., 0, changed[0], None]  # (B, K, 1)
                    multiply(sigma[..., index, :], single, panel_row)
                    panel_row[..., start:end] = 0.0  # applied at the visit
                    panel_row[..., p] = 0.0
                    rc += panel_row
                    coef += left[..., :terms, index] * single
                    chunk_changes.fill(0.0)
                    changed.clear()
                elif changed:
                    # the chunk's changes, to all coordinates outside the chunk
                    # (reading only the rows that changed when they are few)
                    if 4 * len(changed) <= end - start:
                        rows = [start + index for index in changed]
                        changes = chunk_changes[..., changed]
                        lefts = left[..., :terms, rows].swapaxes(-1, -2)
                        rows = sigma[..., rows, :]
                    else:
                        changes = chunk_changes[..., : end - start]
                        lefts = left[..., :terms, start:end].swapaxes(-1, -2)
                        rows = sigma[..., start:end, :]
                    matmul(changes, rows, out=panel)
                    panel_row[..., start:end] = 0.0  # applied at each visit
                    panel_row[..., p] = 0.0
                    rc += panel_row
                    if terms:
                        coef += matmul(changes, lefts)[..., 0, :]
                    chunk_changes.fill(0.0)
                    changed.clear()
                    block = None
                # what chunk ``chunk`` has had of the deferred share
                chunk_coefs[..., chunk + 1, :terms] = coef
                if end == n:
                    break
                chunk += 1
                start, end = end, min(end + _CHUNK, n)
                if terms and coef.any():
                    rc[..., start:end] += matmul(
                        coef[..., None, :], right[..., :terms, start:end]
                    )[..., 0, :]
                    if start <= p < end:
                        rc[..., p] = 0.0
            stop = min(nonzero[k], end)
            if j < stop:
                # run of zero coordinates j .. stop - 1: find the first to leave 0
                run = rc_rows[j:stop]
                norms = vecdot(run, run)
                if maximum(norms, axis=None) <= alpha2:
                    j = stop
                    continue
                j += int((norms > alpha2).argmax()) // n_problems
                entering = True
            else:
                k += 1
                entering = False
            multiply(rc_rows[j], q_powers[j], out=z)  # c, c q, c q^2
            norms2, c2q, c2q2 = vecdot(c, z).tolist()
            y_j = y[j]
            if max(norms2) > alpha2:
                q_j = q[j]
                # as in _sweep: the common case of _threshold (one Newton step
                # for every row) inlined, with the same arithmetic
                gamma = [0.0] * n_problems
                lam = [inf] * n_problems
                one_step = True
                for i in problems:
                    norm2 = norms2[i]
                    if norm2 > alpha2:
                        root = sqrt(norm2) * inv_alpha
                        if root - 1.0 <= small_excess:
                            one_step = False
                            break
                        mean = c2q[i] / norm2
                        spread = c2q2[i] / norm2 - mean * mean
                        value = (root - 1.0) / mean
                        value += 1.5 * value * value * spread / (root * mean)
                        gamma[i] = value
                        lam[i] = 1.0 / value
                if one_step:
                    g_column[:] = lam
                    add(q_j, g, d)
                    divide(z2, d, u)
                    divide(u_ratio, d, u_ratio)
                    s, ds = vecdot(u_x, u).tolist()
                    for i in problems:
                        lam_i = lam[i]
                        if lam_i != inf:
                            s_i = s[i]
                            step = (lam_i * sqrt(s_i) * inv_alpha - 1.0) * s_i
                            step /= lam_i * ds[i]
                            value = gamma[i] + step
                            if abs(step) - rtol * value > 0.0:
                                one_step = False
                                break
                            lam[i] = 1.0 / value
                if one_step:
                    g_column[:] = lam
                    add(q_j, g, d)
                    divide(c, d, new)
                else:
                    _threshold(q_j, norms2, c2q, c2q2, alpha, work, new)
                subtract(new, y_j, change_column)
                multiply(change_column, scale, change_column)
                y_j[...] = new
            elif entering:
                j += 1
                continue
            else:
                multiply(y_j, neg_scale, change_column)
                y_j.fill(0.0)
            if block is not None:
                row = block[..., j - start, :]
            elif not changed:  # the chunk's first change: its row of W^-1 only
                row = (
                    sigma[..., j, start:end]
                    + matmul(left[..., None, :terms, j], right[..., :terms, start:end])[
                        ..., 0, :
                    ]
                )
                if start <= p < end:
                    row[..., p - start] = 0.0
            else:  # more: the chunk's whole diagonal block
                block = sigma[..., start:end, start:end] + matmul(
                    left[..., :terms, start:end].swapaxes(-1, -2),
                    right[..., :terms, start:end],
                )
                if start <= p < end:
                    block[..., p - start, :] = 0.0
                    block[..., :, p - start] = 0.0
                row = block[..., j - start, :]
            rc[..., start:end] += row * change
            chunk_changes[..., 0, j - start] = change_column
            changed.append(j - start)
            j += 1
        if terms and coef.any():
            # the deferred share: chunk i has had chunk_coefs[i + 1] of it
            share = coef[..., None, :] - chunk_coefs[..., 1:, :terms]
            for index, first in enumerate(range(0, n, _CHUNK)):
                last = min(first + _CHUNK, n)
                rc[..., first:last] += matmul(
                    share[..., index : index + 1, :], right[..., :terms, first:last]
                )[..., 0, :]
            rc[..., p] = 0.0
        # r = W^-1 y read off rc (as in _sweep); new inverse = W^-1 + s v v'
        rc -= qy_rows
        rc += weighted_cov
        v = right[..., terms, :]
        np.divide(rc, scale_columns[p], out=v)
        v[..., p] = -1.0
        add(y, 0.0, out=y)  # -0.0 -> 0.0 in the rows left at zero
        omega[:, p] = y
        omega[p, :] = y
        omega[p, p] = inv_diag_covs[p] + vecdot(y.transpose(1, 2, 0), v)
        s_v = left[..., terms, :]
        np.multiply(v, diag_covs[p][..., None], out=s_v)
        terms += 1
        diagonal = w_diagonal
        diagonal += s_v * v
        if terms == width or p == n - 1:
            _add_products(sigma_t, left_t, right_t)
            left.fill(0.0)
            right.fill(0.0)
            terms = 0
            diagonal = np.diagonal(sigma, axis1=2, axis2=3).copy()
    pivots /= diag_covs
    return np.log(pivots).sum(axis=0)


@dataclass
class _Result:
    """Outcome of a batched solve."""

    precisions: np.ndarray  # (n, n, B, K)
    inverses: np.ndarray  # (B, K, n, n) their inverses
    logdets: np.ndarray  # (B, K) their log determinants
    n_iter: np.ndarray  # (B,) sweeps run
    converged: np.ndarray  # (B,) tolerance reached
    interrupted: np.ndarray  # (B,) stopped by the probe


def _solve(
    covs: np.ndarray,
    weights: np.ndarray,
    alpha: float,
    max_iter: int,
    tol: float | None,
    init: np.ndarray | None = None,
    probe: Callable[[int, np.ndarray, np.ndarray | None, np.ndarray], np.ndarray]
    | None = None,
    log_level: int = logging.DEBUG,
    debug: bool = False,
    init_inverses: np.ndarray | None = None,
    init_logdets: np.ndarray | None = None,
    weighted_covs: np.ndarray | None = None,
) -> _Result:
    """Solve B independent group-sparse problems side by side.

    Parameters
    ----------
    covs : numpy.ndarray, shape (n, n, B, K)
        Empirical covariances.
    weights : numpy.ndarray, shape (B, K)
        Subjects' weights, each row summing to 1.
    alpha : float
        Regularisation parameter (> 0).
    max_iter : int
        Largest number of sweeps.
    tol : float or None
        A problem stops when the largest absolute change of its precisions over a
        sweep is below ``tol`` (never if None).
    init : numpy.ndarray, shape (n, n, B, K), optional
        Starting precisions; default ``diag(1 / diag(S_k))``.
    probe : callable, optional
        ``probe(iteration, omega, omega_old, problems, logdets)`` with the running
        problems' arrays (``omega_old`` None and ``iteration`` -1 before the first
        sweep; ``logdets`` (B, K) the log determinants of ``omega``), returning a
        boolean array: True stops that problem (after the sweep).
    log_level : int
        Level of the per-iteration log records.
    debug : bool
        Check positive definiteness and ``sigma == inv(omega)`` after each sweep.
    init_inverses, init_logdets : numpy.ndarray, optional
        The inverses (B, K, n, n) and log determinants (B, K) of ``init``, as
        returned in :class:`_Result`, to save computing them.
    weighted_covs : numpy.ndarray, shape (n, B, K, n), optional
        ``_weighted_rows(covs, weights)``, to save computing it.

    Returns
    -------
    _Result
    """
    n, _, n_problems, _ = covs.shape
    diagonal = np.arange(n)
    diag_covs = np.ascontiguousarray(covs[diagonal, diagonal])
    if init is None:
        omega_all = np.zeros_like(covs)
        omega_all[diagonal, diagonal] = 1.0 / diag_covs
        sigma_all = np.zeros((*covs.shape[2:], n, n))
        sigma_all[..., diagonal, diagonal] = np.moveaxis(diag_covs, 0, -1)
        logdet_all = -np.log(diag_covs).sum(axis=0)
    else:
        omega_all = np.array(init, dtype=np.float64, copy=True)
        if init_inverses is None:
            sigma_all = np.linalg.inv(_to_stack(omega_all))
        else:
            sigma_all = np.array(init_inverses, dtype=np.float64, copy=True)
        if init_logdets is None:
            logdet_all = _logdet(_to_stack(omega_all))
        else:
            logdet_all = np.array(init_logdets, dtype=np.float64, copy=True)
    # hundreds of regions: independent blocks, each swept by the sweep for its size
    blocks = None
    if n >= _LARGE_REGIONS:
        blocks = _components(_weighted_norms(covs, weights), alpha)
        if len(blocks) > 1 and not _block_diagonal(omega_all, blocks):
            blocks = [np.arange(n)]  # a start that does not split: no screening
    n_iter = np.zeros(n_problems, dtype=int)
    converged = np.zeros(n_problems, dtype=bool)
    interrupted = np.zeros(n_problems, dtype=bool)
    running = np.arange(n_problems)

    if probe is not None:
        probe(-1, omega_all, None, running, logdet_all)

    def subset(array: np.ndarray, axis: int) -> np.ndarray:
        if running.size == n_problems:
            return array
        return np.ascontiguousarray(np.take(array, running, axis=axis))

    # Working arrays of the running problems; they are the outputs themselves
    # until some problems stop before others (then they are copies).
    omega, sigma, logdet = omega_all, sigma_all, logdet_all
    omega_old = np.empty_like(omega)
    if weighted_covs is None:
        weighted_covs = _weighted_rows(covs, weights)
    w_covs_all = weighted_covs
    d_run, w_run = diag_covs, weights
    max_norm = None
    verbose_log = logger.isEnabledFor(log_level)
    for iteration in range(max_iter):
        if verbose_log:
            suffix = (
                f" variation (max norm): {max_norm:.3e}" if max_norm is not None else ""
            )
            logger.log(
                log_level,
                "* iteration %d (%.0f %%)%s ...",
                iteration,
                100.0 * iteration / max_iter,
                suffix,
            )
        np.copyto(omega_old, omega)
        if iteration > 0 and iteration % _REFRESH_SWEEPS == 0:
            # in place: sigma and logdet may be the outputs (see above)
            stack = _to_stack(omega)
            sigma[...] = np.linalg.inv(stack)
            logdet[...] = _logdet(stack)
        if blocks is None:
            logdet += _sweep(omega, sigma, weighted_covs, d_run, w_run, alpha)
        else:
            logdet += _screened_sweep(
                omega, sigma, weighted_covs, d_run, w_run, alpha, blocks
            )
        if debug:
            stack = _to_stack(omega)
            np.linalg.cholesky(stack)  # raises if not positive definite
            identity = np.eye(n)
            error = np.abs(stack @ sigma - identity).max()
            if error > 1e-6:
                raise RuntimeError(f"sigma drifted from inv(omega): {error:.3e}")
            error = np.abs(logdet - _logdet(stack)).max()
            if error > 1e-6:
                raise RuntimeError(f"log det drifted: {error:.3e}")
        n_iter[running] = iteration + 1
        stop = np.zeros(running.size, dtype=bool)
        if probe is not None:
            stop = probe(iteration, omega, omega_old, running, logdet)
            stop = np.asarray(stop, dtype=bool)
            interrupted[running[stop]] = True
        # omega_old <- |omega - omega_old|; largest change of each problem
        np.subtract(omega, omega_old, out=omega_old)
        np.abs(omega_old, out=omega_old)
        change = omega_old.reshape(n * n, *omega.shape[2:]).max(axis=0).max(axis=-1)
        max_norm = float(change[~stop].max()) if (~stop).any() else None
        if tol is not None:
            done = (change < tol) & ~stop
            converged[running[done]] = True
            if verbose_log and done.any():
                logger.log(
                    log_level,
                    "tolerance reached at iteration number %d: %.3e",
                    iteration + 1,
                    float(change[done].max()),
                )
            stop |= done
        if stop.any():
            if omega is not omega_all:
                omega_all[:, :, running[stop]] = omega[:, :, stop]
                sigma_all[running[stop]] = sigma[stop]
                logdet_all[running[stop]] = logdet[stop]
            keep = ~stop
            running = running[keep]
            if running.size == 0:
                break
            omega = np.ascontiguousarray(omega[:, :, keep])
            omega_old = np.empty_like(omega)
            sigma = np.ascontiguousarray(sigma[keep])
            logdet = logdet[keep]
            d_run = subset(diag_covs, 1)
            w_run = subset(weights, 0)
            weighted_covs = subset(w_covs_all, 1)
    if running.size:
        if omega is not omega_all:
            omega_all[:, :, running] = omega
            sigma_all[running] = sigma
            logdet_all[running] = logdet
        if tol is not None:
            warnings.warn(
                f"group-sparse covariance: maximum number of iterations ({max_iter}) "
                f"reached without getting to the requested tolerance ({tol}) at "
                f"alpha={alpha}",
                ConvergenceWarning,
                stacklevel=3,
            )
    return _Result(omega_all, sigma_all, logdet_all, n_iter, converged, interrupted)


def _level(verbose: int, threshold: int) -> int:
    """Log level of a message shown by nilearn when ``verbose >= threshold``."""
    return logging.INFO if verbose >= threshold else logging.DEBUG


def _precisions_internal(precisions: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(n, n, K) user precisions -> (n, n, 1, K), checked."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if precisions.shape != shape:
        raise ValueError(
            f"precisions_init must have shape {shape} (n_regions, n_regions, "
            f"n_subjects), got {precisions.shape}"
        )
    if not np.isfinite(precisions).all():
        raise ValueError("precisions_init contains NaN or infinite values")
    return precisions[:, :, None, :].copy()


def _fit_group_sparse(
    emp_covs: np.ndarray,
    n_samples: np.ndarray,
    alpha: float,
    max_iter: int,
    tol: float | None,
    verbose: int = 0,
    precisions_init: np.ndarray | None = None,
    probe_function: ProbeFunction | None = None,
    debug: bool = False,
) -> np.ndarray:
    """Group-sparse precisions of (n, n, K) covariances; returns (n, n, K)."""
    weights = np.asarray(n_samples, dtype=np.float64)
    weights = weights / weights.sum()
    n_regions = emp_covs.shape[0]
    diag = emp_covs[np.arange(n_regions), np.arange(n_regions)]
    if (np.abs(diag - 1.0) > 0.1).any():
        logger.warning(
            "Input signals do not all have unit variance. This can lead to "
            "numerical instability."
        )
    init = None
    if precisions_init is not None:
        init = _precisions_internal(precisions_init, emp_covs.shape)
    probe = None
    if probe_function is not None:

        def probe(iteration, omega, omega_old, running, logdets):
            del running, logdets
            stop = probe_function(
                emp_covs,
                weights,
                alpha,
                max_iter,
                tol,
                iteration,
                omega[:, :, 0].copy(),
                None if omega_old is None else omega_old[:, :, 0].copy(),
            )
            if stop and iteration >= 0:
                logger.log(_level(verbose, 2), "probe_function interrupted loop")
                return np.ones(1, dtype=bool)
            return np.zeros(1, dtype=bool)

    result = _solve(
        np.ascontiguousarray(emp_covs[:, :, None, :]),
        weights[None, :],
        alpha,
        max_iter,
        tol,
        init=init,
        probe=probe,
        log_level=_level(verbose, 1),
        debug=debug,
    )
    return result.precisions[:, :, 0]


def group_sparse_covariance(
    subjects: Sequence[np.ndarray],
    alpha: float,
    max_iter: int = 50,
    tol: float | None = 1e-3,
    verbose: int = 0,
    probe_function: ProbeFunction | None = None,
    precisions_init: np.ndarray | None = None,
    debug: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Group-sparse precision matrices of several subjects (one shared support).

    Minimises ``sum_k w_k (-log det K_k + tr(S_k K_k)) + alpha * sum_{i != j}
    ||K[i, j, :]||`` by block coordinate descent (see the module docstring).

    Parameters
    ----------
    subjects : list of numpy.ndarray, each of shape (n_samples_k, n_regions)
        Time series of each subject (samples in rows).
    alpha : float
        Regularisation parameter, > 0. With unit-variance signals, sensible values
        lie in ``(0, alpha_max]`` (see :func:`compute_alpha_max`).
    max_iter : int, default=50
        Largest number of sweeps over all columns.
    tol : float or None, default=1e-3
        Stop when the largest absolute change of any precision entry over a sweep
        is below ``tol`` (None or -1: run ``max_iter`` sweeps).
    verbose : int, default=0
        With ``verbose >= 1`` the per-iteration messages are logged at INFO level
        (DEBUG otherwise) on the ``sparseconn.covariance`` logger.
    probe_function : callable, optional
        Called before the first sweep and after each one as ``probe_function(
        emp_covs, weights, alpha, max_iter, tol, iteration, precisions,
        previous_precisions)`` (``iteration`` is -1 and ``previous_precisions``
        None before the first sweep); returning True after a sweep stops the
        optimisation.
    precisions_init : numpy.ndarray, shape (n_regions, n_regions, n_subjects), optional
        Starting point; default ``diag(1 / diag(S_k))``.
    debug : bool, default=False
        Check positive definiteness and the internal inverses after each sweep.

    Returns
    -------
    emp_covs : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Empirical covariances.
    precisions : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Estimated precisions, all with the same zero pattern.

    Raises
    ------
    ValueError
        On bad subjects (different numbers of regions, fewer than 2 samples, NaN or
        infinite values, a constant region) or a non-positive ``alpha``.
    """
    alpha = _check_alpha(alpha)
    max_iter = _check_int(max_iter, "max_iter")
    tol = _check_tol(tol)
    arrays = _check_subjects(subjects)
    emp_covs = _covariances_of(arrays, assume_centered=False, standardize=False)
    n_samples = np.array([x.shape[0] for x in arrays], dtype=np.float64)
    precisions = _fit_group_sparse(
        emp_covs,
        n_samples,
        alpha,
        max_iter,
        tol,
        verbose=verbose,
        precisions_init=precisions_init,
        probe_function=probe_function,
        debug=debug,
    )
    return emp_covs, precisions


# --------------------------------------------------------------------------------
# Paths and cross-validation
# --------------------------------------------------------------------------------


@dataclass
class _FoldData:
    """Cross-validation folds of all subjects, stacked as batched problems.

    Arrays are (n, n, F, K) covariances and (F, K) weights.
    """

    train_covs: np.ndarray  # standardised training covariances
    train_weights: np.ndarray  # normalised training sample counts
    test_covs: np.ndarray  # standardised test covariances (scores)
    test_raw_covs: np.ndarray  # test covariances (early stopping)


def _path(
    data: _FoldData,
    alphas: Sequence[float],
    tol: float | None,
    max_iter: int,
    early_stopping: bool,
    init: np.ndarray | None,
    keep_precisions: bool,
    verbose: int,
    debug: bool,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Fit all folds along a decreasing path of alphas (warm starts).

    Returns the test scores, shape (n_alphas, F), and for each alpha the folds'
    precisions (n, n, F, K), or None when ``keep_precisions`` is False.
    """
    n_folds = data.train_weights.shape[0]
    scores = np.empty((len(alphas), n_folds))
    kept: list[np.ndarray | None] = []
    probe = None
    if early_stopping:
        last = np.full(n_folds, -np.inf)
        level = _level(verbose, 2)

        def probe(iteration, omega, omega_old, running, logdets):
            if running.size == n_folds:
                weights, covs = data.train_weights, data.test_raw_covs
            else:
                weights = data.train_weights[running]
                covs = data.test_raw_covs[:, :, running]
            log_lik = _log_likelihood(omega, weights, covs, logdets)
            if iteration < 0:
                last[running] = log_lik
                return np.zeros(running.size, dtype=bool)
            stop = last[running] > log_lik
            if stop.any() and logger.isEnabledFor(level):
                logger.log(
                    level,
                    "Log-likelihood on test set is decreasing. Stopping at "
                    "iteration %d (folds %s)",
                    iteration,
                    running[stop].tolist(),
                )
            last[running[~stop]] = log_lik[~stop]
            return stop

    precisions = init
    inverses = logdets = None
    weighted_covs = _weighted_rows(data.train_covs, data.train_weights)
    for index, alpha in enumerate(alphas):
        result = _solve(
            data.train_covs,
            data.train_weights,
            float(alpha),
            max_iter,
            tol,
            init=precisions,
            probe=probe,
            log_level=_level(verbose, 3),
            debug=debug,
            init_inverses=inverses,
            init_logdets=logdets,
            weighted_covs=weighted_covs,
        )
        precisions = result.precisions
        inverses = result.inverses
        logdets = result.logdets
        scores[index] = _log_likelihood(
            precisions, data.train_weights, data.test_covs, logdets
        )
        kept.append(precisions if keep_precisions else None)
    return scores, kept


def _path_worker(args: tuple) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Process-pool entry point of :func:`_path`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _path(*args)


def group_sparse_covariance_path(
    train_subjs: Sequence[np.ndarray],
    alphas: Sequence[float],
    test_subjs: Sequence[np.ndarray] | None = None,
    tol: float | None = 1e-3,
    max_iter: int = 10,
    precisions_init: np.ndarray | None = None,
    verbose: int = 0,
    debug: bool = False,
    probe_function: ProbeFunction | None = None,
) -> list[np.ndarray] | tuple[list[np.ndarray], list[float]]:
    """Group-sparse precisions along a path of alphas, each fit warm-started.

    The training signals are standardised (correlation matrices), as in the
    cross-validation of :class:`GroupSparseCovarianceCV`.

    Parameters
    ----------
    train_subjs : list of numpy.ndarray, each of shape (n_samples_k, n_regions)
        Training time series.
    alphas : sequence of float
        Regularisation parameters, best in decreasing order.
    test_subjs : list of numpy.ndarray, optional
        Test time series (same subjects and regions); if given, the test
        log-likelihood of each fit is returned too.
    tol, max_iter, precisions_init, verbose, debug, probe_function
        As in :func:`group_sparse_covariance`.

    Returns
    -------
    precisions_list : list of numpy.ndarray, each (n_regions, n_regions, n_subjects)
        Precisions for each alpha.
    scores : list of float
        Only if ``test_subjs`` is given: test log-likelihood of each fit.
    """
    alphas = [_check_alpha(a, "each alpha") for a in alphas]
    max_iter = _check_int(max_iter, "max_iter")
    tol = _check_tol(tol)
    train = _check_subjects(train_subjs)
    train_covs = _covariances_of(train, assume_centered=False, standardize=True)
    n_samples = np.array([x.shape[0] for x in train], dtype=np.float64)
    weights = n_samples / n_samples.sum()
    test_covs = None
    if test_subjs is not None:
        test = _check_subjects(test_subjs)
        if len(test) != len(train) or test[0].shape[1] != train[0].shape[1]:
            raise ValueError(
                f"test_subjs ({len(test)} subjects x {test[0].shape[1]} regions) "
                f"must match train_subjs ({len(train)} x {train[0].shape[1]})"
            )
        test_covs = _covariances_of(test, assume_centered=False, standardize=True)
    precisions_list = []
    scores = []
    precisions = precisions_init
    for alpha in alphas:
        precisions = _fit_group_sparse(
            train_covs,
            n_samples,
            alpha,
            max_iter,
            tol,
            verbose=max(0, verbose - 1),
            precisions_init=precisions,
            probe_function=probe_function,
            debug=debug,
        )
        precisions_list.append(precisions)
        if test_covs is not None:
            scores.append(group_sparse_scores(precisions, weights, test_covs, 0)[0])
    if test_covs is None:
        return precisions_list
    return precisions_list, scores


# --------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------


class GroupSparseCovariance(BaseEstimator):
    """Group-sparse precision matrices (one shared zero pattern) at a given alpha.

    Drop-in for ``nilearn.connectome.GroupSparseCovariance`` (same parameters,
    defaults and fitted attributes); see :func:`group_sparse_covariance`.

    Parameters
    ----------
    alpha : float, default=0.1
        Regularisation parameter, > 0.
    tol : float, default=1e-3
        Stop when the largest absolute change of any precision entry over a sweep
        is below ``tol``.
    max_iter : int, default=10
        Largest number of sweeps.
    verbose : int, default=0
        ``>= 1`` logs progress at INFO level (DEBUG otherwise), ``>= 2`` the
        iterations too, on the ``sparseconn.covariance`` logger.
    memory, memory_level
        Accepted for compatibility with nilearn and ignored (no caching).

    Attributes
    ----------
    covariances_ : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Empirical covariances.
    precisions_ : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Estimated precisions.
    n_features_in_ : int
        Number of regions.

    References
    ----------
    Varoquaux, Gramfort, Poline, Thirion, NIPS 2010; Honorio & Samaras 2012 (see
    the module docstring).
    """

    def __init__(
        self,
        alpha: float = 0.1,
        tol: float = 1e-3,
        max_iter: int = 10,
        verbose: int = 0,
        memory: Any = None,
        memory_level: int = 0,
    ) -> None:
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.memory = memory
        self.memory_level = memory_level

    def fit(
        self, subjects: Sequence[np.ndarray], y: Any = None
    ) -> GroupSparseCovariance:
        """Estimate the precisions of ``subjects``.

        Parameters
        ----------
        subjects : list of numpy.ndarray, each of shape (n_samples_k, n_regions)
            Time series of each subject.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        del y
        alpha = _check_alpha(self.alpha)
        max_iter = _check_int(self.max_iter, "max_iter")
        tol = _check_tol(self.tol)
        arrays = _check_subjects(subjects)
        logger.log(_level(self.verbose, 1), "Computing covariance matrices")
        self.covariances_ = _covariances_of(arrays, False, False)
        n_samples = np.array([x.shape[0] for x in arrays], dtype=np.float64)
        self.n_features_in_ = arrays[0].shape[1]
        logger.log(_level(self.verbose, 1), "Computing precision matrices")
        self.precisions_ = _fit_group_sparse(
            self.covariances_,
            n_samples,
            alpha,
            max_iter,
            tol,
            verbose=max(0, self.verbose - 1),
        )
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "precisions_") and hasattr(self, "covariances_")


def _make_folds(subjects: list[np.ndarray], cv: Any) -> tuple[_FoldData, int]:
    """Split every subject's samples with the same CV scheme; check the folds."""
    splits = [
        list(check_cv(cv, np.ones(x.shape[0]), classifier=False).split(x))
        for x in subjects
    ]
    n_folds = min(len(s) for s in splits)
    if n_folds < 1:
        raise ValueError(f"cv={cv!r} produced no fold")
    train_covs, train_weights, test_covs, test_raw = [], [], [], []
    for fold in range(n_folds):
        trains, tests = [], []
        for k, x in enumerate(subjects):
            train, test = splits[k][fold]
            for part, index in (("training", train), ("test", test)):
                if len(index) < 2:
                    raise ValueError(
                        f"CV fold {fold} of subject {k} ({x.shape[0]} samples) has "
                        f"{len(index)} {part} sample(s): at least 2 are needed in "
                        "every fold (use fewer folds or more samples)"
                    )
            # (a region constant over the test samples is scored at its mean)
            constant = np.flatnonzero(np.ptp(x[train], axis=0) == 0)
            if constant.size:
                raise ValueError(
                    f"subject {k}, region {constant[0]} is constant over the "
                    f"training samples of CV fold {fold} (zero variance)"
                )
            trains.append(x[train])
            tests.append(x[test])
        n_train = np.array([t.shape[0] for t in trains], dtype=np.float64)
        train_covs.append(_covariances_of(trains, False, True))
        train_weights.append(n_train / n_train.sum())
        test_covs.append(_covariances_of(tests, False, True))
        test_raw.append(_covariances_of(tests, False, False))
    data = _FoldData(
        np.ascontiguousarray(np.stack(train_covs, axis=2)),
        np.stack(train_weights),
        np.ascontiguousarray(np.stack(test_covs, axis=2)),
        np.ascontiguousarray(np.stack(test_raw, axis=2)),
    )
    return data, n_folds


def _fold_subset(data: _FoldData, folds: np.ndarray) -> _FoldData:
    """The folds ``folds`` of ``data``."""
    return _FoldData(
        np.ascontiguousarray(data.train_covs[:, :, folds]),
        data.train_weights[folds],
        np.ascontiguousarray(data.test_covs[:, :, folds]),
        np.ascontiguousarray(data.test_raw_covs[:, :, folds]),
    )


class GroupSparseCovarianceCV(BaseEstimator):
    """Group-sparse precisions with alpha chosen by cross-validation.

    Drop-in for ``nilearn.connectome.GroupSparseCovarianceCV`` (same parameters,
    defaults, fitted attributes and choice of alpha). Each subject's samples are
    split by the same CV scheme (``KFold(5)`` by default); for each point of a grid
    of alphas, decreasing from ``alpha_max``, the standardised training folds are
    fitted (warm-started from the previous alpha, loose tolerance ``tol_cv``) and
    scored by the mean test log-likelihood; the grid is then refined around the
    best point ``n_refinements`` times; finally all the data are fitted at the best
    alpha with ``tol`` and ``max_iter``. A region constant over the test samples
    of a fold (few samples, discrete values) is standardised with scale 1, as in
    scikit-learn's ``StandardScaler``, so that fold is scored with the region at
    its mean; constant over the training samples of a fold, it is an error.

    Parameters
    ----------
    alphas : int or sequence of float, default=4
        Number of grid points (first grid: log-spaced from ``alpha_max / 100`` to
        ``alpha_max``), or an explicit grid (then no refinement).
    n_refinements : int, default=4
        Number of grid refinements.
    cv : int, cross-validation generator or None, default=None
        As scikit-learn's ``check_cv`` (None: 5-fold ``KFold``), applied to each
        subject's samples.
    tol_cv : float, default=1e-2
        Tolerance of the fits during the search.
    max_iter_cv : int, default=50
        Largest number of sweeps of the fits during the search.
    tol : float, default=1e-3
        Tolerance of the final fit.
    max_iter : int, default=100
        Largest number of sweeps of the final fit.
    verbose : int, default=0
        ``>= 1`` logs each refinement at INFO level, ``>= 2`` also the fits'
        iterations (DEBUG otherwise), on the ``sparseconn.covariance`` logger.
    n_jobs : int or None, default=1
        Processes for the folds (None or -1: all cores); the first group of folds
        is solved in this process, the others in workers. The folds are solved
        side by side in one batch in any case, so this pays only on idle cores
        (measured with 2 cores: ~15 % faster for 10 subjects, ~25 % for 40; slower
        when other processes keep the cores busy).
    debug : bool, default=False
        Internal consistency checks after each sweep (slow).
    early_stopping : bool, default=True
        Stop each search fit as soon as the log-likelihood of the test fold
        decreases (the fits then start from the diagonal at each refinement
        instead of from the previous best point).

    Attributes
    ----------
    alpha_ : float
        Selected alpha.
    cv_alphas_ : list of float
        All alphas explored, decreasing.
    cv_refinements_ : numpy.ndarray of int, shape (n_alphas,)
        The refinement (0 = first grid) in which each of ``cv_alphas_`` was
        scored (not in nilearn).
    cv_scores_ : numpy.ndarray, shape (n_alphas,)
        Mean test log-likelihood of each explored alpha.
    covariances_ : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Empirical covariances.
    precisions_ : numpy.ndarray, shape (n_regions, n_regions, n_subjects)
        Precisions estimated at ``alpha_``.
    n_features_in_ : int
        Number of regions.

    References
    ----------
    Varoquaux, Gramfort, Poline, Thirion, NIPS 2010 (see the module docstring).
    """

    def __init__(
        self,
        alphas: int | Sequence[float] = 4,
        n_refinements: int = 4,
        cv: Any = None,
        tol_cv: float = 1e-2,
        max_iter_cv: int = 50,
        tol: float = 1e-3,
        max_iter: int = 100,
        verbose: int = 0,
        n_jobs: int | None = 1,
        debug: bool = False,
        early_stopping: bool = True,
    ) -> None:
        self.alphas = alphas
        self.n_refinements = n_refinements
        self.cv = cv
        self.tol_cv = tol_cv
        self.max_iter_cv = max_iter_cv
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.debug = debug
        self.early_stopping = early_stopping

    def _n_workers(self, n_folds: int) -> int:
        n_jobs = self.n_jobs
        if n_jobs is None or n_jobs == -1:
            n_jobs = os.cpu_count() or 1
        n_jobs = _check_int(n_jobs, "n_jobs")
        return max(1, min(n_jobs, n_folds))

    def fit(
        self, subjects: Sequence[np.ndarray], y: Any = None
    ) -> GroupSparseCovarianceCV:
        """Choose alpha by cross-validation, then estimate the precisions.

        Parameters
        ----------
        subjects : list of numpy.ndarray, each of shape (n_samples_k, n_regions)
            Time series of each subject.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        del y
        tol_cv = _check_tol(self.tol_cv, "tol_cv")
        tol = _check_tol(self.tol)
        max_iter_cv = _check_int(self.max_iter_cv, "max_iter_cv")
        max_iter = _check_int(self.max_iter, "max_iter")
        if isinstance(self.alphas, (Sequence, np.ndarray)):
            alphas = [_check_alpha(a, "each of alphas") for a in self.alphas]
            if not alphas:
                raise ValueError("alphas is empty")
            n_refinements = 1
        else:
            n_alphas = _check_int(self.alphas, "alphas", minimum=2)
            n_refinements = _check_int(self.n_refinements, "n_refinements")
        arrays = _check_subjects(subjects)
        emp_covs = _covariances_of(arrays, False, False)
        n_samples = np.array([x.shape[0] for x in arrays], dtype=np.float64)
        self.n_features_in_ = arrays[0].shape[1]
        data, n_folds = _make_folds(arrays, self.cv)
        if not isinstance(self.alphas, (Sequence, np.ndarray)):
            alpha_1, _ = compute_alpha_max(emp_covs, n_samples)
            alpha_0 = 1e-2 * alpha_1
            alphas = list(np.logspace(np.log10(alpha_0), np.log10(alpha_1), n_alphas))
            alphas = alphas[::-1]
        started = time.perf_counter()
        n_workers = self._n_workers(n_folds)
        groups = np.array_split(np.arange(n_folds), n_workers)
        parts = [_fold_subset(data, g) for g in groups] if n_workers > 1 else [data]
        keep = not self.early_stopping
        # the first group of folds is solved in this process, the others in workers
        pool = ProcessPoolExecutor(n_workers - 1) if n_workers > 1 else None
        path: list[tuple[float, float, np.ndarray | None, int]] = []
        init = None
        try:
            for refinement in range(n_refinements):
                jobs = [
                    (
                        part,
                        alphas,
                        tol_cv,
                        max_iter_cv,
                        self.early_stopping,
                        None if init is None else init[:, :, g],
                        keep,
                        self.verbose,
                        self.debug,
                    )
                    for part, g in zip(parts, groups, strict=True)
                ]
                futures = (
                    []
                    if pool is None
                    else [pool.submit(_path_worker, job) for job in jobs[1:]]
                )
                outputs = [_path_worker(jobs[0])]
                outputs += [future.result() for future in futures]
                scores = np.concatenate([o[0] for o in outputs], axis=1)
                for index, alpha in enumerate(alphas):
                    precisions = (
                        np.concatenate([o[1][index] for o in outputs], axis=2)
                        if keep
                        else None
                    )
                    path.append(
                        (
                            float(alpha),
                            float(scores[index].mean()),
                            precisions,
                            refinement,
                        )
                    )
                path.sort(key=lambda point: point[0], reverse=True)
                best_index = _best_index([point[1] for point in path])
                _log_refinement(
                    refinement, n_refinements, alphas, path[best_index], started
                )
                alphas, init_index = _refine(path, best_index, len(alphas))
                init = path[init_index][2] if keep else None
                if n_refinements > 1:
                    logger.log(
                        _level(self.verbose, 1),
                        "[GroupSparseCovarianceCV] Done refinement %2d out of %d",
                        refinement,
                        n_refinements,
                    )
        finally:
            if pool is not None:
                pool.shutdown()
        self.cv_alphas_ = [point[0] for point in path]
        self.cv_scores_ = np.array([point[1] for point in path])
        self.cv_refinements_ = np.array([point[3] for point in path])
        self.alpha_ = self.cv_alphas_[best_index]
        logger.log(_level(self.verbose, 1), "Final optimization")
        self.covariances_ = emp_covs
        self.precisions_ = _fit_group_sparse(
            emp_covs,
            n_samples,
            self.alpha_,
            max_iter,
            tol,
            verbose=max(0, self.verbose - 1),
            debug=self.debug,
        )
        logger.info(
            "group-sparse CV: final fit at alpha %.4g, %.1f s elapsed",
            self.alpha_,
            time.perf_counter() - started,
        )
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "precisions_") and hasattr(self, "covariances_")


def _log_refinement(
    refinement: int,
    n_refinements: int,
    alphas: Sequence[float],
    best: tuple[float, float, Any, int],
    started: float,
) -> None:
    """One INFO line per refinement of the CV: its grid, the best so far, time."""
    logger.info(
        "group-sparse CV: refinement %d of %d, alphas %s; best alpha %.4g "
        "(mean test log-likelihood %.4g), %.1f s elapsed",
        refinement + 1,
        n_refinements,
        " ".join(f"{alpha:.4g}" for alpha in alphas),
        best[0],
        best[1],
        time.perf_counter() - started,
    )


def _best_index(scores: Sequence[float]) -> int:
    """Index of the best score; ties go to the later (smaller) alpha.

    Scores that are not finite, or absurdly large (>= 0.1 / eps, a sign of a
    degenerate fit), never win.
    """
    huge = 0.1 / np.finfo(np.float64).eps
    best_score = -np.inf
    best_index = 0
    for index, score in enumerate(scores):
        if score >= huge:
            score = np.nan
        if score >= best_score:
            best_score = score
            best_index = index
    return best_index


def _last_finite(scores: Sequence[float]) -> int:
    huge = 0.1 / np.finfo(np.float64).eps
    last = 0
    for index, score in enumerate(scores):
        if np.isfinite(score) and score < huge:
            last = index
    return last


def _refine(
    path: list[tuple[float, float, Any]], best_index: int, n_alphas: int
) -> tuple[list[float], int]:
    """Next grid around the best point of a decreasing path, and the warm start.

    At the top of the grid: between the two largest alphas. At the last finite
    score (not the bottom): between it and the next. At the bottom: down to a
    hundredth of it. Inside: between its two neighbours. The new grid has
    ``n_alphas`` log-spaced points strictly inside that interval.
    """
    last_finite = _last_finite([point[1] for point in path])
    if best_index == 0:
        high, low, start = path[0][0], path[1][0], 0
    elif best_index == last_finite and best_index != len(path) - 1:
        high, low = path[best_index][0], path[best_index + 1][0]
        start = best_index
    elif best_index == len(path) - 1:
        high, low = path[best_index][0], 0.01 * path[best_index][0]
        start = best_index
    else:
        high, low = path[best_index - 1][0], path[best_index + 1][0]
        start = best_index - 1
    grid = np.logspace(np.log10(high), np.log10(low), n_alphas + 2)[1:-1]
    return list(grid), start
