"""Group-sparse covariance: optimality, invariants, API, input checks (no nilearn)."""

from __future__ import annotations

import logging
import math
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import sparse
from sklearn.covariance import graphical_lasso

from sparseconn import covariance as gsc
from sparseconn.covariance import (
    GroupSparseCovariance,
    GroupSparseCovarianceCV,
    compute_alpha_max,
    empirical_covariances,
    group_sparse_covariance,
    group_sparse_covariance_path,
    group_sparse_scores,
)
from sparseconn.synthetic import group_sparse_samples


def make_subjects(
    seed: int,
    n_subjects: int = 4,
    n_regions: int = 8,
    n_samples: int = 120,
    density: float = 0.3,
    vary_samples: bool = False,
) -> list[np.ndarray]:
    """Gaussian samples of a random sparse precision shared by all subjects."""
    counts = [n_samples + (17 * k if vary_samples else 0) for k in range(n_subjects)]
    return group_sparse_samples(
        seed, n_subjects, n_regions, counts, density=density, margin=0.5
    )[0]


def objective(precisions, covs, weights, alpha) -> float:
    return group_sparse_scores(precisions, weights, covs, alpha)[1]


@pytest.fixture(scope="module")
def subjects() -> list[np.ndarray]:
    return make_subjects(0)


@pytest.fixture(scope="module")
def problem(subjects):
    covs, n_samples = empirical_covariances(subjects)
    alpha_max, _ = compute_alpha_max(covs, n_samples)
    return covs, n_samples / n_samples.sum(), alpha_max


# ------------------------------------------------------------------ optimality


@pytest.mark.parametrize("fraction", [0.6, 0.2, 0.03])
@pytest.mark.parametrize("vary_samples", [False, True])
def test_objective_never_increases(fraction, vary_samples):
    data = make_subjects(1, vary_samples=vary_samples)
    covs, n_samples = empirical_covariances(data)
    weights = n_samples / n_samples.sum()
    alpha = fraction * compute_alpha_max(covs, n_samples)[0]
    values = []

    def probe(emp_covs, w, a, max_iter, tol, iteration, precisions, previous):
        np.testing.assert_allclose(w, weights)
        assert a == alpha and iteration == len(values) - 1
        values.append(objective(precisions, emp_covs, w, a))

    group_sparse_covariance(data, alpha, max_iter=30, tol=1e-10, probe_function=probe)
    assert len(values) > 3
    steps = np.diff(values)
    assert (steps <= 1e-12 * np.abs(values[:-1])).all(), steps


def kkt_violation(precisions, covs, weights, alpha) -> tuple[float, float, float]:
    """Largest violations of the optimality conditions (diag, active, inactive)."""
    gradient = np.stack(
        [
            weights[k] * (covs[..., k] - np.linalg.inv(precisions[..., k]))
            for k in range(covs.shape[-1])
        ],
        axis=-1,
    )
    n = covs.shape[0]
    diag = np.abs(gradient[np.arange(n), np.arange(n)]).max()
    norms = np.sqrt((precisions**2).sum(-1))
    off = ~np.eye(n, dtype=bool)
    active = off & (norms > 0)
    inactive = off & (norms == 0)
    safe = np.where(norms > 0, norms, 1.0)[..., None]
    residual = gradient + alpha * precisions / safe
    active_error = np.abs(residual[active]).max() if active.any() else 0.0
    gradient_norms = np.sqrt((gradient**2).sum(-1))
    inactive_excess = (
        (gradient_norms[inactive] - alpha).max() if inactive.any() else 0.0
    )
    return diag, active_error, inactive_excess


@pytest.mark.parametrize("fraction", [0.5, 0.15, 0.02])
def test_kkt_conditions_at_convergence(subjects, problem, fraction):
    covs, weights, alpha_max = problem
    alpha = fraction * alpha_max
    _, precisions = group_sparse_covariance(subjects, alpha, max_iter=2000, tol=1e-12)
    diag, active, inactive = kkt_violation(precisions, covs, weights, alpha)
    assert diag < 1e-9
    assert active < 1e-8 * alpha_max
    assert inactive <= 1e-9 * alpha_max
    gap = group_sparse_scores(precisions, weights, covs, alpha, duality_gap=True)[2]
    assert -1e-10 <= gap < 1e-8


