"""Group-sparse covariance CV: sparseconn vs nilearn, side by side in one run.

Draws seeded synthetic subjects with the real data's geometry (39 regions by
default, ``--regions`` for others; 176 samples, z-scored): Gaussian samples of
subject-specific precisions sharing one random sparse support (a group-sparse
model, as the method assumes). Then fits ``GroupSparseCovarianceCV()`` with
default parameters from both packages on 10 and on 40 subjects, and prints each
time (the best of ``--repeat`` runs), the ratio, whether the two chose the same
alpha and support, and the 1-minute load average before the row's timings (other
processes on the machine distort the ratio: nilearn's time grows more than ours
when the cores are busy). ``--n-jobs`` sets sparseconn's ``n_jobs`` (default 1,
the estimator's default, as nilearn's).

nilearn runs in a child process stopped after ``--nilearn-budget`` seconds (one
run, printed as ``>budget``); a size at least as large as one where it ran out
(no fewer regions and subjects) is not tried (printed as ``skipped``).

Usage: python benchmarks/bench_group_sparse.py [--repeat 3] [--subjects 10 40]
[--regions 39] [--n-jobs 1] [--nilearn-budget 300]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue as queue_module
import time
import warnings

import numpy as np

from sparseconn.covariance import GroupSparseCovarianceCV
from sparseconn.synthetic import group_sparse_samples


def make_subjects(
    n_subjects: int,
    n_regions: int = 39,
    n_samples: int = 176,
    density: float = 0.08,
    seed: int = 0,
) -> list[np.ndarray]:
    """Seeded subjects drawn from a group-sparse Gaussian model, z-scored."""
    return group_sparse_samples(
        seed, n_subjects, n_regions, n_samples, density=density
    )[0]


def best_of(repeat: int, fit):
    """Smallest wall time of ``repeat`` calls of ``fit`` and the last estimator."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        estimator = fit()
        times.append(time.perf_counter() - start)
    return min(times), estimator


def nilearn_fit(subjects: list[np.ndarray], repeat: int, budget: float):
    """Best time of nilearn's CV fit and its estimator, or None past ``budget``.

    Runs in a forked child process, killed when the runs take longer than
    ``budget`` seconds in all.
    """
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child() -> None:
        from nilearn.connectome import GroupSparseCovarianceCV as NilearnCV

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds, estimator = best_of(repeat, lambda: NilearnCV().fit(subjects))
        queue.put((seconds, estimator.alpha_, estimator.precisions_))

    process = context.Process(target=child)
    process.start()
    try:
        result = queue.get(timeout=budget)
    except queue_module.Empty:
        result = None
    if result is None:
        process.kill()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing")
    parser.add_argument("--subjects", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--regions", type=int, nargs="+", default=[39])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1, help="sparseconn's n_jobs")
    parser.add_argument(
        "--nilearn-budget",
        type=float,
        default=300.0,
        help="seconds after which nilearn's fit is stopped (default 300)",
    )
    args = parser.parse_args()

    jobs = "" if args.n_jobs == 1 else f" (sparseconn n_jobs={args.n_jobs})"
    print(
        f"GroupSparseCovarianceCV().fit, 176 samples, best of {args.repeat}{jobs}; "
        f"nilearn stopped after {args.nilearn_budget:.0f} s"
    )
    header = (
        f"{'regions':>7} {'subjects':>8} {'sparseconn':>11} {'nilearn':>9} "
        f"{'ratio':>7}  same  load"
    )
    print(header)
    out_of_budget: list[tuple[int, int]] = []
    for n_regions in args.regions:
        for n_subjects in args.subjects:
            subjects = make_subjects(n_subjects, n_regions=n_regions, seed=args.seed)
            load = os.getloadavg()[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours_time, ours = best_of(
                    args.repeat,
                    lambda s=subjects: GroupSparseCovarianceCV(n_jobs=args.n_jobs).fit(
                        s
                    ),
                )
            skip = any(
                n_regions >= regions and n_subjects >= count
                for regions, count in out_of_budget
            )
            theirs = (
                None
                if skip
                else nilearn_fit(subjects, args.repeat, args.nilearn_budget)
            )
            if theirs is None:
                if not skip:
                    out_of_budget.append((n_regions, n_subjects))
                label = "skipped" if skip else f">{args.nilearn_budget:.0f}s"
                print(
                    f"{n_regions:>7} {n_subjects:>8} {ours_time:>10.2f}s "
                    f"{label:>9} {'':>7}  {'':4}  {load:.2f}",
                    flush=True,
                )
                continue
            theirs_time, alpha, precisions = theirs
            same = (
                abs(ours.alpha_ / alpha - 1) <= 1e-12  # grids agree to the last bits
                and np.array_equal(ours.precisions_ != 0, precisions != 0)
                and np.abs(ours.precisions_ - precisions).max() <= 1e-3
            )
            print(
                f"{n_regions:>7} {n_subjects:>8} {ours_time:>10.2f}s "
                f"{theirs_time:>8.2f}s {theirs_time / ours_time:>6.1f}x  "
                f"{'yes' if same else 'NO ':3}  {load:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
