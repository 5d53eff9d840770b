"""Stability selection and the extended BIC of the group-sparse estimator."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from sparseconn.covariance import (
    empirical_covariances,
    group_sparse_covariance,
    group_sparse_covariance_path,
)
from sparseconn.evaluation import support_scores
from sparseconn.stability import (
    complementary_halves,
    default_alphas,
    ebic_alpha,
    ebic_scores,
    stability_selection,
)
from sparseconn.synthetic import group_sparse_samples


def planted(
    seed: int,
    n_subjects: int = 4,
    n_regions: int = 8,
    n_volumes: int = 160,
    density: float = 0.25,
    strength: tuple[float, float] = (0.2, 0.5),
) -> tuple[list[np.ndarray], np.ndarray]:
    """z-scored Gaussian samples of subject precisions sharing one sparse support.

    Returns the subjects and the true support (p, p) bool.
    """
    return group_sparse_samples(
        seed, n_subjects, n_regions, n_volumes, density=density, strength=strength
    )


def test_halves_are_complementary_pairs_of_contiguous_blocks():
    halves = complementary_halves([40, 37, 50], 10, scheme="time", n_blocks=4, seed=3)
    assert len(halves) == 10
    for first, second in zip(halves[::2], halves[1::2], strict=True):
        for (k1, a), (k2, b), n in zip(first, second, [40, 37, 50], strict=True):
            assert k1 == k2
            assert np.intersect1d(a, b).size == 0
            assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(n))
            blocks = np.array_split(np.arange(n), 4)
            # each half is a union of exactly 2 whole blocks
            assert sum(np.isin(block, a).all() for block in blocks) == 2
            assert all(
                np.isin(block, a).all() != np.isin(block, b).all() for block in blocks
            )
    again = complementary_halves([40, 37, 50], 10, scheme="time", n_blocks=4, seed=3)
    assert all(
        np.array_equal(v1, v2)
        for h1, h2 in zip(halves, again, strict=True)
        for (_, v1), (_, v2) in zip(h1, h2, strict=True)
    )


def test_subject_halves_are_disjoint_and_of_equal_size():
    halves = complementary_halves([30] * 7, 20, scheme="subjects", seed=1)
    for first, second in zip(halves[::2], halves[1::2], strict=True):
        a, b = [k for k, _ in first], [k for k, _ in second]
        assert len(a) == len(b) == 3
        assert not set(a) & set(b)


@pytest.mark.parametrize("scheme", ["time", "subjects"])
def test_probabilities_equal_a_plain_loop_of_fits_on_the_same_halves(scheme):
    subjects, _ = planted(0, n_subjects=6, n_volumes=120)
    alphas = default_alphas(subjects, 6, 0.2)
    result = stability_selection(
        subjects,
        alphas=alphas,
        n_resamples=12,
        pfer=None,
        scheme=scheme,
        n_blocks=4,
        seed=7,
        tol=1e-3,
        max_iter=50,
    )
    halves = complementary_halves(
        [x.shape[0] for x in subjects], 12, scheme=scheme, n_blocks=4, seed=7
    )
    counts = np.zeros((alphas.size, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for half in halves:
            parts = [subjects[k][volumes] for k, volumes in half]
            path = group_sparse_covariance_path(parts, alphas, tol=1e-3, max_iter=50)
            for index, precisions in enumerate(path):
                counts[index] += (precisions != 0).any(axis=-1)
    expected = counts / len(halves)
    expected[:, np.arange(8), np.arange(8)] = 0
    assert result.alphas.size == alphas.size
    np.testing.assert_allclose(result.probabilities, expected, rtol=0, atol=1e-12)
    # the loop's probabilities are not trivial
    assert expected[0].sum() < expected[-1].sum()
    assert ((expected > 0) & (expected < 1)).any()


def test_strong_planted_edges_are_always_selected_and_absent_ones_never():
    subjects, truth = planted(
        1, n_subjects=6, n_regions=16, n_volumes=400, density=0.1, strength=(0.4, 0.5)
    )
    alphas = default_alphas(subjects, 16, 0.2)
    path = stability_selection(
        subjects, alphas=alphas, n_resamples=20, n_blocks=4, pfer=None
    )
    absent = ~truth & ~np.eye(16, dtype=bool)
    strong = [
        index
        for index in range(alphas.size)
        if (path.probabilities[index][truth] == 1).all()
        and (path.probabilities[index][absent] == 0).all()
    ]
    assert len(strong) >= 2
    # the stable set at the default threshold, with the path cut at pfer=2
    result = stability_selection(
        subjects, alphas=alphas, n_resamples=20, n_blocks=4, pfer=2.0
    )
    assert np.array_equal(result.support, truth)
    assert not result.support.diagonal().any()
    assert result.false_edges_bound <= 2.0


def test_bound_and_selection_range():
    subjects, _ = planted(2, n_subjects=5, n_regions=12, n_volumes=160)
    result = stability_selection(
        subjects, n_resamples=20, n_blocks=4, threshold=0.8, pfer=2.0
    )
    m = 12 * 11 // 2
    n_sel = result.n_selection_alphas
    assert result.n_candidates == m
    assert result.q == result.union_sizes[n_sel - 1]
    assert math.isclose(result.false_edges_bound, result.q**2 / (0.6 * m))
    assert result.false_edges_bound <= 2.0
    # the path stops at the first alpha past pfer, which is not in the range
    assert result.alphas.size == n_sel + 1
    assert result.union_sizes[-1] ** 2 / (0.6 * m) > 2.0
    # union sizes grow down the path and bound the per-alpha counts
    assert (np.diff(result.union_sizes) >= 0).all()
    assert (result.n_selected <= result.union_sizes + 1e-12).all()
    expected = result.probabilities[:n_sel].max(axis=0)
    assert np.array_equal(result.max_probabilities, expected)
    assert np.array_equal(result.support, expected >= 0.8)
    assert result.n_edges == int(np.triu(result.support, 1).sum())


def test_deterministic_for_a_seed_and_identical_for_any_n_jobs():
    subjects, _ = planted(3, n_subjects=4, n_regions=8, n_volumes=120)
    kwargs = dict(
        n_resamples=44, n_blocks=4, pfer=None, alphas=default_alphas(subjects, 5)
    )
    # 44 halves: 3 batches of at most 20, spread over the workers
    one = stability_selection(subjects, seed=5, **kwargs)
    again = stability_selection(subjects, seed=5, **kwargs)
    two = stability_selection(subjects, seed=5, n_jobs=2, **kwargs)
    other = stability_selection(subjects, seed=6, **kwargs)
    for result in (again, two):
        assert np.array_equal(result.probabilities, one.probabilities)
        assert np.array_equal(result.union_sizes, one.union_sizes)
    assert not np.array_equal(other.probabilities, one.probabilities)


def direct_ebic(precisions, subjects, gamma):
    """Foygel & Drton's EBIC per subject, summed: a plain loop."""
    p = subjects[0].shape[1]
    total = 0.0
    n_edges = sum(
        1
        for i in range(p)
        for j in range(i + 1, p)
        if any(precisions[i, j, k] != 0 for k in range(len(subjects)))
    )
    for k, x in enumerate(subjects):
        n = x.shape[0]
        centred = x - x.mean(axis=0)
        cov = centred.T @ centred / n
        theta = precisions[:, :, k]
        log_lik = n / 2 * (np.linalg.slogdet(theta)[1] - np.trace(cov @ theta))
        total += (
            -2 * log_lik + n_edges * math.log(n) + 4 * gamma * n_edges * math.log(p)
        )
    return total, n_edges


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_ebic_matches_a_direct_computation(gamma):
    subjects, _ = planted(4, n_subjects=3, n_regions=7, n_volumes=90)
    subjects[1] = subjects[1][:70]  # unequal sample counts
    emp_covs, counts = empirical_covariances(subjects)
    _, precisions = group_sparse_covariance(subjects, 0.15, tol=1e-8, max_iter=500)
    expected, n_edges = direct_ebic(precisions, subjects, gamma)
    assert 0 < n_edges < 21
    assert math.isclose(
        ebic_scores(precisions, emp_covs, counts, gamma), expected, rel_tol=1e-12
    )