def test_alpha_max_gives_diagonal_estimate(subjects, problem):
    covs, _, alpha_max = problem
    _, precisions = group_sparse_covariance(subjects, alpha_max, max_iter=100)
    off = ~np.eye(covs.shape[0], dtype=bool)
    assert (precisions[off] == 0).all()
    expected = 1.0 / covs[np.arange(8), np.arange(8)]
    np.testing.assert_allclose(precisions[np.arange(8), np.arange(8)], expected)
    _, below = group_sparse_covariance(subjects, 0.99 * alpha_max, max_iter=100)
    assert (below[off] != 0).any()


def test_alpha_min_is_smallest_group_norm(problem):
    covs, weights, _ = problem
    _, alpha_min = compute_alpha_max(covs, weights * 123.0)
    norms = np.sqrt(((covs * weights) ** 2).sum(-1))
    np.fill_diagonal(norms, np.inf)
    assert alpha_min == pytest.approx(norms.min())


def test_tiny_alpha_approaches_inverse_covariance(subjects, problem):
    covs, _, alpha_max = problem
    _, precisions = group_sparse_covariance(
        subjects, 1e-7 * alpha_max, max_iter=5000, tol=1e-12
    )
    for k in range(covs.shape[-1]):
        inverse = np.linalg.inv(covs[..., k])
        assert np.abs(precisions[..., k] - inverse).max() < 1e-4 * np.abs(inverse).max()


@pytest.mark.parametrize("fraction", [0.7, 0.1])
def test_outputs_symmetric_positive_definite(subjects, problem, fraction):
    _, precisions = group_sparse_covariance(subjects, fraction * problem[2])
    for k in range(precisions.shape[-1]):
        matrix = precisions[..., k]
        np.testing.assert_array_equal(matrix, matrix.T)
        assert np.linalg.eigvalsh(matrix).min() > 0
    # one shared support
    support = precisions != 0
    assert (support == support[..., :1]).all()


def test_one_subject_is_the_graphical_lasso():
    x = make_subjects(3, n_subjects=1, n_regions=6)[0]
    covs, n = empirical_covariances([x])
    alpha = 0.2 * compute_alpha_max(covs, n)[0]
    _, precisions = group_sparse_covariance([x], alpha, max_iter=1000, tol=1e-12)
    _, reference = graphical_lasso(
        covs[..., 0], alpha, tol=1e-10, enet_tol=1e-12, max_iter=1000
    )
    np.testing.assert_allclose(precisions[..., 0], reference, atol=1e-7)


def test_batched_solve_equals_separate_solves():
    a = empirical_covariances(make_subjects(4))[0]
    b = empirical_covariances(make_subjects(5))[0]
    weights = np.full((2, 4), 0.25)
    both = gsc._solve(np.stack([a, b], axis=2), weights, 0.05, 50, 1e-8)
    for index, covs in enumerate((a, b)):
        alone = gsc._solve(covs[:, :, None], weights[:1], 0.05, 50, 1e-8)
        # bit for bit: the result of CV does not depend on n_jobs
        np.testing.assert_array_equal(
            both.precisions[:, :, index], alone.precisions[:, :, 0]
        )
        assert both.n_iter[index] == alone.n_iter[0]


def test_sweep_inlined_threshold_gives_the_bits_of_threshold(monkeypatch):
    # the sweep solves a visit inline when every row's Newton iteration stops
    # after one step, else with _threshold: batched, a problem goes through
    # _threshold at visits it solves inline alone (the other problem needs more
    # steps there), with the same bits
    calls = []
    threshold = gsc._threshold

    def counted(*args):
        calls.append(args[1])
        threshold(*args)

    monkeypatch.setattr(gsc, "_threshold", counted)
    covs = [
        empirical_covariances(make_subjects(seed, n_subjects=6, vary_samples=True))[0]
        for seed in (4, 5)
    ]
    n_samples = 120.0 + 17.0 * np.arange(6)
    weights = np.tile(n_samples / n_samples.sum(), (2, 1))
    both = gsc._solve(np.stack(covs, axis=2), weights, 0.05, 50, 1e-8)
    batched_calls = len(calls)
    for index, cov in enumerate(covs):
        calls.clear()
        alone = gsc._solve(cov[:, :, None], weights[:1], 0.05, 50, 1e-8)
        assert 0 < len(calls) < batched_calls
        np.testing.assert_array_equal(
            both.precisions[:, :, index], alone.precisions[:, :, 0]
        )
        np.testing.assert_array_equal(both.inverses[index], alone.inverses[0])


