"""Our graph lasso cross-validation against scikit-learn's ``GraphicalLassoCV()``.

On every case both must choose the same alpha on the same grid, with the same
failed (-inf) fits, and agree on the numbers far inside scikit-learn's own
tolerance (its fits stop at a duality gap of 1e-4): test log-likelihoods within
1e-6 and precisions within 1e-8 of their largest entry (observed: 1e-12 and
1e-10 or less). Cases: the 20 training halves (two contiguous blocks, as the
science check splits them) of the default synthetic run's 10 subjects, generated
and extracted as the workflow does; seeded Gaussian data at 10, 39 and 60 regions
and 40, 88 and 176 samples (60 x 40: singular training covariances, fits that
fail at small alphas); nearly singular and strong-common-factor data. Every
case is also fitted in one call of ``graph_lasso_cv_many`` (all cases side by
side, those of the same region count in shared batches), whose results must
equal ``graph_lasso_cv`` alone bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import GraphicalLassoCV
from threadpoolctl import threadpool_limits

from sparseconn import synthetic
from sparseconn.evaluation import contiguous_folds
from sparseconn.graph_lasso import (
    GraphLassoCVResult,
    graph_lasso_cv,
    graph_lasso_cv_many,
    restates_installed_scikit_learn,
)
from sparseconn.regions import AtlasSpec
from sparseconn.steps.subject import run_extract_timeseries

pytestmark = [
    pytest.mark.skipif(
        not restates_installed_scikit_learn(),
        reason="this scikit-learn is not restated: GraphicalLassoCV itself is used",
    ),
    pytest.mark.parity,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

SCORE_TOLERANCE = 1e-6
PRECISION_TOLERANCE = 1e-8  # relative to the largest precision entry


def sparse_gaussian(n_regions: int, n_samples: int, seed: int) -> np.ndarray:
    """Z-scored samples of a random sparse precision (10% of edges)."""
    rng = np.random.default_rng(seed)
    upper = np.triu_indices(n_regions, 1)
    edges = rng.random(upper[0].size) < 0.1
    values = rng.uniform(0.2, 0.5, edges.size) * rng.choice([-1.0, 1.0], edges.size)
    precision = np.zeros((n_regions, n_regions))
    precision[upper] = np.where(edges, values, 0.0)
    precision += precision.T
    shift = max(0.0, -np.linalg.eigvalsh(precision).min()) + 0.5
    precision += shift * np.eye(n_regions)
    chol = np.linalg.cholesky(np.linalg.inv(precision))
    x = rng.standard_normal((n_samples, n_regions)) @ chol.T
    return (x - x.mean(0)) / x.std(0)


def nearly_singular() -> np.ndarray:
    """Two regions equal to 1e-4: condition number of the covariance ~5e8."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((88, 10))
    x[:, 1] = x[:, 0] + 1e-4 * rng.standard_normal(88)
    return x


def common_factor() -> np.ndarray:
    """A strong factor shared by 20 regions (dense precision, small best alpha)."""
    rng = np.random.default_rng(9)
    factor = rng.standard_normal((88, 1))
    return 3 * factor * rng.uniform(0.5, 1.0, 20) + rng.standard_normal((88, 20))


SEEDED = {f"gaussian-{p}x{n}": (p, n) for p in (10, 39, 60) for n in (40, 88, 176)}


def assert_same_choice(
    signals: np.ndarray, batched: GraphLassoCVResult | None = None
) -> None:
    """Our choice is scikit-learn's; ``batched`` (from a batch) is ours alone."""
    with threadpool_limits(limits=1):
        reference = GraphicalLassoCV().fit(signals)
        ours = graph_lasso_cv(signals)
    if batched is not None:
        for field in dataclasses.fields(ours):
            np.testing.assert_array_equal(
                getattr(batched, field.name), getattr(ours, field.name)
            )
    alphas = reference.cv_results_["alphas"]
    np.testing.assert_allclose(ours.cv_alphas, alphas, rtol=1e-12, atol=0)
    chosen = int(np.flatnonzero(alphas == reference.alpha_)[0])
    assert ours.alpha == pytest.approx(reference.alpha_, rel=1e-12)
    assert ours.cv_alphas[chosen] == ours.alpha
    n_folds = sum(key.startswith("split") for key in reference.cv_results_)
    scores = np.column_stack(
        [reference.cv_results_[f"split{k}_test_score"] for k in range(n_folds)]
    )
    finite = np.isfinite(scores)
    np.testing.assert_array_equal(np.isfinite(ours.cv_scores), finite)
    np.testing.assert_allclose(
        ours.cv_scores[finite], scores[finite], rtol=0, atol=SCORE_TOLERANCE
    )
    scale = np.abs(reference.precision_).max()
    assert np.abs(ours.precision - reference.precision_).max() <= (
        PRECISION_TOLERANCE * scale
    )
    np.testing.assert_allclose(
        ours.covariance, reference.covariance_, rtol=0, atol=PRECISION_TOLERANCE
    )
    np.testing.assert_array_equal(ours.location, reference.location_)
    assert ours.n_iter == reference.n_iter_


