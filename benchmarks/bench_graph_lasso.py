"""Graph lasso cross-validation: sparseconn vs scikit-learn, side by side in one run.

The science check's ``heldout_subjects`` jobs fit ``GraphicalLassoCV()`` on each
subject's two training halves and whole series: 30 cross-validations in the
default run (10 subjects; 88 and 176 samples x 39 regions), 5 subjects per job.
This benchmark times that workload (BLAS on one thread, as the jobs run it) four
ways: scikit-learn's ``GraphicalLassoCV()`` one at a time;
``sparseconn.graph_lasso.graph_lasso_cv`` one at a time; and
``graph_lasso_cv_many`` in batches of ``--subjects-per-call`` subjects (the
jobs' batches, default 5) and all at once. It prints each total (the best of
``--repeat`` rounds, each running every way once), its speed-up over
scikit-learn and over the per-call ``graph_lasso_cv``, how many alphas equal
scikit-learn's, whether the batched results equal the per-call ones bit for
bit, and the 1-minute load average (other processes on the machine distort the
ratios).

The signals are the default synthetic run's: generated and extracted here, as
the workflow does (about a minute), or read from a run's results folder
(``--results results``: its ``sub-*/func/*_timeseries.tsv``).

``--converged`` also fits scikit-learn's ``GraphicalLassoCV`` with converged
fits (``tol`` and ``enet_tol`` 1e-10, ``max_iter`` 2000: the exact optimum at
every alpha, which any exact solver would reach) on each training half, and
counts the halves where it chooses another alpha than the default one: why the
science check restates scikit-learn's inexact algorithm instead of solving the
graph lasso exactly (about 80 s more).

Usage: python benchmarks/bench_graph_lasso.py [--repeat 3] [--results DIR]
    [--subjects 10] [--subjects-per-call 5] [--converged]
"""

from __future__ import annotations

import argparse
import dataclasses
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
from sparseconn.graph_lasso import (
    GraphLassoCVResult,
    graph_lasso_cv,
    graph_lasso_cv_many,
)
from sparseconn.regions import AtlasSpec
from sparseconn.steps.subject import run_extract_timeseries


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
            run_extract_timeseries(
                func,
                [AtlasSpec("synthetic", str(maps), str(labels))],
                [confounds],
                [series],
                [folder / "series.json"],
                high_variance,
                subject=subject,
            )
            signals.append(pd.read_csv(series, sep="\t").to_numpy())
    return signals


def results_signals(results: Path) -> list[np.ndarray]:
    """Region signals of a run's results folder, in subject order."""
    files = sorted(results.glob("sub-*/func/*_timeseries.tsv"))
    if not files:
        raise SystemExit(f"--results {results}: no sub-*/func/*_timeseries.tsv")
    return [pd.read_csv(path, sep="\t").to_numpy() for path in files]


def science_check_inputs(signals: list[np.ndarray]) -> list[np.ndarray]:
    """Each subject's training parts of the science check's 2 folds, then its
    whole series: the inputs of its graph lasso cross-validations, in order."""
    inputs = []
    for x in signals:
        blocks = contiguous_folds(x.shape[0], 2)
        inputs += [x[blocks[1]], x[blocks[0]], x]
    return inputs


def best_of(repeat: int, ways: dict, inputs: list[np.ndarray]) -> dict:
    """Each way's smallest wall time over ``repeat`` rounds, and its results.

    ``ways``: name -> ``fit_all(inputs)``. Each round runs every way once, so
    that a change of the machine's load falls on all of them.
    """
    times: dict[str, list[float]] = {name: [] for name in ways}
    results = {}
    for _ in range(repeat):
        for name, fit_all in ways.items():
            start = time.perf_counter()
            results[name] = fit_all(inputs)
            times[name].append(time.perf_counter() - start)
    return {name: (min(times[name]), results[name]) for name in ways}


def in_batches(size: int):
    """``graph_lasso_cv_many`` on ``size`` inputs at a time."""

    def fit_all(inputs: list[np.ndarray]) -> list[GraphLassoCVResult]:
        results = []
        for start in range(0, len(inputs), size):
            results += graph_lasso_cv_many(inputs[start : start + size])
        return results

    return fit_all


