"""Science-check steps: held-out likelihoods of the estimators, recovery of the truth.

One function per rule, paths in, files out; outputs are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sparseconn.io import (
    PathLike,
    read_timeseries,
    read_unit_timeseries,
    write_tsv,
)

logger = logging.getLogger(__name__)


def run_model_comparison(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    out_tsv: PathLike,
    out_figure: PathLike,
    *,
    n_blocks: int = 2,
    group_sparse: dict | None = None,
    n_jobs: int = 1,
) -> None:
    """Held-out log-likelihood of group-sparse, graph lasso, Ledoit-Wolf, empirical.

    Writes the tidy table (subject, estimator, fold, log_likelihood) and a
    figure of paired per-subject lines.
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.evaluation import compare_models
    from sparseconn.plotting import plot_model_comparison

    signals, _ = read_unit_timeseries(timeseries)
    with threadpool_limits(limits=1):
        table = compare_models(signals, subjects, n_blocks, group_sparse, n_jobs)
    write_tsv(table, out_tsv)
    plot_model_comparison(table, out_figure)


def run_recovery_scores(
    group_npz: PathLike,
    graph_lasso_relmats: Sequence[PathLike],
    timeseries: Sequence[PathLike],
    truths: Sequence[PathLike],
    out_tsv: PathLike,
    out_figure: PathLike,
) -> None:
    """Support precision/recall/F1 and relative Frobenius error against the truth.

    Estimates: the group-sparse precisions (group ``.npz``), each subject's graph
    lasso precision (``relmat`` TSVs), and Ledoit-Wolf and empirical precisions of
    the subject's signals; truths: the synthetic subjects' ``precision``.
    """
    from sklearn.covariance import LedoitWolf, empirical_covariance

    from sparseconn.evaluation import recovery_scores
    from sparseconn.plotting import plot_recovery

    with np.load(group_npz) as group:
        subjects = [str(s) for s in group["subjects"]]
        group_sparse = list(group["precisions"])
    series = [read_timeseries(path).to_numpy() for path in timeseries]
    estimates = {
        "group_sparse": group_sparse,
        "graph_lasso": [
            pd.read_csv(path, sep="\t", index_col=0).to_numpy()
            for path in graph_lasso_relmats
        ],
        "ledoit_wolf": [LedoitWolf().fit(x).precision_ for x in series],
        "empirical": [np.linalg.inv(empirical_covariance(x)) for x in series],
    }
    true_precisions = []
    for path in truths:
        with np.load(path) as truth:
            true_precisions.append(truth["precision"])
    table = recovery_scores(estimates, true_precisions, subjects)
    write_tsv(table, out_tsv)
    plot_recovery(table, out_figure)