@pytest.fixture(scope="module")
def default_run_halves(tmp_path_factory) -> list[np.ndarray]:
    """Training halves of the default synthetic run's 10 subjects (20 arrays)."""
    folder = tmp_path_factory.mktemp("default_run")
    maps, labels, truth = (
        folder / "maps.nii.gz",
        folder / "labels.tsv",
        folder / "truth.npz",
    )
    synthetic.generate_atlas(maps, labels, truth, n_regions=39, seed=0)
    halves = []
    for index, subject in enumerate(synthetic.subject_ids(10)):
        func, confounds = folder / f"{subject}.nii.gz", folder / f"{subject}.tsv"
        synthetic.generate_subject(
            func,
            confounds,
            folder / f"{subject}_truth.npz",
            atlas_truth_path=truth,
            subject_index=index,
            subject=subject,
            seed=0,
            n_volumes=176,
            t_r=2.5,
            n_file_confounds=6,
        )
        high_variance = folder / f"{subject}_hv.tsv"
        series = folder / f"{subject}_timeseries.tsv"
        run_extract_timeseries(
            func,
            [AtlasSpec("synthetic", str(maps), str(labels))],
            [confounds],
            [series],
            [folder / f"{subject}_timeseries.json"],
            high_variance,
            subject=subject,
        )
        func.unlink()
        signals = pd.read_csv(series, sep="\t").to_numpy()
        blocks = contiguous_folds(signals.shape[0], 2)
        halves += [signals[blocks[1]], signals[blocks[0]]]
    return halves


def all_cases(default_run_halves: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every case of this file, by name."""
    cases = {f"half-{k}": x for k, x in enumerate(default_run_halves)}
    for case, (n_regions, n_samples) in SEEDED.items():
        cases[case] = sparse_gaussian(n_regions, n_samples, seed=n_regions + n_samples)
    cases["nearly-singular"] = nearly_singular()
    cases["common-factor"] = common_factor()
    cases["fewer-samples"] = sparse_gaussian(60, 40, seed=100)
    return cases


@pytest.fixture(scope="module")
def batched(default_run_halves) -> dict[str, GraphLassoCVResult]:
    """``graph_lasso_cv_many`` of every case at once, by name."""
    cases = all_cases(default_run_halves)
    with threadpool_limits(limits=1):
        results = graph_lasso_cv_many(list(cases.values()))
    return dict(zip(cases, results, strict=True))


@pytest.mark.parametrize("half", range(20))
def test_default_run_training_halves(default_run_halves, batched, half):
    signals = default_run_halves[half]
    assert signals.shape == (88, 39)
    assert_same_choice(signals, batched[f"half-{half}"])


@pytest.mark.parametrize("case", sorted(SEEDED))
def test_seeded_gaussian(case, batched):
    n_regions, n_samples = SEEDED[case]
    assert_same_choice(
        sparse_gaussian(n_regions, n_samples, seed=n_regions + n_samples),
        batched[case],
    )


def test_nearly_singular(batched):
    assert_same_choice(nearly_singular(), batched["nearly-singular"])


def test_common_factor_with_failed_fits(batched):
    signals = common_factor()
    with threadpool_limits(limits=1):
        scores = graph_lasso_cv(signals).cv_scores
    assert np.isinf(scores).any()  # the case exercises scikit-learn's failures
    assert_same_choice(signals, batched["common-factor"])


def test_fewer_samples_than_regions(batched):
    signals = sparse_gaussian(60, 40, seed=100)
    with threadpool_limits(limits=1):
        scores = graph_lasso_cv(signals).cv_scores
    assert np.isinf(scores).any()
    assert_same_choice(signals, batched["fewer-samples"])
