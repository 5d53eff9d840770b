"""The group-stage task functions: files in, npz and relmat TSVs out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparseconn.errors import InputError
from sparseconn.io import read_unit_timeseries
from sparseconn.steps.group import (
    run_graph_lasso,
    run_group_sparse_covariance,
    run_stability_selection,
    split_sizes,
)

REGIONS = ["L Aud", "R Aud", "Striate", "DMN"]


def _timeseries(folder, rng, subjects, regions=REGIONS, n_samples=60):
    precision = np.eye(len(regions)) + 0.4 * np.diag(np.ones(len(regions) - 1), 1)
    precision = (precision + precision.T) / 2 + 0.3 * np.eye(len(regions))
    covariance = np.linalg.inv(precision)
    paths = []
    for subject in subjects:
        data = rng.multivariate_normal(np.zeros(len(regions)), covariance, n_samples)
        data = (data - data.mean(0)) / data.std(0, ddof=1)
        path = folder / f"sub-{subject}_timeseries.tsv"
        pd.DataFrame(data, columns=regions).to_csv(path, sep="\t", index=False)
        paths.append(path)
    return paths


def test_group_sparse_writes_npz_and_relmats(tmp_path, rng):
    subjects = ["01", "02", "03"]
    series = _timeseries(tmp_path, rng, subjects)
    covs = [tmp_path / f"{s}_cov.tsv" for s in subjects]
    precs = [tmp_path / f"{s}_prec.tsv" for s in subjects]
    run_group_sparse_covariance(series, subjects, tmp_path / "g.npz", covs, precs)
    with np.load(tmp_path / "g.npz") as group:
        assert group["covariances"].shape == (3, 4, 4)
        assert group["precisions"].shape == (3, 4, 4)
        assert list(group["subjects"]) == subjects
        assert list(group["regions"]) == REGIONS
        assert group["alpha"] > 0 and group["alpha"] in group["cv_alphas"]
        assert len(group["cv_scores"]) == len(group["cv_alphas"])
        first_precision = group["precisions"][0]
    relmat = pd.read_csv(precs[0], sep="\t")
    assert list(relmat.columns) == ["Node", *REGIONS]
    assert list(relmat["Node"]) == REGIONS
    np.testing.assert_allclose(relmat[REGIONS].to_numpy(), first_precision, rtol=1e-9)


def test_group_sparse_rejects_different_atlases(tmp_path, rng):
    first = _timeseries(tmp_path / ".", rng, ["01"])
    other = tmp_path / "other"
    other.mkdir()
    second = _timeseries(other, rng, ["02"], regions=["a", "b", "c", "d"])
    with pytest.raises(InputError, match="regions differ"):
        run_group_sparse_covariance(
            first + second, ["01", "02"], tmp_path / "g.npz", [], []
        )


def test_graph_lasso_writes_relmats_and_npz(tmp_path, rng):
    (series,) = _timeseries(tmp_path, rng, ["07"], n_samples=120)
    cov, prec, npz = (tmp_path / name for name in ("c.tsv", "p.tsv", "g.npz"))
    run_graph_lasso(series, cov, prec, npz, subject="07")
    with np.load(npz) as result:
        assert str(result["subject"]) == "07"
        np.testing.assert_allclose(
            result["covariance"] @ result["precision"], np.eye(4), atol=1e-3
        )
    assert list(pd.read_csv(cov, sep="\t")["Node"]) == REGIONS
    run_graph_lasso(series, cov, prec, None, subject="07")  # relmats only


def test_split_sizes_groups_consecutive_files():
    files = ["a", "b", "c", "d"]
    assert split_sizes(files, None) == files
    assert split_sizes(files, [1, 2, 1]) == ["a", ["b", "c"], "d"]
    with pytest.raises(ValueError, match="do not split 4 files"):
        split_sizes(files, [2, 1])
    with pytest.raises(ValueError):
        split_sizes(files, [4, 0])


def test_runs_of_a_unit_are_concatenated_in_order(tmp_path, rng):
    first, second, other = _timeseries(tmp_path, rng, ["r1", "r2", "s2"])
    signals, regions = read_unit_timeseries([[first, second], other])
    assert regions == REGIONS
    assert [s.shape for s in signals] == [(120, 4), (60, 4)]
    expected = np.vstack([pd.read_csv(p, sep="\t").to_numpy() for p in (first, second)])
    np.testing.assert_array_equal(signals[0], expected)


def test_runs_with_other_regions_are_rejected(tmp_path, rng):
    (first,) = _timeseries(tmp_path, rng, ["r1"])
    (second,) = _timeseries(tmp_path, rng, ["x"], REGIONS[::-1])
    with pytest.raises(InputError, match="regions differ"):
        read_unit_timeseries([[first, second]])


def test_group_sparse_takes_units_of_different_lengths(tmp_path, rng):
    paths = _timeseries(tmp_path, rng, ["a1", "a2", "b"])
    units = ["sub-a", "sub-b"]
    covs = [tmp_path / f"{u}_cov.tsv" for u in units]
    precs = [tmp_path / f"{u}_prec.tsv" for u in units]
    run_group_sparse_covariance(
        split_sizes(paths, [2, 1]), units, tmp_path / "g.npz", covs, precs
    )
    with np.load(tmp_path / "g.npz") as group:
        assert list(group["subjects"]) == units
        assert group["precisions"].shape == (2, 4, 4)
    first = pd.read_csv(covs[0], sep="\t", index_col=0).to_numpy()
    both = np.vstack([pd.read_csv(p, sep="\t").to_numpy() for p in paths[:2]])
    # the unit's covariance is estimated from its 120 concatenated samples
    assert np.allclose(np.diag(first), np.diag(np.cov(both.T, bias=True)), atol=0.3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graph_lasso_makes_scikit_learns_choices(tmp_path, monkeypatch, seed):
    # The rule's graph lasso runs graph_lasso_cv: scikit-learn's GraphicalLassoCV
    # choices (same alpha and grid, scores within 1e-6, precision within 1e-8).
    from sparseconn import graph_lasso

    rng = np.random.default_rng(seed)
    regions = [f"r{i}" for i in range(12)]
    (series,) = _timeseries(tmp_path, rng, ["07"], regions=regions, n_samples=88)
    calls = []
    original = graph_lasso.graph_lasso_cv
    monkeypatch.setattr(
        graph_lasso,
        "graph_lasso_cv",
        lambda signals: calls.append(signals.shape) or original(signals),
    )
    results = {}
    for name, restated in (("ours", None), ("scikit-learn", ())):
        if restated is not None:
            monkeypatch.setattr(graph_lasso, "RESTATED_VERSIONS", restated)
        npz = tmp_path / f"{name}.npz"
        run_graph_lasso(
            series, tmp_path / "c.tsv", tmp_path / "p.tsv", npz, subject="07"
        )
        with np.load(npz) as result:
            results[name] = {key: result[key] for key in result.files}
    assert calls == [(88, 12)]  # ours once; the fallback never
    ours, reference = results["ours"], results["scikit-learn"]
    assert ours["alpha"] == pytest.approx(reference["alpha"], rel=1e-12)
    np.testing.assert_allclose(ours["cv_alphas"], reference["cv_alphas"], rtol=1e-12)
    np.testing.assert_allclose(ours["cv_scores"], reference["cv_scores"], atol=1e-6)
    scale = np.abs(reference["precision"]).max()
    np.testing.assert_allclose(
        ours["precision"], reference["precision"], rtol=0, atol=1e-8 * scale
    )


def test_true_precision_over_kept_regions_is_the_marginal_model(tmp_path):
    """Over a subset of the regions, the truth is inv(covariance subset)."""
    from sparseconn.steps.science import _true_precision

    rng = np.random.default_rng(3)
    factor = rng.standard_normal((4, 4))
    covariance = factor @ factor.T + 4 * np.eye(4)
    path = tmp_path / "truth.npz"
    np.savez(
        path,
        covariance=covariance,
        precision=np.linalg.inv(covariance),
        regions=np.array(["a", "b", "c", "d"]),
    )
    np.testing.assert_array_equal(
        _true_precision(path, ["a", "b", "c", "d"]), np.linalg.inv(covariance)
    )
    kept = _true_precision(path, ["a", "c", "d"])
    np.testing.assert_allclose(
        kept, np.linalg.inv(covariance[np.ix_([0, 2, 3], [0, 2, 3])]), rtol=1e-12
    )


# ---------------------------------------------------------------- stability


def _stability_run(tmp_path, rng, subjects=("01", "02", "03"), **settings):
    series = _timeseries(tmp_path, rng, list(subjects), n_samples=80)
    group = tmp_path / "g.npz"
    run_group_sparse_covariance(
        series,
        list(subjects),
        group,
        [tmp_path / f"{s}_cov.tsv" for s in subjects],
        [tmp_path / f"{s}_prec.tsv" for s in subjects],
    )
    out = {
        "npz": tmp_path / "s.npz",
        "probabilities": [tmp_path / f"{s}_prob.tsv" for s in subjects],
        "precisions": [tmp_path / f"{s}_stable.tsv" for s in subjects],
        "sidecars": [tmp_path / "prob.json", tmp_path / "stable.json"],
    }
    run_stability_selection(
        series,
        list(subjects),
        group,
        out["npz"],
        out["probabilities"],
        out["precisions"],
        None,
        out["sidecars"],
        atlas="test",
        **{"n_resamples": 10, "n_blocks": 4, **settings},
    )
    return out, group


def test_stability_selection_writes_npz_relmats_and_sidecars(tmp_path, rng):
    out, group = _stability_run(tmp_path, rng)
    with np.load(out["npz"]) as result:
        probabilities = result["max_probabilities"]
        support = result["support"]
        stable = result["stable_precisions"]
        assert list(result["regions"]) == REGIONS
        assert result["probabilities"].shape == (result["alphas"].size, 4, 4)
        assert int(result["n_resamples"]) == 10
        assert stable.shape == result["ebic_precisions"].shape == (3, 4, 4)
        ebic_alpha = float(result["ebic_alpha"])
        bound = float(result["false_edges_bound"])
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_array_equal(support, probabilities >= 0.9)
    # the refit is exactly zero off the stable set
    off = ~(support | np.eye(4, dtype=bool))
    assert (stable[:, off] == 0).all()
    for k in range(3):
        relmat = pd.read_csv(out["precisions"][k], sep="\t")
        assert list(relmat["Node"]) == REGIONS
        assert list(relmat.columns) == ["Node", *REGIONS]
        np.testing.assert_allclose(relmat[REGIONS].to_numpy(), stable[k], rtol=1e-9)
        probability = pd.read_csv(out["probabilities"][k], sep="\t")
        assert list(probability["Node"]) == REGIONS
        np.testing.assert_allclose(probability[REGIONS].to_numpy(), probabilities)
    probability_sidecar, precision_sidecar = (
        json.loads(path.read_text()) for path in out["sidecars"]
    )
    for sidecar in (probability_sidecar, precision_sidecar):
        fields = sidecar["StabilitySelection"]
        assert fields["Threshold"] == 0.9
        assert fields["NResamples"] == 10
        assert fields["Scheme"] == "time"
        assert fields["FalseEdgesBound"] == bound
        assert fields["AlphaEBIC"] == ebic_alpha
        with np.load(group) as fit:
            assert fields["AlphaCV"] == float(fit["alpha"])
        assert fields["SelectionRange"][0] >= fields["SelectionRange"][1]
        assert sidecar["Atlas"] == "test"
        for key in (
            "Measure",
            "Weighted",
            "Directed",
            "ValidDiagonal",
            "StorageFormat",
        ):
            assert key in sidecar
    assert probability_sidecar["NonNegative"] is True
    assert probability_sidecar["ValidDiagonal"] is False
    assert precision_sidecar["Measure"] == "precision"
    assert "maximum-likelihood" in precision_sidecar["Refit"]


def test_stability_selection_is_deterministic(tmp_path, rng):
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    out_a, _ = _stability_run(first, np.random.default_rng(3))
    out_b, _ = _stability_run(second, np.random.default_rng(3))
    assert out_a["npz"].read_bytes() == out_b["npz"].read_bytes()
    for first, second in zip(out_a["sidecars"], out_b["sidecars"], strict=True):
        # the same but for the sources (files of other folders)
        a, b = json.loads(first.read_text()), json.loads(second.read_text())
        assert {**a, "Sources": None} == {**b, "Sources": None}


@pytest.mark.parametrize(
    ("settings", "subjects", "message"),
    [
        ({"n_blocks": 50}, ("01", "02"), r"stability.n_blocks 50: too few volumes"),
        ({"scheme": "subjects"}, ("01", "02", "03"), r"stability.scheme subjects"),
    ],
)
def test_stability_selection_names_the_key_of_bad_settings(
    tmp_path, rng, settings, subjects, message
):
    with pytest.raises(InputError, match=message):
        _stability_run(tmp_path, rng, subjects, **settings)
    assert not (tmp_path / "s.npz").exists()
