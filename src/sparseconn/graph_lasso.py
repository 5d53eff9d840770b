"""Graph lasso with the cross-validated choice of scikit-learn's ``GraphicalLassoCV``.

The graphical lasso (Friedman, Hastie & Tibshirani 2008) estimates a sparse
precision ``K`` from an empirical covariance ``S`` by minimising::

    -log det K + tr(S K) + alpha * sum_{i != j} |K[i, j]|

:func:`graph_lasso_cv` chooses ``alpha`` as scikit-learn's ``GraphicalLassoCV()``
(default parameters) does, and returns the same ``alpha_``, precision, covariance
and cross-validation scores, 2 to 3 times faster; :func:`graph_lasso_cv_many`
runs many such cross-validations side by side (the science check's: each
subject's training halves and whole series), each result bit for bit that of
:func:`graph_lasso_cv` alone, about 2 times faster again (``benchmarks/
bench_graph_lasso.py``). It follows the scikit-learn installed (1.9 when written;
``tests/parity/test_graph_lasso_cv.py`` checks it): the lasso kernel is that
version's, the code around it restates that version's ``GraphicalLassoCV``.

Why the same algorithm rather than an exact solver: scikit-learn's cross-validation
fits are deliberately inexact (at most 10 sweeps per alpha, a duality-gap
tolerance of 1e-4, an inner lasso tolerance of 1e-4), and its test scores move by
about 1e-4 from those of the exact optimum: as much as the scores of neighbouring
alphas differ after the grid refinements. An exact solver therefore chooses
another alpha on some subjects (3 of the 20 training halves of the default
synthetic run). So this module runs scikit-learn's algorithm, step for step:

- the grid: ``n_alphas`` values from ``alpha_max`` (the largest off-diagonal
  ``|S[i, j]|`` of all samples) down to ``alpha_max / 100``, log-spaced; after
  each pass, ``n_alphas`` new values between the neighbours of the best alpha
  (or beyond the ends, by scikit-learn's four rules), ``n_refinements`` passes;
- the folds: ``KFold(n_folds)`` without shuffling (contiguous test blocks);
  training and test covariances each centred on their own mean;
- each fold's path: warm starts along each pass's alphas (each pass starts from
  the fold's empirical covariance), every fit starting from the previous
  covariance with its off-diagonal scaled by 0.95, block coordinate descent over
  columns, each column a lasso solved by scikit-learn's own compiled coordinate
  descent (``sklearn.linear_model._cd_fast.enet_coordinate_descent_gram``: the
  very kernel ``GraphicalLassoCV`` calls, so the iterates are the same),
  stopping when ``|tr(S K) - p + alpha ||K||_1,off| < tol`` or after
  ``max_iter / 10`` sweeps;
- the score: ``(log det K - tr(S_test K) - p log 2 pi) / 2``; a fit that
  overflows, or whose precision stops being positive definite, scores -inf (and
  the next alpha starts from the last successful fit); a mean score above
  ``0.1 / eps`` counts as missing; the best is the largest mean score, the
  smallest alpha on ties;
- the final fit at the chosen alpha on all samples (``max_iter`` sweeps).

What makes it faster than scikit-learn (which spends most of its time in Python
around the compiled kernel): the graph lasso problems of a step (the folds of a
pass; with :func:`graph_lasso_cv_many`, the folds of every input, each at its
own alpha: every cross-validation makes the same number of fits, so their steps
line up; then the final fits) are solved side by side, every bookkeeping step
(building each column's sub-problem, updating the precision and covariance) one
numpy call for the whole batch, fits leaving the batch as they converge or fail;
and a column whose warm start already meets the kernel's own stopping test (its
duality gap, computed in numpy for every problem at once) is not handed to the
kernel at all, since the kernel would return it unchanged: Python visits only
the problems that need the kernel. Each problem's arithmetic is the same
whatever else is in its batch. What is left is mostly the kernel calls (29 000
a subject in the science check, about 12 microseconds each, two thirds of it the
compiled function's own per-call cost): about 60% of the batched time.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from scipy import linalg
from scipy.linalg.lapack import dsyev, dsyev_lwork
from sklearn.exceptions import ConvergenceWarning

try:  # a private module of scikit-learn: see restates_installed_scikit_learn()
    from sklearn.linear_model._cd_fast import enet_coordinate_descent_gram
except ImportError:  # pragma: no cover - another scikit-learn
    enet_coordinate_descent_gram = None

#: scikit-learn versions (major.minor) whose GraphicalLassoCV this module
#: restates step for step (tests/parity/test_graph_lasso_cv.py).
RESTATED_VERSIONS = ("1.9",)

_EPS = float(np.finfo(np.float64).eps)
_LOG_2PI = float(np.log(2 * np.pi))
#: Mean test scores at or above this are treated as missing (scikit-learn's rule).
_SCORE_CEILING = 0.1 / _EPS
#: Relative margins around the kernel's stopping test inside which the kernel is
#: called anyway (our duality gap and the kernel's differ by rounding only).
_GAP_MARGIN = 1e-9
_GAP_FLOOR = 1e-13
#: Most (p, p) matrices' entries of one side-by-side batch (its problems times
#: p^2; about 8 arrays of this size live at once): more cross-validations run in
#: successive batches (137 of 5 folds at 39 regions, 1 at 400 regions).
_MAX_BATCH_ENTRIES = 2**20


def restates_installed_scikit_learn(version: str | None = None) -> bool:
    """Whether :func:`graph_lasso_cv` restates the installed ``GraphicalLassoCV``.

    True for the versions of :data:`RESTATED_VERSIONS` (``version``: default the
    installed one) when its compiled lasso kernel is importable; elsewhere the
    caller uses scikit-learn's estimator itself (slower, the same choices).
    """
    version = sklearn.__version__ if version is None else version
    major_minor = ".".join(version.split(".")[:2])
    return enet_coordinate_descent_gram is not None and (
        major_minor in RESTATED_VERSIONS
    )


@dataclass(frozen=True)
class GraphLassoCVResult:
    """What :func:`graph_lasso_cv` chose and fitted.

    Attributes
    ----------
    alpha : float
        The chosen penalty (``GraphicalLassoCV.alpha_``).
    precision, covariance : ndarray, shape (p, p)
        The fit at ``alpha`` on all samples (``precision_``, ``covariance_``).
    location : ndarray, shape (p,)
        The samples' mean (``location_``).
    cv_alphas : ndarray, shape (n_alphas * n_refinements + 1,)
        Every alpha explored, decreasing, then 0 (``cv_results_["alphas"]``).
    cv_scores : ndarray, shape (n_alphas * n_refinements + 1, n_folds)
        Test log-likelihood of each alpha on each fold (``split{k}_test_score``);
        the last row is the empirical covariance's.
    n_iter : int
        Sweeps of the final fit (``n_iter_``).
    """

    alpha: float
    precision: np.ndarray
    covariance: np.ndarray
    location: np.ndarray
    cv_alphas: np.ndarray
    cv_scores: np.ndarray
    n_iter: int


class _UnusedRandomState:
    """The kernel draws a seed for its random order, unused in cyclic order."""

    @staticmethod
    def randint(low: int, high: int) -> int:
        return low


_NO_RANDOM = _UnusedRandomState()


def empirical_covariance(samples: np.ndarray) -> np.ndarray:
    """Covariance of ``samples`` (n, p) centred on their mean, divided by n."""
    centred = samples - samples.mean(axis=0)
    return (centred.T @ centred) * (1.0 / samples.shape[0])


def alpha_max(covariance: np.ndarray) -> float:
    """Smallest alpha at which the graph lasso of ``covariance`` is diagonal."""
    off_diagonal = np.abs(covariance)
    np.fill_diagonal(off_diagonal, 0.0)
    return float(off_diagonal.max())


def log_likelihood(test_covariance: np.ndarray, precisions: np.ndarray) -> np.ndarray:
    """Mean Gaussian log-likelihood per sample, -inf where not positive definite.

    Parameters
    ----------
    test_covariance : ndarray, shape (..., p, p)
        Empirical covariance(s) of the test samples.
    precisions : ndarray, shape (..., p, p)

    Returns
    -------
    ndarray of shape ``(...)``: ``(log det K - tr(S K) - p log 2 pi) / 2``.
    """
    p = precisions.shape[-1]
    with np.errstate(all="ignore"):
        sign, logdet = np.linalg.slogdet(precisions)
        fit = np.sum(test_covariance * precisions, axis=(-2, -1))
        scores = (-fit + np.where(sign > 0, logdet, -np.inf) - p * _LOG_2PI) / 2.0
    return np.where(np.isfinite(scores), scores, -np.inf)


def kfold_splits(n_samples: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) indices of ``KFold(n_folds)``: contiguous test blocks, in order.

    The first ``n_samples % n_folds`` blocks have one sample more.
    """
    sizes = np.full(n_folds, n_samples // n_folds)
    sizes[: n_samples % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    everything = np.arange(n_samples)
    return [
        (
            np.concatenate([everything[:start], everything[stop:]]),
            everything[start:stop],
        )
        for start, stop in itertools.pairwise(bounds)
    ]


@dataclass
class _Batch:
    """Graph lasso problems solved side by side (one per fold)."""

    covariances: np.ndarray  # (F, p, p) empirical covariances
    rows: np.ndarray  # (F, p, p - 1): row j of each covariance without entry j
    row_norms: np.ndarray  # (F, p): squared norm of each of those rows

    @classmethod
    def of(cls, covariances: np.ndarray) -> _Batch:
        p = covariances.shape[-1]
        rows = np.stack([covariances[:, j, _others(p)[j]] for j in range(p)], axis=1)
        return cls(covariances, np.ascontiguousarray(rows), np.sum(rows**2, axis=2))

    def subset(self, keep: np.ndarray) -> _Batch:
        return _Batch(self.covariances[keep], self.rows[keep], self.row_norms[keep])

    @classmethod
    def concatenate(cls, batches: Sequence[_Batch]) -> _Batch:
        if len(batches) == 1:
            return batches[0]
        return cls(
            *(
                np.concatenate([getattr(batch, name) for batch in batches])
                for name in ("covariances", "rows", "row_norms")
            )
        )


_OTHERS: dict[int, list[np.ndarray]] = {}


def _others(p: int) -> list[np.ndarray]:
    """For each j < p, the indices 0..p-1 without j."""
    if p not in _OTHERS:
        everything = np.arange(p)
        _OTHERS[p] = [everything[everything != j] for j in range(p)]
    return _OTHERS[p]


def _einsum_rowwise_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b, axis=-1)``."""
    return np.einsum("...i,...i->...", a, b)


# numpy >= 2's vecdot is several times faster on these small arrays
_rowwise_dot = getattr(np, "vecdot", _einsum_rowwise_dot)


def _sweep(
    batch: _Batch,
    state: np.ndarray,
    alphas: np.ndarray,
    enet_tol: float,
    enet_max_iter: int,
) -> None:
    """One pass of block coordinate descent over the columns, in place, all problems.

    ``state[:, 0]`` holds the covariances, ``state[:, 1]`` the transposed
    precisions (the sweep reads the precisions' columns), shape (F, 2, p, p); a
    row and a column of both are written at once, so they stay exactly symmetric
    once written; ``alphas`` (F,) is each problem's penalty. Column ``j``: the
    lasso of the empirical covariance's row ``j`` (``q``) against the covariance
    without row and column ``j`` (``Q``), from the precision's column ``j`` as
    warm start, then the precision's and covariance's row and column ``j`` from
    its solution ``w``.

    A lasso is handed to the kernel only if the kernel would move it: the kernel
    stops before its first pass when the duality gap of ``min_w w'Qw / 2 - q'w +
    alpha |w|_1`` at the start is in ``[0, tol q'q]``. That gap is computed here
    for all problems at once from ``q'w``, ``w'(q - Qw)``, ``|w|_1`` and
    ``max |q - Qw|`` (the kernel's formula, rounded otherwise); within a rounding
    margin of either bound the kernel decides. A kernel call that returns at once
    changes nothing, so only skipping a call the kernel would act on could change
    the result: the margins make the test skip only when the kernel surely
    returns at once.
    """
    n_problems, _, p, _ = state.shape
    others = _others(p)
    covariance = state[:, 0]
    sub = np.ascontiguousarray(covariance[:, 1:, 1:])
    # [Q w, w, q - Q w]: the new covariance column, the new precision column
    # (scaled; C-contiguous rows, as the kernel needs) and the lasso's gradient
    work = np.empty((n_problems, 3, p - 1))
    columns, new_column, w, gradient = work[:, :2], work[:, 0], work[:, 1], work[:, 2]
    # each problem's views, made once per sweep for the kernel calls
    w_rows, sub_matrices = list(w), list(sub)
    minus_shift = -1000 * _EPS
    floor = batch.row_norms * _GAP_FLOOR
    ceiling = batch.row_norms * (enet_tol * (1.0 - _GAP_MARGIN))
    alpha_values = alphas.tolist()
    for j in range(p):
        if j > 0:
            # sub is the covariance without row/column j: swap in row/column j - 1
            sub[:, j - 1, :j] = covariance[:, j - 1, :j]
            sub[:, j - 1, j:] = covariance[:, j - 1, j + 1 :]
            sub[:, :, j - 1] = sub[:, j - 1]
        q = batch.rows[:, j]
        rest = others[j]
        old = state[:, :, j, rest]  # covariance row j, precision column j
        old_diagonal = state[:, :, j, j]
        np.divide(old[:, 1], (minus_shift - old_diagonal[:, 1])[:, None], out=w)
        np.matmul(sub, w[:, :, None], out=new_column[:, :, None])
        np.subtract(q, new_column, out=gradient)
        magnitudes = np.abs(work[:, 1:])
        l1 = np.add.reduce(magnitudes[:, 0], axis=1)  # .sum(), .max() without
        top = np.maximum.reduce(magnitudes[:, 1], axis=1)  # their Python layer
        y2_minus_qw = batch.row_norms[:, j] - _rowwise_dot(q, w)
        r_norm2 = y2_minus_qw - _rowwise_dot(w, gradient)
        scale = alphas / np.maximum(top, alphas)  # alpha / top, or exactly 1
        gap = 0.5 * (1.0 + scale * scale) * r_norm2 + alphas * l1 - scale * y2_minus_qw
        unmoved = floor[:, j] * (l1 != 0.0) <= gap  # a floor of 0 when w = 0
        unmoved &= gap <= ceiling[:, j]
        kernel_moves = np.logical_not(unmoved).nonzero()[0]
        if kernel_moves.size:
            q_rows = list(q)
            for f in kernel_moves.tolist():
                enet_coordinate_descent_gram(
                    w_rows[f], alpha_values[f], 0.0, sub_matrices[f], q_rows[f],
                    q_rows[f], enet_max_iter, enet_tol, _NO_RANDOM, False, False,
                )  # fmt: skip
            # the others' w did not change: the same Q w again
            np.matmul(sub, w[:, :, None], out=new_column[:, :, None])
        diagonal = 1.0 / (old_diagonal[:, 0] - _rowwise_dot(old[:, 0], w))
        state[:, 1, j, j] = diagonal
        np.multiply(w, -diagonal[:, None], out=w)
        state[:, :, j, rest] = columns
        state[:, :, rest, j] = columns


_SYEV_WORK: dict[int, int] = {}  # LAPACK work size per order, as scipy asks


def _pseudo_inverse(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.pinvh(matrix)`` (same LAPACK driver and cut-off), faster."""
    n = matrix.shape[0]
    if n not in _SYEV_WORK:
        _SYEV_WORK[n] = int(dsyev_lwork(n, lower=1)[0])
    eigenvalues, eigenvectors, _ = dsyev(
        matrix, compute_v=1, lower=1, lwork=_SYEV_WORK[n]
    )
    cutoff = np.max(np.abs(eigenvalues), initial=0.0) * (matrix.shape[0] * _EPS)
    kept = np.abs(eigenvalues) > cutoff
    vectors = eigenvectors[:, kept]
    return (vectors * (1.0 / eigenvalues[kept])) @ vectors.T


def _fit(
    batch: _Batch,
    alphas: np.ndarray,
    start: np.ndarray,
    max_iter: int,
    tol: float,
    enet_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Graph lasso of every problem of ``batch``, each at its alpha, from ``start``.

    ``alphas`` (F,): each problem's penalty. Returns covariances and precisions
    (F, p, p), the boolean mask of failed fits (overflow or a precision no longer
    positive definite: scikit-learn raises ``FloatingPointError`` there) and each
    fit's number of sweeps. Each problem's numbers do not depend on the others
    in the batch.
    """
    n_problems, p, _ = start.shape
    state = np.empty((n_problems, 2, p, p))
    np.multiply(start, 0.95, out=state[:, 0])
    diagonal = np.arange(p)
    state[:, 0, diagonal, diagonal] = batch.covariances[:, diagonal, diagonal]
    for f in range(n_problems):
        state[f, 1] = _pseudo_inverse(state[f, 0]).T
    failed = np.zeros(n_problems, dtype=bool)
    n_iter = np.zeros(n_problems, dtype=int)
    running = np.arange(n_problems)
    # the fits still running, compacted; a fit's state is written back to
    # ``state`` when it stops
    sub_batch, sub_state, sub_alphas = batch, state.copy(), alphas
    enet_max_iter = max(20, max_iter)
    for iteration in range(max_iter):
        with np.errstate(all="ignore"):
            _sweep(sub_batch, sub_state, sub_alphas, enet_tol, enet_max_iter)
            broken = ~np.isfinite(sub_state.sum(axis=(1, 2, 3)))
            precision = sub_state[:, 1]
            off_l1 = np.abs(precision).sum(axis=(1, 2)) - np.abs(
                precision[:, diagonal, diagonal]
            ).sum(axis=1)
            fit = np.sum(sub_batch.covariances * precision, axis=(1, 2))
            gap = fit - p + sub_alphas * off_l1
            sign, logdet = np.linalg.slogdet(precision)
            cost_finite = (sign > 0) & np.isfinite(fit - logdet + sub_alphas * off_l1)
        converged = ~broken & (np.abs(gap) < tol)
        broken |= ~converged & ~cost_finite & (iteration > 0)
        failed[running[broken]] = True
        keep = ~(broken | converged)
        if not keep.any() or iteration == max_iter - 1:
            state[running] = sub_state
            n_iter[running] = iteration + 1
            break
        if not keep.all():
            stopped = ~keep
            state[running[stopped]] = sub_state[stopped]
            n_iter[running[stopped]] = iteration + 1
            running = running[keep]
            sub_batch = sub_batch.subset(keep)
            sub_state = sub_state[keep]
            sub_alphas = sub_alphas[keep]
    return state[:, 0], state[:, 1].transpose(0, 2, 1), failed, n_iter


def _ill_conditioned(alpha: float, prefix: str = "") -> FloatingPointError:
    return FloatingPointError(
        f"{prefix}graph lasso at alpha={alpha:g}: the system is too ill-conditioned "
        "for this solver"
    )


def graph_lasso(
    covariance: np.ndarray,
    alpha: float,
    max_iter: int = 100,
    tol: float = 1e-4,
    enet_tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Graph lasso of one empirical covariance (scikit-learn's ``graphical_lasso``).

    Returns the covariance, the precision and the number of sweeps.

    Raises
    ------
    FloatingPointError
        If the fit overflows or its precision stops being positive definite.
    """
    start = np.asarray(covariance, dtype=np.float64)[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        covs, precs, failed, n_iter = _fit(
            _Batch.of(start), np.array([float(alpha)]), start, max_iter, tol, enet_tol
        )
    if failed[0]:
        raise _ill_conditioned(alpha)
    return covs[0], precs[0], int(n_iter[0])


def _best_index(mean_scores: list[float]) -> tuple[int, int]:
    """Index of the best mean score (the last on ties) and of the last finite one."""
    best_score, best_index, last_finite = -np.inf, 0, 0
    for index, score in enumerate(mean_scores):
        if score >= _SCORE_CEILING:
            score = np.nan
        if np.isfinite(score):
            last_finite = index
        if score >= best_score:
            best_score, best_index = score, index
    return best_index, last_finite


def _refined_bounds(
    alphas: list[float], best_index: int, last_finite: int
) -> tuple[float, float]:
    """The (upper, lower) alphas around the best one for the next grid."""
    if best_index == 0:
        return alphas[0], alphas[1]
    if best_index == last_finite and best_index != len(alphas) - 1:
        # non-converged fits below the best alpha: refine just under it
        return alphas[best_index], alphas[best_index + 1]
    if best_index == len(alphas) - 1:
        return alphas[best_index], 0.01 * alphas[best_index]
    return alphas[best_index - 1], alphas[best_index + 1]


def _check_signals(signals: np.ndarray, n_folds: int, name: str) -> np.ndarray:
    array = np.asarray(signals, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(
            f"{name}: expected (samples, regions), got shape {array.shape}"
        )
    if array.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 regions, got {array.shape[1]}")
    if array.shape[0] < n_folds:
        raise ValueError(
            f"{name}: {array.shape[0]} samples, fewer than the {n_folds} folds"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


@dataclass
class _CrossValidation:
    """One input's cross-validation: its data, and its path as the passes go."""

    name: str
    samples: np.ndarray
    full_covariance: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    train: _Batch  # the folds' training covariances
    test: np.ndarray  # (n_folds, p, p) the folds' test covariances
    grid: np.ndarray  # the alphas of the current pass
    path: list[tuple[float, tuple[float, ...]]]
    best_index: int = 0

    @classmethod
    def of(
        cls, signals: np.ndarray, name: str, n_folds: int, n_alphas: int
    ) -> _CrossValidation:
        samples = _check_signals(signals, n_folds, name)
        full_covariance = empirical_covariance(samples)
        top = alpha_max(full_covariance)
        if not top > 0:
            raise ValueError(f"{name}: no two regions covary (alpha_max = 0)")
        splits = kfold_splits(samples.shape[0], n_folds)
        return cls(
            name=name,
            samples=samples,
            full_covariance=full_covariance,
            splits=splits,
            train=_Batch.of(
                np.stack([empirical_covariance(samples[tr]) for tr, _ in splits])
            ),
            test=np.stack([empirical_covariance(samples[te]) for _, te in splits]),
            grid=np.logspace(np.log10(0.01 * top), np.log10(top), n_alphas)[::-1],
            path=[],
        )

    def refine(self, n_alphas: int) -> None:
        """Sort the path, choose the best alpha, and make the next pass's grid."""
        self.path.sort(key=lambda entry: entry[0], reverse=True)
        alphas = [alpha for alpha, _ in self.path]
        self.best_index, last_finite = _best_index(
            [float(np.mean(scores)) for _, scores in self.path]
        )
        upper, lower = _refined_bounds(alphas, self.best_index, last_finite)
        self.grid = np.logspace(np.log10(upper), np.log10(lower), n_alphas + 2)[1:-1]

    @property
    def chosen(self) -> float:
        return float(self.path[self.best_index][0])


def graph_lasso_cv(
    signals: np.ndarray,
    *,
    n_alphas: int = 4,
    n_refinements: int = 4,
    n_folds: int = 5,
    tol: float = 1e-4,
    enet_tol: float = 1e-4,
    max_iter: int = 100,
) -> GraphLassoCVResult:
    """Graph lasso with alpha chosen as by scikit-learn's ``GraphicalLassoCV``.

    The defaults are ``GraphicalLassoCV()``'s (``alphas=4``, ``n_refinements=4``,
    ``cv=None``: 5 contiguous folds, ``tol``, ``enet_tol``, ``max_iter``, ``mode="cd"``,
    ``assume_centered=False``); the result holds the same numbers (see the module
    docstring for the algorithm). :func:`graph_lasso_cv_many` runs many at once.

    Parameters
    ----------
    signals : ndarray, shape (n_samples, n_regions)

    Returns
    -------
    GraphLassoCVResult

    Raises
    ------
    ValueError
        On signals that are not finite, or too few samples or regions, or
        whose regions are all uncorrelated (then every alpha gives the same
        diagonal precision and there is nothing to choose).
    FloatingPointError
        If the final fit fails (as scikit-learn's).
    """
    cross_validation = _CrossValidation.of(signals, "signals", n_folds, n_alphas)
    return _run_side_by_side(
        [cross_validation], n_alphas, n_refinements, tol, enet_tol, max_iter
    )[0]


def graph_lasso_cv_many(
    signals: Sequence[np.ndarray],
    *,
    n_alphas: int = 4,
    n_refinements: int = 4,
    n_folds: int = 5,
    tol: float = 1e-4,
    enet_tol: float = 1e-4,
    max_iter: int = 100,
) -> list[GraphLassoCVResult]:
    """:func:`graph_lasso_cv` of each of ``signals``, run side by side.

    Every cross-validation makes the same number of fits, so each of its steps
    is one batch of all inputs' folds (each at its own alpha), and the final fits
    are one batch too; inputs with the same number of regions share the batches
    (up to a memory bound, :data:`_MAX_BATCH_ENTRIES`).
    Each result equals :func:`graph_lasso_cv` of that input alone, bit for bit;
    the batch saves the Python overhead of the sweeps (``benchmarks/
    bench_graph_lasso.py``).

    Parameters
    ----------
    signals : sequence of ndarray, each (n_samples_k, n_regions_k)

    Returns
    -------
    list of GraphLassoCVResult, in the order of ``signals``.

    Raises
    ------
    ValueError, FloatingPointError
        As :func:`graph_lasso_cv`, naming the input (``signals[k]``).
    """
    cross_validations = [
        _CrossValidation.of(x, f"signals[{k}]", n_folds, n_alphas)
        for k, x in enumerate(signals)
    ]
    by_regions: dict[int, list[int]] = {}
    for k, cross_validation in enumerate(cross_validations):
        by_regions.setdefault(cross_validation.samples.shape[1], []).append(k)
    results: list[GraphLassoCVResult | None] = [None] * len(cross_validations)
    for n_regions, indices in by_regions.items():
        per_batch = max(1, _MAX_BATCH_ENTRIES // (n_folds * n_regions**2))
        for start in range(0, len(indices), per_batch):
            batch = indices[start : start + per_batch]
            batch_results = _run_side_by_side(
                [cross_validations[k] for k in batch],
                n_alphas,
                n_refinements,
                tol,
                enet_tol,
                max_iter,
            )
            for k, result in zip(batch, batch_results, strict=True):
                results[k] = result
    return results  # type: ignore[return-value]


def _run_side_by_side(
    cross_validations: list[_CrossValidation],
    n_alphas: int,
    n_refinements: int,
    tol: float,
    enet_tol: float,
    max_iter: int,
) -> list[GraphLassoCVResult]:
    """Run cross-validations of the same number of regions, every step batched."""
    n_folds = len(cross_validations[0].splits)
    train = _Batch.concatenate([cv.train for cv in cross_validations])
    test = np.concatenate([cv.test for cv in cross_validations])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(n_refinements):
            start = train.covariances
            for step in range(n_alphas):
                alphas = [cv.grid[step] for cv in cross_validations]
                covs, precs, failed, _ = _fit(
                    train,
                    np.repeat(alphas, n_folds),
                    start,
                    int(0.1 * max_iter),
                    tol,
                    enet_tol,
                )
                scores = np.where(failed, -np.inf, log_likelihood(test, precs))
                start = np.where(failed[:, None, None], start, covs)
                for k, (cv, alpha) in enumerate(
                    zip(cross_validations, alphas, strict=True)
                ):
                    fold_scores = scores[k * n_folds : (k + 1) * n_folds]
                    cv.path.append((alpha, tuple(float(s) for s in fold_scores)))
            for cv in cross_validations:
                cv.refine(n_alphas)
        chosen = [cv.chosen for cv in cross_validations]
        full = np.stack([cv.full_covariance for cv in cross_validations])
        covs, precs, failed, n_iter = _fit(
            _Batch.of(full), np.array(chosen), full, max_iter, tol, enet_tol
        )
    for cv, alpha, fit_failed in zip(cross_validations, chosen, failed, strict=True):
        if fit_failed:
            raise _ill_conditioned(alpha, prefix=f"{cv.name}: ")
    return [
        GraphLassoCVResult(
            alpha=alpha,
            precision=precision,
            covariance=covariance,
            location=cv.samples.mean(axis=0),
            cv_alphas=np.array([alpha for alpha, _ in cv.path] + [0.0]),
            cv_scores=np.array(
                [scores for _, scores in cv.path]
                + [_empirical_scores(cv.samples, cv.splits)]
            ),
            n_iter=int(iterations),
        )
        for cv, alpha, covariance, precision, iterations in zip(
            cross_validations, chosen, covs, precs, n_iter, strict=True
        )
    ]


def _empirical_scores(
    samples: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, ...]:
    """Test scores of the unpenalised estimate (the alpha = 0 row).

    As scikit-learn's ``EmpiricalCovariance().score``: the pseudo-inverse of the
    training covariance, the test samples centred on the training mean.
    """
    scores = []
    for train, test in splits:
        covariance = empirical_covariance(samples[train])
        centred = samples[test] - samples[train].mean(axis=0)
        test_covariance = (centred.T @ centred) / len(test)
        precision = linalg.pinvh(covariance, check_finite=False)
        scores.append(float(log_likelihood(test_covariance, precision)))
    return tuple(scores)
