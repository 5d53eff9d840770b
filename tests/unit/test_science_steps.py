"""The science-check step functions: time series in, held-out tables and npz out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparseconn import evaluation
from sparseconn.io import write_tsv
from sparseconn.steps.science import run_heldout_subjects

REGIONS = ["a", "b", "c", "d", "e"]


def _write_series(path, rng, n_samples):
    precision = np.eye(5) + 0.35 * (np.eye(5, k=1) + np.eye(5, k=-1))
    data = rng.multivariate_normal(np.zeros(5), np.linalg.inv(precision), n_samples)
    pd.DataFrame(data, columns=REGIONS).to_csv(path, sep="\t", index=False)


def test_heldout_subjects_fits_the_batch_in_one_call_with_the_same_outputs(
    tmp_path, rng, monkeypatch
):
    # subject "02" has two runs, concatenated; "03" has an odd sample count
    files = {name: tmp_path / f"{name}.tsv" for name in ("01", "02a", "02b", "03")}
    for path, n_samples in zip(files.values(), (80, 50, 40, 91), strict=True):
        _write_series(path, rng, n_samples)
    timeseries = [files["01"], [files["02a"], files["02b"]], files["03"]]
    subjects = ["01", "02", "03"]
    series = [
        pd.read_csv(files["01"], sep="\t").to_numpy(),
        np.vstack([pd.read_csv(files[r], sep="\t").to_numpy() for r in ("02a", "02b")]),
        pd.read_csv(files["03"], sep="\t").to_numpy(),
    ]
    expected_tsv = tmp_path / "expected.tsv"
    write_tsv(
        pd.concat(
            [
                evaluation.heldout_single_subject(x, s, 2)
                for x, s in zip(series, subjects, strict=True)
            ],
            ignore_index=True,
        ),
        expected_tsv,
    )
    expected_fits = [evaluation.single_subject_precisions(x) for x in series]

    calls = []
    batched = evaluation.graph_lasso_cv_many

    def spy(signals):
        calls.append(len(signals))
        return batched(signals)

    monkeypatch.setattr(evaluation, "graph_lasso_cv_many", spy)
    out_tsv, out_npz = tmp_path / "batch.tsv", tmp_path / "batch.npz"
    run_heldout_subjects(timeseries, subjects, out_tsv, out_npz, n_blocks=2)
    # 3 subjects: 2 training parts each, then the whole series
    assert calls == [9]
    assert out_tsv.read_bytes() == expected_tsv.read_bytes()
    with np.load(out_npz) as fits:
        assert list(fits["subjects"]) == subjects
        for name in ("graph_lasso", "ledoit_wolf", "empirical"):
            np.testing.assert_array_equal(
                fits[name], np.stack([fit[name] for fit in expected_fits])
            )

    calls.clear()
    table_only = tmp_path / "table_only.tsv"
    run_heldout_subjects(timeseries, subjects, table_only, n_blocks=2)
    assert calls == [6]
    assert table_only.read_bytes() == expected_tsv.read_bytes()


def test_heldout_stability_scores_the_stable_set_and_the_ebic_alpha(tmp_path, rng):
    from sparseconn.steps.science import run_heldout_stability

    files = [tmp_path / f"{s}.tsv" for s in ("01", "02", "03")]
    for path in files:
        _write_series(path, rng, 80)
    out = tmp_path / "fold.tsv"
    run_heldout_stability(
        files,
        ["01", "02", "03"],
        out,
        fold=2,
        n_blocks=2,
        stability={"n_resamples": 10, "n_blocks": 4, "ebic_gamma": 0.5},
    )
    table = pd.read_csv(out, sep="\t", dtype={"subject": str})
    assert list(table.columns) == evaluation.COMPARISON_COLUMNS
    assert set(table["estimator"]) == set(evaluation.STABILITY_ESTIMATORS)
    assert (table["fold"] == 2).all() and len(table) == 6
    assert np.isfinite(table["log_likelihood"]).all()
    # the stable row is the likelihood of the refit on the training part
    series = [pd.read_csv(path, sep="\t").to_numpy() for path in files]
    parts = [evaluation._split(x, 2, 2) for x in series]
    from sparseconn.stability import stability_selection

    support = stability_selection(
        [train for train, _ in parts], n_resamples=10, n_blocks=4
    ).support
    stable = evaluation.stable_precisions([train for train, _ in parts], support)
    expected = evaluation.gaussian_log_likelihood(parts[0][1], stable[0])
    row = table[
        (table["subject"] == "01") & (table["estimator"] == "group_sparse_stable")
    ]
    # (the TSV keeps 10 significant digits)
    np.testing.assert_allclose(row["log_likelihood"], expected, rtol=1e-9)


def test_comparison_keeps_the_group_sparse_rows_together():
    rows = [
        ("01", name, 1, 0.0)
        for name in ("empirical", "group_sparse_ebic", "graph_lasso", "group_sparse")
    ] + [("01", "group_sparse_stable", 1, 0.0)]
    table = evaluation.sorted_comparison(
        [pd.DataFrame(rows, columns=evaluation.COMPARISON_COLUMNS)]
    )
    assert list(table["estimator"]) == [
        "group_sparse",
        "group_sparse_stable",
        "group_sparse_ebic",
        "graph_lasso",
        "empirical",
    ]


def test_recovery_scores_grow_the_stable_and_ebic_rows(tmp_path, rng):
    from sparseconn.steps.science import run_recovery_scores

    p, subjects = 5, ["01", "02"]
    truth_precision = np.eye(p) + 0.35 * (np.eye(p, k=1) + np.eye(p, k=-1))
    truths = []
    for s in subjects:
        path = tmp_path / f"truth_{s}.npz"
        np.savez(path, precision=truth_precision, regions=np.array(REGIONS))
        truths.append(path)
    dense = np.stack([np.linalg.inv(np.cov(rng.standard_normal((50, p)).T))] * 2)
    group = tmp_path / "group.npz"
    np.savez(group, precisions=dense, subjects=subjects, regions=REGIONS)
    single = tmp_path / "single.npz"
    np.savez(
        single,
        subjects=subjects,
        graph_lasso=dense,
        ledoit_wolf=dense,
        empirical=dense,
    )
    stable = np.stack([truth_precision] * 2)
    stability = tmp_path / "stability.npz"
    np.savez(
        stability,
        stable_precisions=stable,
        ebic_precisions=dense,
        subjects=subjects,
        regions=REGIONS,
    )
    plain, grown = tmp_path / "plain.tsv", tmp_path / "grown.tsv"
    run_recovery_scores(group, [single], truths, plain, tmp_path / "a.png")
    run_recovery_scores(group, [single], truths, grown, tmp_path / "b.png", stability)
    before = pd.read_csv(plain, sep="\t", dtype={"subject": str})
    after = pd.read_csv(grown, sep="\t", dtype={"subject": str})
    assert list(before["estimator"].unique()) == list(evaluation.ESTIMATORS)
    assert list(after["estimator"].unique()) == list(evaluation.ESTIMATOR_ORDER)
    stable_rows = after[after["estimator"] == "group_sparse_stable"]
    assert (stable_rows["f1"] == 1.0).all()  # the truth's own support
    # the other rows are unchanged
    pd.testing.assert_frame_equal(
        after[~after["estimator"].isin(evaluation.STABILITY_ESTIMATORS)].reset_index(
            drop=True
        ),
        before,
    )