def test_solver_returns_consistent_inverses_and_log_determinants():
    # problems stopping at different sweeps, after one or two refreshes of the
    # inverses: the returned inverses and log determinants (kept up to date by
    # low-rank updates) are those of the returned precisions
    covs = np.stack(
        [empirical_covariances(make_subjects(seed))[0] for seed in (4, 5, 6)], axis=2
    )
    weights = np.full((3, 4), 0.25)
    refresh = gsc._REFRESH_SWEEPS
    iterations = [refresh + 2, 2 * refresh + 3, refresh + 4]

    def probe(iteration, omega, omega_old, running, logdets):
        return np.array([iteration + 1 >= iterations[index] for index in running])

    # small alpha: the precisions still change by ~1e-5 per sweep at the end
    result = gsc._solve(covs, weights, 0.002, 100, None, probe=probe)
    np.testing.assert_array_equal(result.n_iter, iterations)
    stack = gsc._to_stack(result.precisions)
    np.testing.assert_allclose(result.inverses, np.linalg.inv(stack), atol=1e-12)
    np.testing.assert_allclose(result.logdets, gsc._logdet(stack), atol=1e-12)
    # a warm start from them continues as one from the precisions alone
    warm = gsc._solve(
        covs,
        weights,
        0.001,
        20,
        1e-8,
        init=result.precisions,
        init_inverses=result.inverses,
        init_logdets=result.logdets,
    )
    cold = gsc._solve(covs, weights, 0.001, 20, 1e-8, init=result.precisions)
    np.testing.assert_allclose(warm.precisions, cold.precisions, atol=1e-10)
    np.testing.assert_array_equal(warm.n_iter, cold.n_iter)


@pytest.mark.parametrize("spread", [0.0, 0.3, 3.0])
def test_group_soft_threshold_solves_its_secular_equation(spread):
    rng = np.random.default_rng(7)
    n_rows, n_subjects, alpha = 6, 9, 0.5
    work = gsc._Workspace(n_rows, n_subjects)
    q = rng.uniform(1.0, 1.0 + spread, (n_rows, n_subjects))
    work.c[:] = rng.normal(size=(n_rows, n_subjects)) * 0.4
    work.c[0] = 0.0  # a row exactly at zero
    np.multiply(work.c, q, out=work.cq)
    np.multiply(work.cq, q, out=work.cq2)
    norms2, c2q, c2q2 = gsc._rowdot(work.c, work.z).tolist()
    assert min(norms2) <= alpha**2 < max(norms2)  # some rows thresholded
    x = np.empty((n_rows, n_subjects))
    gsc._threshold(q, norms2, c2q, c2q2, alpha, work, x)
    for row in range(n_rows):
        c, norm = work.c[row], np.sqrt(norms2[row])
        if norm <= alpha:
            np.testing.assert_array_equal(x[row], 0.0)
            assert not np.signbit(x[row]).any()
        else:
            # optimality: q x - c + alpha x / ||x|| = 0
            gradient = q[row] * x[row] - c + alpha * x[row] / np.linalg.norm(x[row])
            assert np.abs(gradient).max() <= 1e-10 * norm


def soft_threshold(c, q, alpha: float) -> np.ndarray:
    """Run the solver's group soft-threshold on rows ``c`` (rows x subjects)."""
    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    work = gsc._Workspace(*c.shape)
    work.c[:] = c
    np.multiply(work.c, q, out=work.cq)
    np.multiply(work.cq, q, out=work.cq2)
    norms2, c2q, c2q2 = gsc._rowdot(work.c, work.z).tolist()
    x = np.empty(c.shape)
    gsc._threshold(q, norms2, c2q, c2q2, alpha, work, x)
    return x