def test_ebic_alpha_scores_the_fits_of_the_path():
    subjects, _ = planted(5, n_subjects=5, n_regions=10, n_volumes=200)
    alphas = [0.3, 0.2, 0.12, 0.08, 0.05, 0.02]
    alpha, scores = ebic_alpha(subjects, alphas, tol=1e-10, max_iter=2000)
    expected = []
    for a in alphas:
        _, precisions = group_sparse_covariance(subjects, a, tol=1e-10, max_iter=2000)
        expected.append(direct_ebic(precisions, subjects, 0.5)[0])
    np.testing.assert_allclose(scores, expected, rtol=1e-7)
    assert alpha == alphas[int(np.argmin(expected))]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(threshold=0.5), "threshold"),
        (dict(threshold=1.01), "threshold"),
        (dict(threshold="high"), "threshold"),
        (dict(n_resamples=8), "n_resamples"),
        (dict(n_resamples=11), "n_resamples"),
        (dict(n_blocks=3), "n_blocks"),
        (dict(n_blocks=40), "n_blocks"),  # 40 blocks of 60 volumes: < 2 each
        (dict(scheme="volumes"), "scheme"),
        (dict(pfer=0), "pfer"),
        (dict(n_jobs=0), "n_jobs"),
    ],
)
def test_bad_parameters_are_one_clear_error_naming_them(kwargs, name):
    subjects, _ = planted(6, n_subjects=3, n_volumes=60)
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        stability_selection(subjects, **kwargs)


