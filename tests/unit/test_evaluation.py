"""Scoring functions of the science check (sparseconn.evaluation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparseconn import evaluation
from sparseconn.evaluation import (
    ESTIMATORS,
    compare_models,
    contiguous_folds,
    gaussian_log_likelihood,
    recovery_scores,
    relative_frobenius_error,
    support_scores,
)


def _chain_precision(p: int, weight: float = 0.4) -> np.ndarray:
    precision = np.eye(p)
    for i in range(p - 1):
        precision[i, i + 1] = precision[i + 1, i] = weight
    return precision


def test_identical_supports_score_one():
    truth = _chain_precision(5)
    estimate = truth * 0.5 + np.diag(np.ones(5))  # same zeros, other values
    scores = support_scores(estimate, truth)
    assert scores == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "n_estimated": 4,
        "n_true": 4,
        "top_k_precision": 1.0,
    }


def test_hand_checked_support_scores():
    truth = _chain_precision(4)  # edges (0,1) (1,2) (2,3)
    estimate = np.eye(4)
    estimate[0, 1] = estimate[1, 0] = 0.2  # a hit
    estimate[0, 3] = estimate[3, 0] = -0.1  # a false edge
    scores = support_scores(estimate, truth)
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    # the 3 strongest entries: (0,1) 0.2 true, (0,3) 0.1 false, then a zero
    assert scores["top_k_precision"] == pytest.approx(1 / 3)


def test_disjoint_and_empty_supports():
    truth = _chain_precision(4)
    assert support_scores(np.eye(4), truth)["f1"] == 0.0
    assert support_scores(np.eye(4), truth)["precision"] == 1.0
    disjoint = np.eye(4)
    disjoint[0, 2] = disjoint[2, 0] = 0.3
    assert support_scores(disjoint, truth)["f1"] == 0.0


def test_relative_frobenius_error():
    truth = _chain_precision(3)
    assert relative_frobenius_error(truth, truth) == 0.0
    assert relative_frobenius_error(2 * truth, truth) == pytest.approx(1.0)


def test_true_covariance_has_the_best_likelihood_on_large_samples(rng):
    precision = _chain_precision(6)
    covariance = np.linalg.inv(precision)
    test = rng.multivariate_normal(np.zeros(6), covariance, size=20000)
    true_score = gaussian_log_likelihood(test, precision)
    assert true_score > gaussian_log_likelihood(test, np.eye(6))
    assert true_score > gaussian_log_likelihood(test, _chain_precision(6, -0.4))
    # and equals the mean of scipy's per-sample log-density (data centred)
    from scipy.stats import multivariate_normal

    centred = test - test.mean(axis=0)
    expected = multivariate_normal(np.zeros(6), covariance).logpdf(centred).mean()
    assert true_score == pytest.approx(expected, rel=1e-10)


def test_contiguous_folds_partition_time():
    folds = contiguous_folds(11, 3)
    assert [len(f) for f in folds] == [4, 4, 3]
    np.testing.assert_array_equal(np.concatenate(folds), np.arange(11))
    with pytest.raises(ValueError, match="n_blocks"):
        contiguous_folds(10, 6)


def test_compare_models_table(rng):
    precision = _chain_precision(5)
    covariance = np.linalg.inv(precision)
    series = [
        rng.multivariate_normal(np.zeros(5), covariance, size=120) for _ in range(3)
    ]
    table = compare_models(series, ["a", "b", "c"], n_blocks=2)
    assert list(table.columns) == ["subject", "estimator", "fold", "log_likelihood"]
    assert len(table) == 3 * len(ESTIMATORS) * 2
    assert table["log_likelihood"].notna().all()
    assert list(table["estimator"].unique()) == list(ESTIMATORS)
    # graph lassos in two worker processes: the very same numbers
    parallel = compare_models(series, ["a", "b", "c"], n_blocks=2, n_jobs=2)
    pd.testing.assert_frame_equal(parallel, table, check_exact=True)


def test_recovery_scores_table():
    truth = _chain_precision(4)
    table = recovery_scores(
        {"good": [truth, truth], "empty": [np.eye(4), np.eye(4)]},
        [truth, truth],
        ["01", "02"],
    )
    assert list(table["f1"]) == [1.0, 1.0, 0.0, 0.0]
    assert list(table["subject"]) == ["01", "02", "01", "02"]


def test_graph_lasso_precision_is_our_cross_validation(rng, monkeypatch):
    import sparseconn.evaluation as evaluation
    from sparseconn.graph_lasso import graph_lasso_cv, graph_lasso_cv_many

    calls = []

    def spy(signals):
        calls.append([x.shape for x in signals])
        return graph_lasso_cv_many(signals)

    monkeypatch.setattr(evaluation, "graph_lasso_cv_many", spy)
    x = rng.multivariate_normal(np.zeros(6), np.linalg.inv(_chain_precision(6)), 80)
    precision = evaluation.graph_lasso_precision(x)
    assert calls == [[(80, 6)]]
    np.testing.assert_array_equal(precision, graph_lasso_cv(x).precision)


def test_compare_models_graph_lasso_rows_equal_scikit_learns(rng, monkeypatch):
    """Same alpha on every training set, held-out log-likelihoods within 1e-6."""
    from sklearn.covariance import GraphicalLassoCV

    import sparseconn.evaluation as evaluation
    from sparseconn.graph_lasso import graph_lasso_cv

    covariance = np.linalg.inv(_chain_precision(8, weight=0.35))
    series = [rng.multivariate_normal(np.zeros(8), covariance, 100) for _ in range(3)]
    ours = compare_models(series, ["a", "b", "c"], n_blocks=2)
    with monkeypatch.context() as patch:
        patch.setattr(
            evaluation,
            "graph_lasso_precisions",
            lambda signals: [GraphicalLassoCV().fit(x).precision_ for x in signals],
        )
        reference = compare_models(series, ["a", "b", "c"], n_blocks=2)
    is_graph_lasso = ours["estimator"] == "graph_lasso"
    pd.testing.assert_frame_equal(ours[~is_graph_lasso], reference[~is_graph_lasso])
    pd.testing.assert_frame_equal(
        ours[is_graph_lasso], reference[is_graph_lasso], check_exact=False, atol=1e-6
    )
    for x in series:
        for fold in contiguous_folds(x.shape[0], 2):
            train = np.delete(x, fold, axis=0)
            assert graph_lasso_cv(train).alpha == GraphicalLassoCV().fit(train).alpha_


def test_graph_lasso_precision_falls_back_to_scikit_learn_it_does_not_restate(
    rng, monkeypatch
):
    from sklearn.covariance import GraphicalLassoCV

    from sparseconn import graph_lasso

    x = rng.standard_normal((60, 6))
    assert graph_lasso.restates_installed_scikit_learn("1.9.1")
    assert not graph_lasso.restates_installed_scikit_learn("1.10.0")
    monkeypatch.setattr(graph_lasso, "RESTATED_VERSIONS", ())
    monkeypatch.setattr(
        evaluation,
        "graph_lasso_cv_many",
        lambda _: pytest.fail("not a restated version"),
    )
    expected = GraphicalLassoCV().fit(x).precision_
    np.testing.assert_array_equal(evaluation.graph_lasso_precision(x), expected)
    fallback = evaluation.graph_lasso_precisions([x, x[:40]])
    np.testing.assert_array_equal(fallback[0], expected)
    np.testing.assert_array_equal(
        fallback[1], GraphicalLassoCV().fit(x[:40]).precision_
    )


def _three_subjects(rng) -> list[np.ndarray]:
    covariance = np.linalg.inv(_chain_precision(7, weight=0.35))
    return [rng.multivariate_normal(np.zeros(7), covariance, n) for n in (90, 101, 120)]


def test_heldout_subjects_batches_every_graph_lasso_and_equals_one_at_a_time(
    rng, monkeypatch
):
    from sparseconn.graph_lasso import graph_lasso_cv_many

    series, subjects = _three_subjects(rng), ["a", "b", "c"]
    one_at_a_time = [
        evaluation.heldout_single_subject(x, s, 2)
        for x, s in zip(series, subjects, strict=True)
    ]
    whole = [evaluation.single_subject_precisions(x) for x in series]
    calls = []

    def spy(signals):
        calls.append([x.shape[0] for x in signals])
        return graph_lasso_cv_many(signals)

    monkeypatch.setattr(evaluation, "graph_lasso_cv_many", spy)
    table, precisions = evaluation.heldout_subjects(
        series, subjects, 2, whole_series=True
    )
    # one batched call: both training parts of every subject (fold 1 trains on
    # block 2), then the whole series
    assert calls == [[45, 45, 50, 51, 60, 60, 90, 101, 120]]
    pd.testing.assert_frame_equal(
        table, pd.concat(one_at_a_time, ignore_index=True), check_exact=True
    )
    assert len(precisions) == 3
    for batched, alone in zip(precisions, whole, strict=True):
        assert list(batched) == list(alone)
        for name in alone:
            np.testing.assert_array_equal(batched[name], alone[name])
    calls.clear()
    table_only, none = evaluation.heldout_subjects(series, subjects, 2)
    assert calls == [[45, 45, 50, 51, 60, 60]] and none == []
    pd.testing.assert_frame_equal(table_only, table, check_exact=True)


def test_heldout_single_subject_takes_fitted_graph_lasso_precisions(rng):
    x = _three_subjects(rng)[0]
    table = evaluation.heldout_single_subject(x, "a", 2, [np.eye(7), 2 * np.eye(7)])
    graph_lasso = table[table["estimator"] == "graph_lasso"]
    blocks = contiguous_folds(x.shape[0], 2)
    expected = [
        gaussian_log_likelihood(x[blocks[0]], np.eye(7)),
        gaussian_log_likelihood(x[blocks[1]], 2 * np.eye(7)),
    ]
    assert list(graph_lasso["log_likelihood"]) == expected
    with pytest.raises(ValueError, match="graph_lasso: 1 precisions for 2 folds"):
        evaluation.heldout_single_subject(x, "a", 2, [np.eye(7)])
