"""Stability selection vs one cross-validation, timed side by side in one run.

Fits ``GroupSparseCovarianceCV().fit`` and ``stability_selection`` (100 halves,
defaults) on the same subjects, interleaved over ``--repeat`` rounds, and prints
the best time of each and their ratio, then, when the truth is at hand, each
choice's support recovery (F1, edges, false edges) and the stable set's bound.

Subjects: the cleaned time series of a workflow run (``--results``, default
``results``: ``sub-*/func/*_timeseries.tsv``, the truth in ``--truth``, default
``resources/synthetic``), e.g. after ``snakemake --cores 2`` on the default
config; without them, a seeded planted model of the default geometry (10
subjects, 39 regions, 176 volumes).

Usage: python benchmarks/bench_stability.py [--repeat 3] [--results results]
[--truth resources/synthetic] [--n-jobs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sparseconn.covariance import GroupSparseCovarianceCV, group_sparse_covariance
from sparseconn.evaluation import support_scores
from sparseconn.stability import ebic_alpha, stability_selection

sys.path.insert(0, str(Path(__file__).parent))
from bench_group_sparse import make_subjects


def load(results: Path, truth: Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The run's time series and the first subject's true precision, if any."""
    files = sorted(results.glob("sub-*/func/*_timeseries.tsv"))
    if not files:
        print(f"no time series under {results}: planted model, 10 x 39 x 176")
        return make_subjects(10), None
    subjects = [pd.read_csv(f, sep="\t").to_numpy() for f in files]
    truths = sorted(truth.glob("sub-*_truth.npz"))
    precision = np.load(truths[0])["precision"] if truths else None
    print(f"{len(files)} subjects from {results}")
    return subjects, precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--truth", type=Path, default=Path("resources/synthetic"))
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    subjects, truth = load(args.results, args.truth)
    print(
        f"{len(subjects)} subjects x {subjects[0].shape[1]} regions x "
        f"{subjects[0].shape[0]} volumes; load average {os.getloadavg()[0]:.1f}"
    )
    cv_times, stability_times = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        cv = GroupSparseCovarianceCV().fit(subjects)
        cv_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = stability_selection(subjects, n_resamples=100, n_jobs=args.n_jobs)
        stability_times.append(time.perf_counter() - start)
    cv_time, stability_time = min(cv_times), min(stability_times)
    print(f"GroupSparseCovarianceCV().fit      best {cv_time:.2f} s")
    print(
        f"stability_selection, 100 halves    best {stability_time:.2f} s "
        f"({result.alphas.size} alphas fitted, n_jobs={args.n_jobs})"
    )
    print(f"ratio stability / CV: {stability_time / cv_time:.2f}")
    print(
        f"stable set: {result.n_edges} edges at pi={result.threshold}, "
        f"q={result.q:.1f}, bound on E[false edges] {result.false_edges_bound:.2f}"
    )
    if truth is None:
        return
    rows, cols = np.triu_indices(truth.shape[0], 1)
    absent = truth[rows, cols] == 0
    alpha, _ = ebic_alpha(subjects)
    _, ebic_precisions = group_sparse_covariance(subjects, alpha, max_iter=100)
    for name, estimate in (
        ("CV", cv.precisions_[..., 0]),
        ("EBIC", ebic_precisions[..., 0]),
        ("stable set", result.support.astype(float)),
    ):
        scores = support_scores(estimate, truth)
        false = int(((estimate[rows, cols] != 0) & absent).sum())
        print(
            f"{name:>10}: F1 {scores['f1']:.3f}, {scores['n_estimated']} edges "
            f"for {scores['n_true']} true, {false} false"
        )


if __name__ == "__main__":
    main()