@pytest.mark.parametrize(("n_subjects", "scheme"), [(1, "time"), (3, "subjects")])
def test_too_few_subjects_is_an_error_naming_subjects(n_subjects, scheme):
    subjects, _ = planted(7, n_subjects=n_subjects, n_volumes=60)
    with pytest.raises(ValueError, match=r"^subjects: .*at least"):
        stability_selection(subjects, scheme=scheme)


@pytest.mark.slow
def test_stable_set_recovers_a_planted_group_graph_where_cv_does_not():
    """The default geometry (10 x 39 regions x 176 volumes), planted model."""
    from sparseconn.covariance import GroupSparseCovarianceCV

    subjects, truth = planted(
        0, n_subjects=10, n_regions=39, n_volumes=176, density=0.08
    )
    result = stability_selection(subjects)
    scores = support_scores(result.support.astype(float), truth.astype(float))
    rows, cols = np.triu_indices(39, 1)
    false_edges = int((result.support & ~truth)[rows, cols].sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = GroupSparseCovarianceCV().fit(subjects)
    cv_scores = support_scores(cv.precisions_[..., 0], truth.astype(float))
    assert scores["f1"] >= 0.5 > cv_scores["f1"]
    assert false_edges <= result.false_edges_bound <= 5.0


# --------------------------------------------------------------------------------
# Refit on the stable support
# --------------------------------------------------------------------------------


def _sample_covariance(seed: int, n_regions: int = 8) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((60, n_regions))
    return np.cov(x.T, bias=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_support_precision_is_the_constrained_maximum_likelihood(seed):
    from sparseconn.stability import support_precision

    covariance = _sample_covariance(seed)
    rng = np.random.default_rng(seed + 10)
    support = np.triu(rng.random((8, 8)) < 0.35, 1)
    support = support | support.T
    precision = support_precision(covariance, support)
    kept = support | np.eye(8, dtype=bool)
    # zero off the support, positive definite, and its inverse matches the
    # data on the diagonal and on the support (the likelihood's stationarity)
    assert (precision[~kept] == 0).all()
    assert np.array_equal(precision, precision.T)
    assert np.linalg.eigvalsh(precision).min() > 0
    np.testing.assert_allclose(
        np.linalg.inv(precision)[kept], covariance[kept], atol=1e-9
    )

    # and no other precision with that support has a higher likelihood
    def loglik(k: np.ndarray) -> float:
        return np.linalg.slogdet(k)[1] - np.sum(covariance * k)

    nudge = np.zeros((8, 8))
    i, j = np.argwhere(np.triu(support, 1))[0]
    nudge[i, j] = nudge[j, i] = 1e-3
    assert loglik(precision) > loglik(precision + nudge)
    assert loglik(precision) > loglik(precision - nudge)


def test_support_precision_of_the_full_and_empty_supports():
    from sparseconn.stability import support_precision

    covariance = _sample_covariance(5)
    full = support_precision(covariance, np.ones((8, 8), dtype=bool))
    np.testing.assert_allclose(full, np.linalg.inv(covariance), atol=1e-9)
    empty = support_precision(covariance, np.zeros((8, 8), dtype=bool))
    np.testing.assert_array_equal(empty, np.diag(1 / np.diag(covariance)))
