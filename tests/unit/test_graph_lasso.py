"""Pieces of the graph lasso cross-validation (sparseconn.graph_lasso).

The whole against scikit-learn's GraphicalLassoCV is in
tests/parity/test_graph_lasso_cv.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.covariance import graphical_lasso
from sklearn.covariance import log_likelihood as sklearn_log_likelihood
from sklearn.model_selection import KFold

from sparseconn import graph_lasso as graph_lasso_module
from sparseconn.graph_lasso import (
    alpha_max,
    empirical_covariance,
    graph_lasso,
    graph_lasso_cv,
    graph_lasso_cv_many,
    kfold_splits,
    log_likelihood,
)


@pytest.mark.parametrize("n_samples", [5, 7, 40, 88, 89])
def test_kfold_splits_are_scikit_learns(n_samples):
    ours = kfold_splits(n_samples, 5)
    theirs = list(KFold(5).split(np.zeros((n_samples, 1))))
    assert len(ours) == len(theirs)
    for (train, test), (their_train, their_test) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(train, their_train)
        np.testing.assert_array_equal(test, their_test)


def test_empirical_covariance_and_alpha_max(rng):
    x = rng.standard_normal((30, 4)) + 5.0
    covariance = empirical_covariance(x)
    np.testing.assert_allclose(covariance, np.cov(x.T, bias=True), rtol=1e-12)
    off_diagonal = np.abs(covariance - np.diag(np.diag(covariance)))
    assert alpha_max(covariance) == off_diagonal.max()


def test_log_likelihood_is_minus_infinity_off_the_cone(rng):
    x = rng.standard_normal((50, 3))
    test_covariance = empirical_covariance(x)
    precision = np.linalg.inv(empirical_covariance(rng.standard_normal((50, 3))))
    assert log_likelihood(test_covariance, precision) == pytest.approx(
        sklearn_log_likelihood(test_covariance, precision), rel=1e-12
    )
    indefinite = np.diag([1.0, -1.0, 1.0])
    assert log_likelihood(test_covariance, indefinite) == -np.inf
    batch = log_likelihood(test_covariance, np.stack([precision, indefinite]))
    assert batch.shape == (2,) and batch[1] == -np.inf


def test_single_fit_is_scikit_learns(rng):
    x = rng.standard_normal((60, 8))
    x[:, 1] += 0.8 * x[:, 0]
    covariance = empirical_covariance(x)
    alpha = 0.3 * alpha_max(covariance)
    ours_covariance, ours_precision, n_iter = graph_lasso(covariance, alpha)
    their_covariance, their_precision, _, their_n_iter = graphical_lasso(
        covariance, alpha, return_costs=True, return_n_iter=True
    )
    np.testing.assert_allclose(ours_precision, their_precision, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours_covariance, their_covariance, rtol=0, atol=1e-10)
    assert n_iter == their_n_iter
    assert (ours_precision[0, 1] != 0) and (ours_precision == ours_precision.T).all()


@pytest.mark.parametrize(
    ("signals", "message"),
    [
        (np.zeros(10), r"signals: expected \(samples, regions\)"),
        (np.ones((10, 1)), "signals: need at least 2 regions, got 1"),
        (np.ones((4, 3)), "signals: 4 samples, fewer than the 5 folds"),
        (np.full((10, 3), np.nan), "signals: contains NaN or infinite values"),
        (
            np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1], [0, 0]]),
            r"no two regions covary \(alpha_max = 0\)",
        ),
    ],
)
def test_bad_signals_are_one_clear_error(signals, message):
    with pytest.raises(ValueError, match=message):
        graph_lasso_cv(signals)
    # in a batch, the message names the input
    good = np.random.default_rng(0).standard_normal((30, 3))
    detail = message.removeprefix("signals: ")
    with pytest.raises(ValueError, match=rf"^signals\[1\]: .*{detail}"):
        graph_lasso_cv_many([good, signals])


def _common_factor(n_samples: int, n_regions: int, seed: int) -> np.ndarray:
    """A strong shared factor: fits that fail (-inf scores) at small alphas."""
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((n_samples, 1))
    return 3 * factor * rng.uniform(0.5, 1.0, n_regions) + rng.standard_normal(
        (n_samples, n_regions)
    )


@pytest.mark.parametrize("batch_entries", [2**20, 400])
def test_many_cross_validations_side_by_side_are_each_alone_bit_for_bit(
    rng, monkeypatch, batch_entries
):
    # inputs of the same region count share batches: all of them by default; with
    # 400 entries, 2 cross-validations of 6 regions (5 folds) or 1 of 8 a batch
    monkeypatch.setattr(graph_lasso_module, "_MAX_BATCH_ENTRIES", batch_entries)
    # different sample and region counts, fits that fail, and one input twice
    x = rng.standard_normal((60, 6))
    x[:, 1] += 0.8 * x[:, 0]
    signals = [
        x,
        _common_factor(10, 12, seed=0),
        rng.standard_normal((45, 8)) @ np.triu(np.ones((8, 8))) / 3,
        x[:31],
        _common_factor(30, 6, seed=1),
        x,
    ]
    alone = [graph_lasso_cv(s) for s in signals]
    assert np.isinf(alone[1].cv_scores).any() and np.isinf(alone[4].cv_scores).any()
    together = graph_lasso_cv_many(signals)
    assert len(together) == len(signals)
    for ours, reference in zip(together, alone, strict=True):
        for field in dataclasses.fields(reference):
            np.testing.assert_array_equal(
                getattr(ours, field.name), getattr(reference, field.name)
            )
    assert graph_lasso_cv_many([]) == []
