"""Group-sparse covariance against nilearn 0.13.1 (the oracle), on seeded problems.

Each problem draws subjects from Gaussian models with a known sparse precision
(a random support shared by all subjects, subject-specific values) or, for the
bottom-of-the-grid case, a strong common factor (dense precision, small alpha).
The whole file runs in about a minute on 2 cores: the sizes and seeds were picked
where nilearn itself is fast.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from sparseconn import covariance as ours

nilearn_gsc = pytest.importorskip("nilearn.connectome.group_sparse_cov")

pytestmark = [pytest.mark.parity, pytest.mark.slow]


@dataclass(frozen=True)
class Problem:
    seed: int
    n_subjects: int
    n_regions: int
    n_samples: int
    density: float = 0.3
    vary_samples: bool = False
    factor: float = 0.0  # > 0: common-factor model (dense precision)

    def subjects(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        p = self.n_regions
        upper = np.triu_indices(p, 1)
        support = rng.random(upper[0].size) < self.density
        loading = rng.uniform(0.5, 1.0, p) * rng.choice([-1.0, 1.0], p)
        subjects = []
        for k in range(self.n_subjects):
            n = self.n_samples - (7 * k % 60 if self.vary_samples else 0)
            if self.factor > 0:
                common = rng.standard_normal((n, 1)) * loading * self.factor
                x = common + rng.standard_normal((n, p))
            else:
                values = np.zeros(upper[0].size)
                m = int(support.sum())
                values[support] = rng.uniform(0.2, 0.5, m) * rng.choice([-1, 1], m)
                precision = np.zeros((p, p))
                precision[upper] = values
                precision += precision.T
                shift = max(0.0, -np.linalg.eigvalsh(precision).min()) + 0.3
                precision += (shift + rng.random()) * np.eye(p)
                chol = np.linalg.cholesky(np.linalg.inv(precision))
                x = rng.standard_normal((n, p)) @ chol.T
            subjects.append((x - x.mean(0)) / x.std(0, ddof=1))
        return subjects


PROBLEMS = {
    "5x10x176": Problem(0, 5, 10, 176, density=0.5),
    "8x15x150-uneven": Problem(1, 8, 15, 150, density=0.3, vary_samples=True),
    "12x20x120": Problem(2, 12, 20, 120, density=0.15),
    "40x12x100": Problem(3, 40, 12, 100, density=0.3),
    "6x39x176": Problem(4, 6, 39, 176, density=0.06),
    "5x10x176-bottom": Problem(1, 5, 10, 176, factor=3.0),
}


def objective(precisions, covs, n_samples, alpha) -> float:
    weights = n_samples / n_samples.sum()
    return ours.group_sparse_scores(precisions, weights, covs, alpha)[1]


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def fitted(request):
    problem = PROBLEMS[request.param]
    subjects = problem.subjects()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = nilearn_gsc.GroupSparseCovarianceCV().fit(subjects)
        estimate = ours.GroupSparseCovarianceCV().fit(subjects)
    return request.param, subjects, reference, estimate


def test_cv_choices_match(fitted):
    name, subjects, reference, estimate = fitted
    expected = np.array(reference.cv_alphas_)
    actual = np.array(estimate.cv_alphas_)
    assert actual.shape == expected.shape
    assert np.abs(actual / expected - 1).max() <= 1e-9
    np.testing.assert_allclose(estimate.cv_scores_, reference.cv_scores_, rtol=1e-8)
    assert estimate.alpha_ == pytest.approx(reference.alpha_, rel=1e-12)
    covs, n_samples = ours.empirical_covariances(subjects)
    alpha_max = ours.compute_alpha_max(covs, n_samples)[0]
    if name.endswith("bottom"):
        # CV chose the bottom of the first grid and refined below it
        assert min(estimate.cv_alphas_) < 0.01 * alpha_max * (1 - 1e-9)
    print(
        f"\n{name}: {len(actual)} alphas, alpha_={estimate.alpha_:.6g} "
        f"({estimate.alpha_ / alpha_max:.4f} alpha_max), max rel alpha diff "
        f"{np.abs(actual / expected - 1).max():.1e}, max score diff "
        f"{np.abs(estimate.cv_scores_ - reference.cv_scores_).max():.1e}"
    )


def test_final_estimate_matches(fitted):
    name, subjects, reference, estimate = fitted
    np.testing.assert_allclose(estimate.covariances_, reference.covariances_)
    assert estimate.precisions_.shape == reference.precisions_.shape
    support = estimate.precisions_ != 0
    np.testing.assert_array_equal(support, reference.precisions_ != 0)
    difference = np.abs(estimate.precisions_ - reference.precisions_).max()
    assert difference <= 1e-3
    covs, n_samples = ours.empirical_covariances(subjects)
    mine = objective(estimate.precisions_, covs, n_samples, estimate.alpha_)
    theirs = objective(reference.precisions_, covs, n_samples, reference.alpha_)
    assert abs(mine - theirs) <= 1e-6 * abs(theirs)
    print(
        f"\n{name}: support density {support.mean():.3f}, max |precision diff| "
        f"{difference:.1e}, objective rel diff {abs(mine / theirs - 1):.1e}"
    )


@pytest.mark.parametrize("fraction", [0.3, 0.05])
def test_functional_api_at_tight_tolerance(fraction):
    subjects = Problem(5, 6, 15, 160, density=0.3, vary_samples=True).subjects()
    covs, n_samples = ours.empirical_covariances(subjects)
    alpha = fraction * ours.compute_alpha_max(covs, n_samples)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_covs, expected = nilearn_gsc.group_sparse_covariance(
            subjects, alpha, max_iter=500, tol=1e-7
        )
    actual_covs, actual = ours.group_sparse_covariance(
        subjects, alpha, max_iter=500, tol=1e-7
    )
    np.testing.assert_allclose(actual_covs, expected_covs, rtol=1e-12, atol=1e-14)
    assert np.abs(actual - expected).max() <= 1e-5
    np.testing.assert_array_equal(actual != 0, expected != 0)
    assert ours.compute_alpha_max(covs, n_samples) == pytest.approx(
        nilearn_gsc.compute_alpha_max(covs, n_samples), rel=1e-12
    )
    print(f"\ntight tol, {fraction} alpha_max: {np.abs(actual - expected).max():.1e}")
