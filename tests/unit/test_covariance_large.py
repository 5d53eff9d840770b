"""Group-sparse covariance at hundreds of regions: screening and the large sweep.

The large path (screening into independent blocks, :func:`_sweep_large` for big
blocks) is switched on by size; here the size threshold and the chunk width are
lowered so that small problems, solved in milliseconds, exercise it, and compared
with the coordinate path (:func:`_sweep`) on the same problems.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sparseconn import covariance as gsc
from sparseconn.covariance import (
    GroupSparseCovarianceCV,
    empirical_covariances,
    group_sparse_scores,
)
from sparseconn.synthetic import group_sparse_samples


def sparse_subjects(
    seed: int, n_subjects: int, n_regions: int, n_samples: int = 150
) -> list[np.ndarray]:
    """Gaussian samples of a random sparse precision shared by all subjects."""
    return group_sparse_samples(
        seed, n_subjects, n_regions, n_samples, density=0.2, margin=0.5
    )[0]


def block_subjects(seed: int, sizes: list[int], n_subjects: int = 5) -> list:
    """Subjects whose regions form independent groups (block-diagonal model)."""
    parts = [
        sparse_subjects(seed + index, n_subjects, size)
        for index, size in enumerate(sizes)
    ]
    return [np.hstack([part[k] for part in parts]) for k in range(n_subjects)]


def cross_norm(covs, weights, blocks) -> float:
    """Largest ``||w S[i, j, :]||`` over pairs in different blocks."""
    norms = np.sqrt(((covs * weights) ** 2).sum(axis=-1))
    labels = np.zeros(covs.shape[0], dtype=int)
    for index, block in enumerate(blocks):
        labels[block] = index
    return float(norms[labels[:, None] != labels[None, :]].max())


def solve(covs, weights, alpha, large: bool, monkeypatch, tol=1e-8, init=None):
    """One fit by the coordinate path or (large=True) by the large path."""
    with monkeypatch.context() as patch:
        patch.setattr(gsc, "_LARGE_REGIONS", 6 if large else 10**9)
        patch.setattr(gsc, "_CHUNK", 4)
        return gsc._solve(
            np.ascontiguousarray(covs[:, :, None]),
            weights[None],
            alpha,
            500,
            tol,
            init=init,
            debug=True,
        )


def test_components_split_exactly_at_the_cross_block_norm():
    subjects = block_subjects(0, [7, 5, 8])
    covs, n_samples = empirical_covariances(subjects)
    weights = n_samples / n_samples.sum()
    blocks = [np.arange(7), np.arange(7, 12), np.arange(12, 20)]
    threshold = cross_norm(covs, weights, blocks)
    norms = gsc._weighted_norms(covs[:, :, None], weights[None])
    # at the largest cross-block norm, no cross-block edge: the blocks (or finer)
    split = gsc._components(norms, threshold)
    assert len(split) >= 3
    for component in split:
        assert any(set(component) <= set(block) for block in blocks)
    # a hair below it, that edge joins two blocks
    joined = gsc._components(norms, threshold * (1 - 1e-9))
    assert len(joined) < len(split)


def test_block_diagonal_optimum_iff_cross_norms_below_alpha(monkeypatch):
    # KKT: block diagonal at the optimum iff every cross-block ||w S|| <= alpha;
    # checked with the coordinate path, which knows nothing of screening
    subjects = block_subjects(1, [6, 6])
    covs, n_samples = empirical_covariances(subjects)
    weights = n_samples / n_samples.sum()
    blocks = [np.arange(6), np.arange(6, 12)]
    threshold = cross_norm(covs, weights, blocks)
    above = solve(covs, weights, threshold * 1.001, False, monkeypatch)
    assert not above.precisions[:6, 6:].any()
    below = solve(covs, weights, threshold * 0.999, False, monkeypatch)
    assert below.precisions[:6, 6:].any()


@pytest.mark.parametrize("fraction", [0.7, 0.4, 0.15, 0.04])
@pytest.mark.parametrize("structure", ["blocks", "connected"])
def test_large_path_reaches_the_coordinate_optimum(structure, fraction, monkeypatch):
    if structure == "blocks":
        subjects = block_subjects(2, [9, 1, 12, 3])
    else:
        subjects = sparse_subjects(3, 6, 21)
    covs, n_samples = empirical_covariances(subjects)
    weights = n_samples / n_samples.sum()
    alpha = fraction * gsc.compute_alpha_max(covs, n_samples)[0]
    exact = solve(covs, weights, alpha, False, monkeypatch)
    large = solve(covs, weights, alpha, True, monkeypatch)
    assert exact.converged.all() and large.converged.all()
    ours = large.precisions[:, :, 0]
    theirs = exact.precisions[:, :, 0]
    objective = group_sparse_scores(ours, weights, covs, alpha)[1]
    reference = group_sparse_scores(theirs, weights, covs, alpha)[1]
    assert abs(objective - reference) <= 1e-6 * abs(reference)
    # same support: every entry zero in one is zero in the other (no tolerance:
    # both follow the same visits, the soft-threshold zeros exactly)
    np.testing.assert_array_equal(ours != 0, theirs != 0)
    assert np.abs(ours - theirs).max() <= 1e-9
    # the same iterates, up to rounding: the same number of sweeps
    assert large.n_iter[0] == exact.n_iter[0]


def test_screened_sweep_is_the_whole_sweep(monkeypatch):
    # one sweep from a block-diagonal start: block by block = all at once
    subjects = block_subjects(4, [5, 1, 7])
    covs, n_samples = empirical_covariances(subjects)
    weights = n_samples / n_samples.sum()
    blocks = [np.arange(5), np.arange(5, 6), np.arange(6, 13)]
    alpha = cross_norm(covs, weights, blocks) * 1.01
    start = solve(covs, weights, alpha, False, monkeypatch, tol=None, init=None)
    problem = np.ascontiguousarray(covs[:, :, None])
    weighted = gsc._weighted_rows(problem, weights[None])
    diag = np.ascontiguousarray(problem[np.arange(13), np.arange(13)])
    results = []
    for screened in (False, True):
        omega = start.precisions.copy()
        sigma = start.inverses.copy()
        if screened:
            change = gsc._screened_sweep(
                omega, sigma, weighted, diag, weights[None], alpha, blocks
            )
        else:
            change = gsc._sweep(omega, sigma, weighted, diag, weights[None], alpha)
        results.append((omega, sigma, change))
    for whole, by_block in zip(*[list(r) for r in results], strict=True):
        np.testing.assert_allclose(by_block, whole, rtol=1e-12, atol=1e-14)


def test_start_that_does_not_split_is_not_screened(monkeypatch):
    subjects = block_subjects(5, [6, 7])
    covs, n_samples = empirical_covariances(subjects)
    weights = n_samples / n_samples.sum()
    alpha = cross_norm(covs, weights, [np.arange(6), np.arange(6, 13)]) * 1.01
    init = np.linalg.inv(np.moveaxis(covs, -1, 0) + 0.5 * np.eye(13))
    init = np.moveaxis(init, 0, -1)[:, :, None].copy()  # dense across blocks
    seen = []
    screened_sweep = gsc._screened_sweep

    def spy(*args):
        seen.append(len(args[-1]))
        return screened_sweep(*args)

    monkeypatch.setattr(gsc, "_screened_sweep", spy)
    exact = solve(covs, weights, alpha, False, monkeypatch, init=init)
    large = solve(covs, weights, alpha, True, monkeypatch, init=init)
    assert seen and set(seen) == {1}  # one block: the whole matrix
    np.testing.assert_allclose(large.precisions, exact.precisions, atol=1e-9)


def test_size_rule_chooses_the_path(monkeypatch):
    # below _LARGE_REGIONS the coordinate sweep runs alone (nilearn's bits);
    # from it on, the screened sweep, with _sweep_large for the big blocks
    calls = []
    for name in ("_sweep", "_sweep_large", "_screened_sweep"):
        function = getattr(gsc, name)

        def spy(*args, _name=name, _function=function):
            calls.append((_name, args[0].shape[0]))
            return _function(*args)

        monkeypatch.setattr(gsc, name, spy)
    size = gsc._LARGE_REGIONS
    for n_regions in (size - 1, size):
        calls.clear()
        covs, n_samples = empirical_covariances(sparse_subjects(6, 3, n_regions))
        weights = n_samples / n_samples.sum()
        alpha = 0.3 * gsc.compute_alpha_max(covs, n_samples)[0]
        gsc._solve(covs[:, :, None].copy(), weights[None], alpha, 1, None)
        if n_regions < size:
            assert calls == [("_sweep", n_regions)]
        else:
            assert calls[0] == ("_screened_sweep", n_regions)
            blocks = calls[1:]
            assert blocks
            assert all((name == "_sweep_large") == (m >= size) for name, m in blocks)


def test_cross_validation_chooses_the_same_alpha(monkeypatch):
    subjects = block_subjects(7, [10, 4, 14], n_subjects=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with monkeypatch.context() as patch:
            patch.setattr(gsc, "_LARGE_REGIONS", 10**9)
            exact = GroupSparseCovarianceCV().fit(subjects)
        with monkeypatch.context() as patch:
            patch.setattr(gsc, "_LARGE_REGIONS", 6)
            patch.setattr(gsc, "_CHUNK", 4)
            large = GroupSparseCovarianceCV().fit(subjects)
    assert large.alpha_ == exact.alpha_
    assert large.cv_alphas_ == exact.cv_alphas_
    np.testing.assert_allclose(large.cv_scores_, exact.cv_scores_, rtol=1e-10)
    np.testing.assert_array_equal(large.precisions_ != 0, exact.precisions_ != 0)
    assert np.abs(large.precisions_ - exact.precisions_).max() <= 1e-9