def same_bits(ours: GraphLassoCVResult, other: GraphLassoCVResult) -> bool:
    return all(
        np.array_equal(getattr(ours, field.name), getattr(other, field.name))
        for field in dataclasses.fields(ours)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes per timing")
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument(
        "--subjects-per-call",
        type=int,
        default=5,
        help="subjects per batched call (model_comparison.subjects_per_job)",
    )
    parser.add_argument("--results", type=Path, help="read a run's time series")
    parser.add_argument(
        "--converged",
        action="store_true",
        help="count the training halves where converged fits choose another alpha",
    )
    args = parser.parse_args()

    from sklearn.covariance import GraphicalLassoCV

    signals = (
        results_signals(args.results)
        if args.results
        else generated_signals(args.subjects)
    )
    inputs = science_check_inputs(signals)
    shapes = sorted({x.shape for x in inputs})
    print(
        f"{len(inputs)} graph lasso cross-validations of {len(signals)} subjects "
        f"({' '.join(f'{n}x{p}' for n, p in shapes)}: each subject's 2 training "
        f"halves and whole series), best of {args.repeat}, BLAS on 1 thread"
    )
    ways = {
        "scikit-learn GraphicalLassoCV()": lambda xs: [
            GraphicalLassoCV().fit(x) for x in xs
        ],
        "graph_lasso_cv, one per call": lambda xs: [graph_lasso_cv(x) for x in xs],
        f"graph_lasso_cv_many, {args.subjects_per_call} subjects per call": (
            in_batches(3 * args.subjects_per_call)
        ),
        "graph_lasso_cv_many, all in one call": graph_lasso_cv_many,
    }
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        timings = best_of(args.repeat, ways, inputs)
    sklearn_time, sklearn_fits = timings.pop("scikit-learn GraphicalLassoCV()")
    per_call_time, per_call = timings["graph_lasso_cv, one per call"]
    width = max(map(len, ways))
    print(
        f"{'':<{width}} {'time':>7} {'vs sklearn':>10} {'vs per call':>11}"
        "  same alpha as sklearn  bit for bit per call"
    )
    print(f"{'scikit-learn GraphicalLassoCV()':<{width}} {sklearn_time:>6.2f}s")
    for name, (elapsed, fits) in timings.items():
        matched = sum(
            ours.alpha == theirs.alpha_
            for ours, theirs in zip(fits, sklearn_fits, strict=True)
        )
        identical = all(map(same_bits, fits, per_call))
        print(
            f"{name:<{width}} {elapsed:>6.2f}s {sklearn_time / elapsed:>9.2f}x "
            f"{per_call_time / elapsed:>10.2f}x  {matched:>9}/{len(inputs)}"
            f"{'yes' if identical else 'NO':>22}"
        )
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}", flush=True)
    if args.converged:
        converged_alphas(inputs, sklearn_fits)


#: scikit-learn's GraphicalLassoCV with every fit converged (the exact optimum).
CONVERGED = {"tol": 1e-10, "enet_tol": 1e-10, "max_iter": 2000}


def converged_alphas(inputs: list[np.ndarray], default_fits: list) -> None:
    """Print the training halves where converged fits choose another alpha."""
    from sklearn.covariance import GraphicalLassoCV

    # science_check_inputs: per subject, the second half, the first, the whole
    halves = [
        (subject, half, first + offset)
        for subject, first in enumerate(range(0, len(inputs), 3), 1)
        for offset, half in ((0, 2), (1, 1))
    ]
    changed = []
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        for subject, half, k in halves:
            alpha = GraphicalLassoCV(**CONVERGED).fit(inputs[k]).alpha_
            if alpha != default_fits[k].alpha_:
                changed.append((subject, half, default_fits[k].alpha_, alpha))
    print(
        f"GraphicalLassoCV({', '.join(f'{k}={v}' for k, v in CONVERGED.items())}) "
        f"chooses another alpha than GraphicalLassoCV() on {len(changed)} of "
        f"{len(halves)} training halves"
        + "".join(
            f"\n    subject {subject}, half {half}: {a:.6g} -> {b:.6g}"
            for subject, half, a, b in changed
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
