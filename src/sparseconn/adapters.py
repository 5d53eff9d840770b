"""Adapters between the workflow's rules and the package's tasks.

One function per rule with a ``run:`` block, named like the rule, called as
``adapters.<rule>(input, output, params, wildcards, log)``: it turns Snakemake's
named lists into the task's arguments and runs it with :func:`run_job` (log file,
one-line errors). Snakemake runs these jobs in threads of its own process
(``--force-use-threads``, set by the default profile), or in a job process on a
cluster. Imports are inside the functions: reading the workflow stays cheap.
"""

from __future__ import annotations

import threading
from typing import Any

from sparseconn.cli import as_list, run_job

# matplotlib is not thread-safe (its font cache, for one, is shared): figure
# jobs running in threads of one process draw one at a time, or their bytes
# could depend on which other figure was drawn beside them.
FIGURE_LOCK = threading.Lock()


def first_or_none(files: Any) -> str | None:
    """The first file of an input entry, or None when it is empty."""
    files = as_list(files)
    return files[0] if files else None


def task_params(params: Any, drop: tuple[str, ...] = ("code",)) -> dict[str, Any]:
    """A rule's params as keyword arguments of its task (without ``code``)."""
    return {key: value for key, value in params.items() if key not in drop}


def recovery_scores(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``recovery_scores``."""
    from sparseconn.tasks import run_recovery_scores

    with FIGURE_LOCK:
        run_job(
            run_recovery_scores,
            input.group,
            list(input.graph_lasso),
            list(input.timeseries),
            list(input.truths),
            output.tsv,
            output.figure,
            log=log[0],
        )


def plot_connectome(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``plot_connectome``."""
    from sparseconn.figure_tasks import run_plot_connectome

    with FIGURE_LOCK:
        run_job(
            run_plot_connectome,
            input.npz,
            input.maps,
            first_or_none(input.labels),
            output.png,
            first_or_none(output.svg),
            estimate=wildcards.estimate,
            subject=params.subject,
            edge_threshold=params.edge_threshold,
            dpi=params.dpi,
            log=log[0],
        )


def plot_matrices(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``plot_matrices``."""
    from sparseconn.figure_tasks import run_plot_matrices

    with FIGURE_LOCK:
        run_job(
            run_plot_matrices,
            input.npz,
            first_or_none(input.labels),
            as_list(output.covariance),
            as_list(output.sparsity),
            as_list(output.precision),
            estimate=wildcards.estimate,
            subject=params.subject,
            dpi=params.dpi,
            log=log[0],
        )


def plot_cv_curve(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``plot_cv_curve``."""
    from sparseconn.figure_tasks import run_plot_cv_curve

    with FIGURE_LOCK:
        run_job(
            run_plot_cv_curve,
            input.npz,
            output.png,
            first_or_none(output.svg),
            estimate=wildcards.estimate,
            dpi=params.dpi,
            log=log[0],
        )


def plot_subject_qc(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``plot_subject_qc``."""
    from sparseconn.figure_tasks import run_plot_subject_qc

    with FIGURE_LOCK:
        run_job(
            run_plot_subject_qc,
            input.confounds,
            input.timeseries,
            input.sidecar,
            output.png,
            subject=params.subject,
            n_regions=params.n_regions,
            dpi=params.dpi,
            log=log[0],
        )


def fmriprep_timeseries(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``fmriprep_timeseries``."""
    from sparseconn.tasks import run_fmriprep_timeseries

    run_job(
        run_fmriprep_timeseries,
        input.bold,
        input.confounds,
        input.maps,
        first_or_none(input.labels),
        output.tsv,
        output.json,
        scan=params.scan,
        atlas_name=params.atlas_name,
        strategy=params.strategy,
        confound_columns=list(params.confound_columns),
        t_r=params.t_r,
        high_pass=params.high_pass,
        low_pass=params.low_pass,
        detrend=params.detrend,
        standardize=params.standardize,
        n_high_variance_confounds=params.n_high_variance_confounds,
        high_variance_percentile=params.high_variance_percentile,
        min_kept_fraction=params.min_kept_fraction,
        min_degrees_of_freedom=params.min_degrees_of_freedom,
        links=dict(params.links),
        log=log[0],
    )


def dataset_description(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``dataset_description``."""
    from sparseconn.tasks import run_dataset_description

    run_job(
        run_dataset_description,
        output.json,
        output.bidsignore,
        name=params.name,
        version=params.version,
        links={name: path for name, path in params.links.items() if name},
        log=log[0],
    )


def scan_qc(input: Any, output: Any, params: Any, wildcards: Any, log: Any) -> None:
    """Rule ``scan_qc``."""
    from sparseconn.tasks import run_scan_qc

    run_job(
        run_scan_qc,
        as_list(input.sidecars),
        list(params.scans),
        dict(params.excluded),
        output.tsv,
        log=log[0],
    )


def high_variance_confounds(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``high_variance_confounds``."""
    from sparseconn.tasks import run_high_variance_confounds

    run_job(
        run_high_variance_confounds,
        input.func,
        output.tsv,
        n_confounds=params.n_confounds,
        percentile=params.percentile,
        log=log[0],
    )


def extract_timeseries(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``extract_timeseries``."""
    from sparseconn.tasks import run_extract_timeseries

    run_job(
        run_extract_timeseries,
        input.func,
        input.maps,
        first_or_none(input.labels),
        as_list(input.confounds),
        output.tsv,
        output.json,
        subject=wildcards.subject,
        **task_params(params),
        log=log[0],
    )


def synthetic_atlas(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``synthetic_atlas``."""
    from sparseconn.synthetic import generate_atlas

    run_job(
        generate_atlas,
        output.maps,
        output.labels,
        output.truth,
        n_regions=params.n_regions,
        seed=params.seed,
        log=log[0],
    )


def synthetic_subject(
    input: Any, output: Any, params: Any, wildcards: Any, log: Any
) -> None:
    """Rule ``synthetic_subject``."""
    from sparseconn.synthetic import generate_subject

    run_job(
        generate_subject,
        output.func,
        output.confounds,
        output.truth,
        atlas_truth_path=input.atlas_truth,
        subject_index=params.subject_index,
        subject=wildcards.subject,
        seed=params.seed,
        n_volumes=params.n_volumes,
        t_r=params.t_r,
        n_file_confounds=params.n_file_confounds,
        log=log[0],
    )