def exact_soft_threshold(c, q, alpha: float) -> np.ndarray:
    """Minimiser of ``sum_k (q_k x_k^2 / 2 - c_k x_k) + alpha ||x||`` for one row.

    ``gamma`` of ``x = gamma c / (1 + gamma q)`` by bisection on the secular
    equation ``||c / (1 + gamma q)||^2 = alpha^2``, whose sign is evaluated in
    exact rational arithmetic, down to adjacent floats.
    """
    c = [Fraction(v) for v in np.asarray(c, dtype=np.float64).tolist()]
    q = [Fraction(v) for v in np.asarray(q, dtype=np.float64).tolist()]
    alpha2 = Fraction(alpha) ** 2

    def excess(gamma: float) -> Fraction:
        g = Fraction(gamma)
        return (
            sum(ck * ck / (1 + g * qk) ** 2 for ck, qk in zip(c, q, strict=True))
            - alpha2
        )

    if excess(0.0) <= 0:
        return np.zeros(len(c))
    low, high = 0.0, 1.0 / float(min(q))
    while excess(high) > 0:
        high *= 2.0
    while low < 0.5 * (low + high) < high:
        middle = 0.5 * (low + high)
        low, high = (middle, high) if excess(middle) > 0 else (low, middle)
    g = Fraction(low)
    return np.array([float(g * ck / (1 + g * qk)) for ck, qk in zip(c, q, strict=True)])


