"""Graph lasso cross-validation: sparseconn vs scikit-learn, side by side in one run.

The science check fits ``GraphicalLassoCV()`` on the training half of each subject
and fold: 20 fits of 88 samples x 39 regions in the default run (10 subjects, 2
folds). This benchmark times scikit-learn's ``GraphicalLassoCV()`` and
``sparseconn.graph_lasso.graph_lasso_cv`` on those 20 training halves (BLAS on one
thread, as the science check runs them), prints each total (the best of
``--repeat`` runs), the ratio, whether every alpha matched, and the 1-minute load
average (other processes on the machine distort the ratio).

The signals are the default synthetic run's: generated and extracted here, as
the workflow does (about a minute), or read from a run's results folder
(``--results results``: its ``sub-*/func/*_timeseries.tsv``).

Usage: python benchmarks/bench_graph_lasso.py [--repeat 3] [--results DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sparseconn import synthetic
from sparseconn.evaluation import contiguous_folds
from sparseconn.graph_lasso import graph_lasso_cv
from sparseconn.steps.subject import run_extract_timeseries, run_high_variance_confounds


def generated_signals(n_subjects: int) -> list[np.ndarray]:
    """Cleaned region signals of the default synthetic dataset (seed 0)."""
    signals = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        maps, labels, truth = (
            folder / "maps.nii.gz",
            folder / "labels.tsv",
            folder / "truth.npz",
        )
        synthetic.generate_atlas(maps, labels, truth, n_regions=39, seed=0)
        for index, subject in enumerate(synthetic.subject_ids(n_subjects)):
            func, confounds = folder / "func.nii.gz", folder / "confounds.tsv"
            synthetic.generate_subject(
                func,
                confounds,
                folder / "subject_truth.npz",
                atlas_truth_path=truth,
                subject_index=index,
                subject=subject,
                seed=0,
            )
            high_variance, series = folder / "hv.tsv", folder / "series.tsv"
            run_high_variance_confounds(func, high_variance)
            run_extract_timeseries(
                func,
                maps,
                labels,
                [high_variance, confounds],
                series,
                folder / "series.json",
                subject=subject,
                atlas_name="synthetic",
            )
            signals.append(pd.read_csv(series, sep="\t").to_numpy())
    return signals


def results_signals(results: Path) -> list[np.ndarray]:
    """Region signals of a run's results folder, in subject order."""
    files = sorted(results.glob("sub-*/func/*_timeseries.tsv"))
    if not files:
        raise SystemExit(f"--results {results}: no sub-*/func/*_timeseries.tsv")
    return [pd.read_csv(path, sep="\t").to_numpy() for path in files]


def training_halves(signals: list[np.ndarray]) -> list[np.ndarray]:
    """Each subject's training part of each of the 2 folds of the science check."""
    halves = []
    for x in signals:
        blocks = contiguous_folds(x.shape[0], 2)
        halves += [x[blocks[1]], x[blocks[0]]]
    return halves


def best_of(repeat: int, fit, halves):
    """Smallest total wall time of ``repeat`` passes over ``halves``, and the alphas."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        alphas = [fit(x) for x in halves]
        times.append(time.perf_counter() - start)
    return min(times), alphas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes per timing")
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--results", type=Path, help="read a run's time series")
    args = parser.parse_args()

    from sklearn.covariance import GraphicalLassoCV

    signals = (
        results_signals(args.results)
        if args.results
        else generated_signals(args.subjects)
    )
    halves = training_halves(signals)
    shapes = sorted({x.shape for x in halves})
    print(
        f"GraphicalLassoCV() on {len(halves)} training halves "
        f"{' '.join(f'{n}x{p}' for n, p in shapes)}, best of {args.repeat}"
    )
    load = os.getloadavg()[0]
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        theirs_time, theirs = best_of(
            args.repeat, lambda x: GraphicalLassoCV().fit(x).alpha_, halves
        )
        ours_time, ours = best_of(
            args.repeat, lambda x: graph_lasso_cv(x).alpha, halves
        )
    matched = sum(a == b for a, b in zip(ours, theirs, strict=True))
    print(f"{'sparseconn':>11} {'sklearn':>9} {'ratio':>7}  same alpha  load")
    print(
        f"{ours_time:>10.2f}s {theirs_time:>8.2f}s {theirs_time / ours_time:>6.2f}x  "
        f"{matched}/{len(halves)} {'yes' if matched == len(halves) else 'NO'}"
        f"{'':>6}{load:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
