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