def test_group_soft_threshold_when_norm_over_alpha_rounds_to_one():
    # ||c|| > alpha, but ||c|| / alpha rounds to exactly 1: the Newton start
    # (||c|| / alpha - 1) / mean(q) used to be 0, and 1 / 0 raised
    c = np.array([1.3040000451301372, 0.9470809631292422, -0.7037352358069926])
    q = np.array([0.8, 1.1, 1.7])
    alpha = 1.7585851558959367
    norm2 = float(gsc._rowdot(c, c))
    assert norm2 > alpha * alpha and math.sqrt(norm2) * (1.0 / alpha) == 1.0
    assert sum(Fraction(v) ** 2 for v in c) > Fraction(alpha) ** 2  # exactly, too
    rows = np.stack([c, 2.0 * c, 0.5 * c])  # with a Newton row and a zero row
    x = soft_threshold(rows, np.stack([q, q, q]), alpha)
    assert np.isfinite(x).all()
    expected = exact_soft_threshold(c, q, alpha)
    assert np.all(expected != 0)  # tiny (~1e-16 of c / q), but not zero
    np.testing.assert_allclose(x[0], expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(x[1], exact_soft_threshold(2 * c, q, alpha), rtol=1e-9)
    np.testing.assert_array_equal(x[1], soft_threshold(2.0 * c, q, alpha)[0])
    np.testing.assert_array_equal(x[2], 0.0)
    # rounded ||c||^2 > alpha^2 but exactly ||c|| < alpha: the minimiser is 0
    c = np.array([0.726093788947765, 0.843732662303268, 1.1648639811110282])
    alpha = 1.6112123045321234
    assert float(gsc._rowdot(c, c)) > alpha * alpha
    assert sum(Fraction(v) ** 2 for v in c) < Fraction(alpha) ** 2
    x = soft_threshold(c, q, alpha)
    np.testing.assert_array_equal(x, 0.0)
    assert not np.signbit(x).any()


def test_group_soft_threshold_over_random_scales():
    # c and q over 60 orders of magnitude, alpha anywhere below ||c||, from a
    # hundredth of it to a few rounding errors under it
    rng = np.random.default_rng(11)
    for _ in range(400):
        n_subjects = int(rng.integers(1, 6))
        c = rng.standard_normal(n_subjects) * 10 ** rng.uniform(-30, 30)
        q = rng.uniform(0.2, 5.0, n_subjects) * 10 ** rng.uniform(-30, 30)
        norm = float(np.linalg.norm(c))
        regime = rng.integers(3)
        if regime == 0:
            alpha = norm * rng.uniform(0.01, 1.0)
        elif regime == 1:
            alpha = norm * (1.0 - 10 ** -rng.uniform(0, 17))
        else:
            alpha = norm
            for _ in range(int(rng.integers(0, 6))):
                alpha = math.nextafter(alpha, 0.0)
        x = soft_threshold(c, q, alpha)[0]
        assert np.isfinite(x).all()
        expected = exact_soft_threshold(c, q, alpha)
        # relative accuracy, except for a rounding error of the scale of c / q
        # (rows whose ||c||^2 rounds to alpha^2 or below are left at zero)
        tolerance = 1e-9 * np.abs(expected) + 1e-15 * norm / q.min()
        assert np.all(np.abs(x - expected) <= tolerance), (c, q, alpha)


def test_solver_state_stays_finite_over_random_scales(monkeypatch):
    # data over 24 orders of magnitude, alpha at alpha_max (the top of the CV
    # grid, where a group norm often equals alpha up to rounding), at the smallest
    # group norm and in between: no NaN or infinity anywhere, in particular no
    # division by zero in the group soft-threshold
    rounding_cases = 0
    threshold = gsc._threshold

    def checked_threshold(q, norms2, c2q, c2q2, alpha, work, out):
        nonlocal rounding_cases
        rounding_cases += sum(
            n2 > alpha * alpha and math.sqrt(n2) * (1.0 / alpha) == 1.0 for n2 in norms2
        )
        assert np.isfinite([*norms2, *c2q, *c2q2]).all() and np.isfinite(q).all()
        threshold(q, norms2, c2q, c2q2, alpha, work, out)
        assert np.isfinite(out).all()

    def probe(iteration, omega, omega_old, running, logdets):
        assert np.isfinite(omega).all() and np.isfinite(logdets).all()
        return np.zeros(running.size, dtype=bool)

    monkeypatch.setattr(gsc, "_threshold", checked_threshold)
    rng = np.random.default_rng(5)
    for _ in range(60):
        n_subjects, n_regions = int(rng.integers(1, 5)), int(rng.integers(2, 7))
        n_samples = int(rng.integers(5, 40))
        scale = 10 ** rng.uniform(-12, 12)
        subjects = [
            rng.standard_normal((n_samples, n_regions))
            * scale
            * rng.uniform(0.5, 2.0, n_regions)
            for _ in range(n_subjects)
        ]
        covs, n_samples = empirical_covariances(subjects)
        weights = (n_samples / n_samples.sum())[None, :]
        alpha_max, alpha_min = compute_alpha_max(covs, n_samples)
        for alpha in (alpha_max, alpha_min, rng.uniform(0.01, 1.0) * alpha_max):
            result = gsc._solve(
                covs[:, :, None, :], weights, alpha, 20, None, probe=probe
            )
            for array in (result.precisions, result.inverses, result.logdets):
                assert np.isfinite(array).all()
    assert rounding_cases > 0  # the case of the test above did occur


def test_precisions_init_and_probe_stop(subjects, problem):
    alpha = 0.2 * problem[2]
    _, reference = group_sparse_covariance(subjects, alpha, max_iter=200, tol=1e-10)
    calls = []

    def probe(*args):
        calls.append(args[5])
        return args[5] >= 1

    group_sparse_covariance(
        subjects, alpha, max_iter=200, tol=1e-10, probe_function=probe
    )
    assert calls == [-1, 0, 1]
    _, warm = group_sparse_covariance(
        subjects, alpha, max_iter=200, tol=1e-10, precisions_init=reference
    )
    np.testing.assert_allclose(warm, reference, atol=1e-8)


def test_non_convergence_warns(subjects, problem):
    with pytest.warns(Warning, match="maximum number of iterations"):
        group_sparse_covariance(subjects, 0.05 * problem[2], max_iter=1, tol=1e-12)


def test_empirical_covariances_conventions(subjects):
    covs, n_samples = empirical_covariances(subjects)
    assert covs.shape == (8, 8, 4) and n_samples.dtype == np.float64
    np.testing.assert_allclose(covs[..., 1], np.cov(subjects[1].T, bias=True))
    standardized, _ = empirical_covariances(subjects, standardize=True)
    np.testing.assert_allclose(standardized[..., 2], np.corrcoef(subjects[2].T))


# ------------------------------------------------------------------ estimators


def test_estimator_defaults_match_nilearn():
    assert GroupSparseCovariance().get_params() == {
        "alpha": 0.1,
        "tol": 1e-3,
        "max_iter": 10,
        "verbose": 0,
        "memory": None,
        "memory_level": 0,
    }
    assert GroupSparseCovarianceCV().get_params() == {
        "alphas": 4,
        "n_refinements": 4,
        "cv": None,
        "tol_cv": 1e-2,
        "max_iter_cv": 50,
        "tol": 1e-3,
        "max_iter": 100,
        "verbose": 0,
        "n_jobs": 1,
        "debug": False,
        "early_stopping": True,
    }


def test_group_sparse_covariance_estimator(subjects, problem):
    alpha = 0.3 * problem[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = GroupSparseCovariance(alpha=alpha, max_iter=50)
        assert estimator.fit(subjects) is estimator
    covs, precisions = group_sparse_covariance(subjects, alpha, max_iter=50)
    np.testing.assert_array_equal(estimator.precisions_, precisions)
    np.testing.assert_array_equal(estimator.covariances_, covs)
    assert estimator.n_features_in_ == 8


def test_cross_validation_estimator(subjects, problem):
    estimator = GroupSparseCovarianceCV()
    assert estimator.fit(subjects) is estimator
    alphas = np.array(estimator.cv_alphas_)
    assert (np.diff(alphas) < 0).all()
    assert alphas[0] == pytest.approx(problem[2])
    assert len(alphas) == 4 + 3 * 4
    assert estimator.cv_scores_.shape == alphas.shape
    best = np.flatnonzero(estimator.cv_scores_ == estimator.cv_scores_.max())[-1]
    assert estimator.alpha_ == alphas[best]
    assert estimator.precisions_.shape == (8, 8, 4)
    _, final = group_sparse_covariance(
        subjects, estimator.alpha_, max_iter=100, tol=1e-3
    )
    np.testing.assert_array_equal(estimator.precisions_, final)


def test_cross_validation_options(subjects):
    reference = GroupSparseCovarianceCV(n_refinements=2).fit(subjects)
    parallel = GroupSparseCovarianceCV(n_refinements=2, n_jobs=2).fit(subjects)
    np.testing.assert_allclose(reference.cv_scores_, parallel.cv_scores_, rtol=1e-12)
    np.testing.assert_allclose(reference.precisions_, parallel.precisions_, atol=1e-12)
    explicit = GroupSparseCovarianceCV(alphas=[0.2, 0.1, 0.05], cv=3).fit(subjects)
    assert explicit.cv_alphas_ == [0.2, 0.1, 0.05]
    no_early = GroupSparseCovarianceCV(n_refinements=2, early_stopping=False)
    assert len(no_early.fit(subjects).cv_alphas_) == 8


def test_path(subjects, problem):
    train = [s[:80] for s in subjects]
    test = [s[80:] for s in subjects]
    alphas = [0.5 * problem[2], 0.2 * problem[2]]
    precisions, scores = group_sparse_covariance_path(train, alphas, test_subjs=test)
    assert len(precisions) == len(scores) == 2
    assert group_sparse_covariance_path(train, alphas)[1].shape == (8, 8, 4)


def test_progress_is_logged(subjects, caplog):
    with caplog.at_level(logging.DEBUG, logger="sparseconn.covariance"):
        GroupSparseCovarianceCV(n_refinements=2).fit(subjects)
    text = caplog.text
    assert "variation (max norm)" in text
    assert "Done refinement  1 out of 2" in text
    assert "Final optimization" in text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparseconn.covariance"):
        group_sparse_covariance(subjects, 0.01, verbose=0)
        assert "iteration" not in caplog.text
        group_sparse_covariance(subjects, 0.01, verbose=1)
        assert "* iteration 1 (2 %) variation (max norm)" in caplog.text


# ------------------------------------------------------------------ bad input


def test_different_numbers_of_regions(subjects):
    bad = [*subjects[:2], subjects[2][:, :7]]
    with pytest.raises(ValueError, match="subject 2 has 7 regions, subject 0 has 8"):
        group_sparse_covariance(bad, 0.1)
    with pytest.raises(ValueError, match="same number of regions"):
        GroupSparseCovarianceCV().fit(bad)
    # the words nilearn's own test matches
    with pytest.raises(
        ValueError, match=r"All subjects must have the same number of features, i\.e\."
    ):
        GroupSparseCovariance().fit(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values(subjects, value):
    bad = [s.copy() for s in subjects]
    bad[1][5, 3] = value
    with pytest.raises(
        ValueError, match=r"subject 1 contains NaN or infinite.*sample 5, region 3"
    ):
        group_sparse_covariance(bad, 0.1)
    with pytest.raises(ValueError, match="subject 1 contains NaN"):
        GroupSparseCovariance().fit(bad)


def test_constant_region(subjects):
    bad = [s.copy() for s in subjects]
    bad[3][:, 6] = 2.5
    with pytest.raises(ValueError, match=r"subject 3, region 6 is constant .*2\.5"):
        group_sparse_covariance(bad, 0.1)
    with pytest.raises(ValueError, match="subject 3, region 6 is constant"):
        GroupSparseCovarianceCV().fit(bad)


def test_constant_region_within_a_fold(subjects):
    # constant over the test samples of a fold (few samples, discrete values):
    # standardised with scale 1 (as scikit-learn's StandardScaler), so the fold
    # is scored with that region at its mean
    bad = [s.copy() for s in subjects]
    bad[0][:24, 2] = 1.0  # the first test fold of KFold(5) on 120 samples
    folds, _ = gsc._make_folds(bad, None)
    test_cov = folds.test_covs[:, :, 0, 0]
    assert np.all(test_cov[2] == 0) and np.all(test_cov[:, 2] == 0)
    others = np.delete(np.delete(test_cov, 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(others, np.corrcoef(np.delete(bad[0][:24], 2, 1).T))
    estimate = GroupSparseCovarianceCV(alphas=3, n_refinements=2).fit(bad)
    assert np.isfinite(estimate.cv_scores_).all()
    assert np.isfinite(estimate.precisions_).all()
    # constant over the training samples: that fold's precisions are undefined
    bad[0] = subjects[0].copy()
    bad[0][24:, 2] = 1.0
    with pytest.raises(
        ValueError,
        match="subject 0, region 2 is constant over the training samples of CV fold 0",
    ):
        GroupSparseCovarianceCV().fit(bad)


@pytest.mark.parametrize("alpha", [0, 0.0, -0.1, np.nan, np.inf, "0.1", None])
def test_bad_alpha(subjects, alpha):
    with pytest.raises(ValueError, match="alpha must be a positive"):
        group_sparse_covariance(subjects, alpha)
    with pytest.raises(ValueError, match=f"alpha must be a positive.*{alpha!r}"):
        GroupSparseCovariance(alpha=alpha).fit(subjects)


def test_bad_cv_alphas(subjects):
    with pytest.raises(ValueError, match=r"each of alphas must be a positive.*-1"):
        GroupSparseCovarianceCV(alphas=[0.1, -1]).fit(subjects)
    with pytest.raises(ValueError, match="alphas must be an integer >= 2, got 1"):
        GroupSparseCovarianceCV(alphas=1).fit(subjects)


def test_too_few_samples(subjects):
    with pytest.raises(
        ValueError,
        match=r"subject 1: Found array with 1 sample\(s\) \(shape=\(1, 8\)\) while a "
        "minimum of 2 is required",
    ):
        group_sparse_covariance([subjects[0], subjects[1][:1]], 0.1)


def test_too_few_samples_in_a_fold(subjects):
    bad = [subjects[0], subjects[1][:9]]
    with pytest.raises(
        ValueError, match=r"CV fold 4 of subject 1 \(9 samples\) has 1 test sample"
    ):
        GroupSparseCovarianceCV().fit(bad)


def test_bad_shapes():
    with pytest.raises(ValueError, match="subjects is empty"):
        group_sparse_covariance([], 0.1)
    # nilearn's test of its own message matches "subjects' .* must be .* iterable"
    with pytest.raises(ValueError, match=r"subjects' .* must be .* iterable.*got int"):
        group_sparse_covariance(1, 0.1)
    with pytest.raises(ValueError, match=r"subject 0: expected a 2D array.*\(10,\)"):
        group_sparse_covariance([np.arange(10.0)], 0.1)
    with pytest.raises(ValueError, match="at least 2 regions"):
        group_sparse_covariance([np.arange(10.0)[:, None]], 0.1)


# scikit-learn's words (its check_array's), after the subject and with the value
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (0, 3),
            r"subject 1: Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while "
            "a minimum of 2 is required",
        ),
        (
            (12, 0),
            r"subject 0: Found array with 0 feature\(s\) \(shape=\(12, 0\)\) while "
            "a minimum of 2 is required",
        ),
        (
            (12, 1),
            r"subject 0: Found array with 1 feature\(s\) \(shape=\(12, 1\)\) while "
            "a minimum of 2 is required: at least 2 regions are needed",
        ),
    ],
    ids=["no samples", "no regions", "one region"],
)
def test_empty_data_and_one_region(shape, message):
    rng = np.random.default_rng(0)
    bad = [rng.standard_normal((12, shape[1])), rng.standard_normal(shape)]
    for fit in (
        lambda: group_sparse_covariance(bad, 0.1),
        lambda: GroupSparseCovariance().fit(bad),
        lambda: GroupSparseCovarianceCV().fit(bad),
    ):
        with pytest.raises(ValueError, match=message):
            fit()


def test_complex_data(subjects):
    bad = [s.astype(complex) for s in subjects]
    bad[2][4, 1] += 0.5j
    message = r"subject 0: Complex data not supported \(dtype complex128, value"
    with pytest.raises(ValueError, match=message):
        GroupSparseCovariance().fit(bad)
    bad[:2] = subjects[:2]
    message = r"subject 2: Complex data not supported \(dtype complex128, value.*0\.5j"
    with pytest.raises(ValueError, match=message):
        GroupSparseCovarianceCV().fit(bad)
    with pytest.raises(ValueError, match="subject 0: Complex data not supported"):
        group_sparse_covariance([[[1.0, 2j], [3.0, 4.0]]], 0.1)


def test_object_arrays(subjects):
    # numbers held as objects are numbers
    objects = [s.astype(object) for s in subjects]
    _, expected = group_sparse_covariance(subjects, 0.1)
    np.testing.assert_array_equal(group_sparse_covariance(objects, 0.1)[1], expected)
    objects[1][3, 2] = {"foo": "bar"}
    with pytest.raises(
        TypeError,
        match=r"subject 1: cannot be read as a numeric array \(float\(\) argument "
        "must be a string or a real number, not 'dict'",
    ):
        GroupSparseCovarianceCV().fit(objects)
    objects[1][3, 2] = "n/a"
    with pytest.raises(
        ValueError, match=r"subject 1: cannot be read as a numeric array.*'n/a'"
    ):
        GroupSparseCovariance().fit(objects)


def test_sparse_data(subjects):
    message = (
        r"subject 1: Sparse data was passed \(csr_array of shape \(120, 8\)\), but "
        "dense data is required. Use '.toarray\\(\\)'"
    )
    bad = [subjects[0], sparse.csr_array(subjects[1])]
    with pytest.raises(TypeError, match=message):
        GroupSparseCovariance().fit(bad)
    with pytest.raises(TypeError, match=message.replace("subject 1", "subject 0")):
        GroupSparseCovarianceCV().fit(sparse.csr_array(subjects[1]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
        ({"tol": -1e-3}, "tol must be a positive number or None, got -0.001"),
        ({"tol_cv": 0}, "tol_cv must be a positive number or None, got 0"),
        ({"n_refinements": 0}, "n_refinements must be an integer >= 1, got 0"),
        ({"n_jobs": 0}, "n_jobs must be an integer >= 1, got 0"),
    ],
)
def test_bad_cv_parameters(subjects, params, message):
    with pytest.raises(ValueError, match=message):
        GroupSparseCovarianceCV(**params).fit(subjects)


def test_bad_precisions_init(subjects):
    with pytest.raises(
        ValueError, match=r"precisions_init must have shape \(8, 8, 4\)"
    ):
        group_sparse_covariance(subjects, 0.1, precisions_init=np.eye(8))


def test_cv_logs_each_refinement_and_the_final_fit(subjects, caplog):
    caplog.set_level(logging.INFO, logger="sparseconn.covariance")
    estimator = GroupSparseCovarianceCV(alphas=3, n_refinements=3).fit(subjects)
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.INFO and "group-sparse CV" in record.getMessage()
    ]
    assert len(lines) == 4
    pattern = re.compile(
        r"group-sparse CV: refinement (\d) of 3, alphas (.+); best alpha (\S+) "
        r"\(mean test log-likelihood \S+\), [\d.]+ s elapsed"
    )
    alphas = np.array(estimator.cv_alphas_)
    scored = np.array(estimator.cv_scores_)
    for refinement, line in enumerate(lines[:3]):
        match = pattern.fullmatch(line)
        assert match, line
        assert int(match[1]) == refinement + 1
        # The grid of this refinement, as recorded in cv_alphas_.
        grid = alphas[estimator.cv_refinements_ == refinement]
        logged = sorted(map(float, match[2].split()), reverse=True)
        np.testing.assert_allclose(logged, grid, rtol=1e-3)
        # The best alpha among those scored so far.
        so_far = estimator.cv_refinements_ <= refinement
        best = alphas[so_far][np.nanargmax(scored[so_far])]
        assert float(match[3]) == pytest.approx(best, rel=1e-3)
    assert re.fullmatch(
        r"group-sparse CV: final fit at alpha (\S+), [\d.]+ s elapsed", lines[3]
    )
    assert float(lines[3].split("alpha ")[1].split(",")[0]) == pytest.approx(
        estimator.alpha_, rel=1e-3
    )
