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
    read_unit_timeseries,
    write_npz,
    write_tsv,
)

logger = logging.getLogger(__name__)


def run_heldout_group_sparse(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    out_tsv: PathLike,
    *,
    fold: int,
    n_blocks: int = 2,
    group_sparse: dict | None = None,
    regions_table: PathLike | None = None,
) -> None:
    """Held-out log-likelihood of the group-sparse fit of one fold (every subject).

    See :func:`sparseconn.evaluation.heldout_group_sparse`.
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.evaluation import heldout_group_sparse

    signals, _ = read_unit_timeseries(timeseries, regions_table)
    with threadpool_limits(limits=1):
        table = heldout_group_sparse(signals, subjects, fold, n_blocks, group_sparse)
    write_tsv(table, out_tsv)


def run_heldout_stability(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    out_tsv: PathLike,
    *,
    fold: int,
    n_blocks: int = 2,
    stability: dict | None = None,
    final_fit: dict | None = None,
    regions_table: PathLike | None = None,
) -> None:
    """Held-out log-likelihood of the stable set and of the EBIC alpha, one fold.

    ``stability``: the config's ``stability`` settings (without ``enabled``);
    ``final_fit``: ``tol`` and ``max_iter`` of the EBIC fit. See
    :func:`sparseconn.evaluation.heldout_stability`.
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.errors import InputError
    from sparseconn.evaluation import heldout_stability

    options = dict(stability or {})
    gamma = options.pop("ebic_gamma", 0.5)
    options.setdefault("n_jobs", 1)
    signals, _ = read_unit_timeseries(timeseries, regions_table)
    try:
        with threadpool_limits(limits=1):
            table = heldout_stability(
                signals,
                subjects,
                fold,
                n_blocks,
                options,
                gamma,
                **(final_fit or {}),
            )
    except ValueError as error:
        raise InputError(
            ", ".join(map(str, timeseries)),
            f"stability selection of fold {fold}'s training parts: {error}",
        ) from error
    write_tsv(table, out_tsv)


def run_heldout_subjects(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    out_tsv: PathLike,
    out_npz: PathLike | None = None,
    *,
    n_blocks: int = 2,
    regions_table: PathLike | None = None,
) -> None:
    """Held-out log-likelihood of each subject's own estimators, every fold.

    ``timeseries``: one element per subject (a file, or its runs to concatenate).
    See :func:`sparseconn.evaluation.heldout_subjects` (every graph lasso
    cross-validation of the batch side by side). With ``out_npz``, also each
    estimator's precision on the whole series (``subjects`` and one stacked
    array per estimator), for the ground-truth recovery.
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.evaluation import heldout_subjects

    signals, _ = read_unit_timeseries(timeseries, regions_table)
    with threadpool_limits(limits=1):
        table, fits = heldout_subjects(
            signals, subjects, n_blocks, whole_series=bool(out_npz)
        )
    write_tsv(table, out_tsv)
    if out_npz:
        arrays = {name: np.stack([fit[name] for fit in fits]) for name in fits[0]}
        write_npz(out_npz, subjects=np.asarray(subjects), **arrays)


def run_model_comparison(
    tables: Sequence[PathLike],
    out_tsv: PathLike,
    out_figure: PathLike,
) -> None:
    """Gather the held-out tables: the tidy table (subject, estimator, fold,
    log_likelihood) and a figure of paired per-subject lines.
    """
    from sparseconn.evaluation import sorted_comparison
    from sparseconn.plotting import plot_model_comparison

    table = sorted_comparison(
        [pd.read_csv(path, sep="\t", dtype={"subject": str}) for path in tables]
    )
    write_tsv(table, out_tsv)
    plot_model_comparison(table, out_figure)


def run_recovery_scores(
    group_npz: PathLike,
    single_npzs: Sequence[PathLike],
    truths: Sequence[PathLike],
    out_tsv: PathLike,
    out_figure: PathLike,
    stability_npz: PathLike | None = None,
) -> None:
    """Support precision/recall/F1 and relative Frobenius error against the truth.

    Estimates: the group-sparse precisions (group ``.npz``), with
    ``stability_npz`` (rule stability_selection's) the precisions refitted on
    the stable set (``group_sparse_stable``) and those at the extended-BIC
    alpha (``group_sparse_ebic``), and each subject's own estimators on its
    whole series (graph lasso, Ledoit-Wolf, empirical: the ``single_npzs`` of
    :func:`run_heldout_subjects`, in the group's order); truths: the synthetic
    subjects' ``precision``, in the same order.
    """
    from sparseconn.evaluation import ESTIMATORS, recovery_scores
    from sparseconn.plotting import plot_recovery

    with np.load(group_npz) as group:
        subjects = [str(s) for s in group["subjects"]]
        estimates = {"group_sparse": list(group["precisions"])}
        regions = [str(r) for r in group["regions"]]
    order = list(ESTIMATORS)
    if stability_npz is not None:
        with np.load(stability_npz) as stability:
            if [str(s) for s in stability["subjects"]] != subjects or [
                str(r) for r in stability["regions"]
            ] != regions:
                raise ValueError(
                    f"{stability_npz}: other subjects or regions than {group_npz}"
                )
            estimates["group_sparse_stable"] = list(stability["stable_precisions"])
            estimates["group_sparse_ebic"] = list(stability["ebic_precisions"])
        order[1:1] = ["group_sparse_stable", "group_sparse_ebic"]
    single_subjects: list[str] = []
    for path in single_npzs:
        with np.load(path) as batch:
            single_subjects += [str(s) for s in batch["subjects"]]
            for name in batch.files:
                if name != "subjects":
                    estimates.setdefault(name, []).extend(batch[name])
    if single_subjects != subjects:
        raise ValueError(
            f"the per-subject fits cover {single_subjects}, the group {subjects}"
        )
    estimates = {name: estimates[name] for name in order}
    true_precisions = [_true_precision(path, regions) for path in truths]
    table = recovery_scores(estimates, true_precisions, subjects)
    write_tsv(table, out_tsv)
    plot_recovery(table, out_figure)


def _true_precision(path: PathLike, regions: Sequence[str]) -> np.ndarray:
    """A subject's true precision over ``regions`` (all, or those the group kept).

    Over a subset of the regions the truth is the inverse of the covariance of
    those regions (the marginal model), not a block of the full precision.
    """
    with np.load(path) as truth:
        names = [str(r) for r in truth["regions"]]
        if names == list(regions):
            return truth["precision"]
        index = [names.index(name) for name in regions]
        return np.linalg.inv(truth["covariance"][np.ix_(index, index)])
