"""One adapter per rule, named like the rule: Snakemake's lists in, a step call.

Every adapter has the same signature, ``(input, output, params, wildcards, log,
threads=1, config=None)``: a ``run:`` block calls it with its own names (the job
runs in a thread of the Snakemake process, or, for an adapter decorated with
:func:`~sparseconn.workflow.jobs.in_child`, in a child process forked from that
thread), a ``script:`` shim (the downloads) with ``run_script(<adapter>,
snakemake)`` (the job runs in a process of its own). The
adapter turns the named lists into the arguments of its step
(:mod:`sparseconn.steps`) and runs it with
:func:`~sparseconn.workflow.jobs.run_job` (log file, one-line errors). The
``code`` param of a rule is the hash of its adapter and of the code it runs
(:mod:`sparseconn.workflow.provenance`); it is not passed on to the step.
Imports are inside the functions: reading the workflow stays cheap, and each
rule's hash counts only the code it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sparseconn.workflow.jobs import in_child, run_in_worker, run_job


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A Snakemake input entry as a list of paths (a lone string is one path)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def first_or_none(files: Any) -> str | None:
    """The first file of an input entry, or None when it is empty."""
    files = as_list(files)
    return files[0] if files else None


def task_params(params: Any, drop: tuple[str, ...] = ("code",)) -> dict[str, Any]:
    """A rule's params as keyword arguments of its task (without ``code``)."""
    return {key: value for key, value in params.items() if key not in drop}


def download_settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The downloader's ``timeout`` and ``attempts`` (config keys, not params).

    Read from the config rather than passed as params, so that changing them
    does not rerun a finished download.
    """
    config = config or {}
    return {
        "timeout": config["download_timeout"],
        "attempts": config["download_attempts"],
    }


# ---------------------------------------------------------------- downloads


def fetch_atlas(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``fetch_atlas``: download the MSDL atlas zip, extract maps and labels.

    Outputs ``maps`` (``msdl_rois.nii``, 39 probabilistic maps) and ``labels``
    (``msdl_rois_labels.csv``); params ``url``, ``checksum`` (or None),
    ``archive`` (download path, deleted once extracted), ``lock`` (checksum lock
    file), ``maps_member``, ``labels_member``.
    """
    from sparseconn.fetch import fetch_archive_members

    run_job(
        fetch_archive_members,
        params.url,
        params.archive,
        {params.maps_member: output.maps, params.labels_member: output.labels},
        checksum=params.checksum,
        lock_file=params.lock,
        **download_settings(config),
        log=log[0],
    )


def fetch_subject(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``fetch_subject``: download one ADHD-40 subject's archive, extract it.

    Outputs ``func`` (the 4D resting-state run) and ``confounds`` (the
    tab-separated regressors); params ``url``, ``checksum`` (or None),
    ``archive``, ``lock``, ``members`` (``{"func": member, "confounds": member}``).
    """
    from sparseconn.fetch import fetch_archive_members

    run_job(
        fetch_archive_members,
        params.url,
        params.archive,
        {
            params.members["func"]: output.func,
            params.members["confounds"]: output.confounds,
        },
        checksum=params.checksum,
        lock_file=params.lock,
        **download_settings(config),
        log=log[0],
    )


def fetch_development_subject(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``fetch_development_subject``: one subject of dataset development.

    Outputs ``func``, ``confounds`` (fMRIPrep's table) and ``reduced_confounds``
    (the columns nilearn's fetcher keeps); params ``urls`` and ``checksums`` (by
    ``func``/``confounds``), ``lock``.
    """
    from sparseconn.fetch import fetch_development_subject

    run_job(
        fetch_development_subject,
        dict(params.urls),
        {
            "func": output.func,
            "confounds": output.confounds,
            "reduced_confounds": output.reduced_confounds,
        },
        checksums=dict(params.checksums),
        lock_file=params.lock,
        **download_settings(config),
        log=log[0],
    )


def fetch_phenotypes(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``fetch_phenotypes``: download the ADHD-40 phenotypic table.

    Output ``csv``; params ``url``, ``checksum`` (or None), ``archive``,
    ``lock``, ``member``.
    """
    from sparseconn.fetch import fetch_archive_members

    run_job(
        fetch_archive_members,
        params.url,
        params.archive,
        {params.member: output.csv},
        checksum=params.checksum,
        lock_file=params.lock,
        **download_settings(config),
        log=log[0],
    )


def fetch_sheet_file(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``fetch_sheet_file``: download a sheet cell given as an http(s) URL.

    Output: the file; params ``url``, ``lock`` (the SHA-256 of each URL,
    recorded at its first download and verified afterwards).
    """
    from sparseconn.fetch import fetch_file

    run_job(
        fetch_file,
        params.url,
        output[0],
        lock_file=params.lock,
        lock_key=params.url,
        **download_settings(config),
        log=log[0],
    )


# ---------------------------------------------------------------- synthetic


def synthetic_atlas(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``synthetic_atlas``."""
    from sparseconn.synthetic import generate_atlas

    run_job(
        generate_atlas,
        output.maps,
        output.labels,
        output.truth,
        dseg_path=output.dseg,
        dseg_table_path=output.dseg_table,
        n_regions=params.n_regions,
        seed=params.seed,
        log=log[0],
    )


def synthetic_subject(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
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


# ------------------------------------------------------------------ subject


def extract_timeseries(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``extract_timeseries``."""
    from sparseconn.signals import CleaningSettings
    from sparseconn.steps.subject import run_extract_timeseries

    run_in_worker(
        run_extract_timeseries,
        input.func,
        list(params.atlases),
        as_list(input.confounds),
        as_list(output.tsv),
        as_list(output.json),
        output.high_variance_confounds,
        as_list(output.regions),
        subject=wildcards.subject,
        **task_params(params, drop=("code", "cleaning", "atlases")),
        cleaning=CleaningSettings(**params.cleaning),
        log=log[0],
    )


def fmriprep_timeseries(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``fmriprep_timeseries``."""
    from sparseconn.signals import CleaningSettings
    from sparseconn.steps.subject import run_fmriprep_timeseries

    run_in_worker(
        run_fmriprep_timeseries,
        input.bold,
        input.confounds,
        list(params.atlases),
        as_list(output.tsv),
        as_list(output.json),
        as_list(output.regions),
        scan=params.scan,
        strategy=params.strategy,
        confound_columns=list(params.confound_columns),
        t_r=params.t_r,
        cleaning=CleaningSettings(**params.cleaning),
        n_high_variance_confounds=params.n_high_variance_confounds,
        high_variance_percentile=params.high_variance_percentile,
        links=dict(params.links),
        min_region_coverage=params.min_region_coverage,
        log=log[0],
    )


# -------------------------------------------------------------------- group


@in_child
def group_sparse_covariance(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``group_sparse_covariance``: cross-validated group-sparse precisions.

    Input ``timeseries``: every group subject's time-series TSVs (subjects
    order); outputs ``npz``, ``covariances``, ``precisions`` (per-subject
    ``relmat`` TSVs); params ``subjects``, ``sizes`` (the number of time-series
    files of each subject: runs, concatenated), ``settings``
    (GroupSparseCovarianceCV parameters).
    """
    from sparseconn.steps.group import run_group_sparse_covariance, split_sizes

    run_job(
        run_group_sparse_covariance,
        split_sizes(input.timeseries, params.sizes),
        list(params.subjects),
        output.npz,
        list(output.covariances),
        list(output.precisions),
        input.regions,
        [output.covariance_sidecar, output.precision_sidecar],
        atlas=wildcards.atlas,
        links=dict(params.links),
        **params.settings,
        log=log[0],
    )


@in_child
def stability_selection(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``stability_selection``: stable group-sparse edges, EBIC alpha.

    Inputs ``timeseries`` (as rule ``group_sparse_covariance``), ``regions``,
    ``group`` (the group-sparse ``.npz``: the CV alpha); outputs ``npz``,
    ``probabilities`` and ``precisions`` (per-subject ``relmat`` TSVs) and the
    two sidecars they inherit; params ``subjects``, ``sizes``, ``settings``
    (config ``stability`` without ``enabled``), ``final_fit`` (``tol``,
    ``max_iter`` of the EBIC fit).
    """
    from sparseconn.steps.group import run_stability_selection, split_sizes

    run_job(
        run_stability_selection,
        split_sizes(input.timeseries, params.sizes),
        list(params.subjects),
        input.group,
        output.npz,
        list(output.probabilities),
        list(output.precisions),
        input.regions,
        [output.probability_sidecar, output.precision_sidecar],
        atlas=wildcards.atlas,
        links=dict(params.links),
        **params.settings,
        **params.final_fit,
        log=log[0],
    )


@in_child
def graph_lasso(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``graph_lasso``: scikit-learn's GraphicalLassoCV, plotted subject.

    Input ``timeseries`` (the subject's TSVs, runs concatenated); outputs
    ``covariance``, ``precision`` (``relmat`` TSVs) and the group ``npz``;
    param ``subject``.
    """
    from sparseconn.steps.group import run_graph_lasso

    run_job(
        run_graph_lasso,
        as_list(input.timeseries),
        output.covariance,
        output.precision,
        output.npz,
        input.regions,
        subject=params.subject,
        atlas=wildcards.atlas,
        links=dict(params.links),
        log=log[0],
    )


@in_child
def graph_lasso_subject(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``graph_lasso_subject``: GraphicalLassoCV of one other subject.

    As rule ``graph_lasso``, without the ``.npz``.
    """
    from sparseconn.steps.group import run_graph_lasso

    run_job(
        run_graph_lasso,
        as_list(input.timeseries),
        output.covariance,
        output.precision,
        None,
        input.regions,
        subject=params.subject,
        atlas=wildcards.atlas,
        links=dict(params.links),
        log=log[0],
    )


def group_regions(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``group_regions``: the regions every group fit of an atlas uses.

    Input ``tables`` (each group scan's region table, in params ``scans``'s
    order); output ``tsv``; param ``strict``.
    """
    from sparseconn.steps.group import run_group_regions

    run_job(
        run_group_regions,
        as_list(input.tables),
        list(params.scans),
        output.tsv,
        strict=params.strict,
        log=log[0],
    )


# ------------------------------------------------------------------ figures


@in_child
def plot_group_figures(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``plot_group_figures``: every group-level figure of every estimate.

    Inputs ``npz`` (one group ``.npz`` per estimate of params ``estimates``),
    ``atlas`` (its files; params ``atlas`` describes it); outputs per figure
    kind (``connectome``, ``covariance``, ``sparsity``, ``precision``, ``cv``)
    the PNGs, one per estimate in the same order, and ``<kind>_svg`` their SVG
    copies (empty when no SVG is wanted); with output ``qcfc``, the QC-FC
    histogram of inputs ``qcfc_tsv`` and ``qcfc_json``. With stability selection
    on, inputs ``stability`` (its ``.npz``) and ``truth`` (the synthetic atlas
    truth, or empty) and outputs ``stability_path``, ``selection_probability``,
    ``stable_connectome`` (one PNG each) and their ``_svg`` copies.
    """
    from sparseconn.steps.figures import (
        GROUP_FIGURE_KINDS,
        STABILITY_FIGURE_KINDS,
        run_plot_group_figures,
    )

    estimates = list(params.estimates)
    files = {}
    for kind in GROUP_FIGURE_KINDS:
        pngs, svgs = as_list(output[kind]), as_list(output[f"{kind}_svg"])
        files[kind] = [
            [png, *([svgs[index]] if svgs else [])] for index, png in enumerate(pngs)
        ]
    stability_npz = first_or_none(input.get("stability"))
    stability_files = (
        {
            kind: [*as_list(output[kind]), *as_list(output[f"{kind}_svg"])]
            for kind in STABILITY_FIGURE_KINDS
        }
        if stability_npz
        else None
    )
    run_job(
        run_plot_group_figures,
        as_list(input.npz),
        dict(params.atlas),
        files,
        estimates=estimates,
        subject=params.subject,
        edge_threshold=params.edge_threshold,
        max_edges=params.max_edges,
        dpi=params.dpi,
        stability_npz=stability_npz,
        stability_files=stability_files,
        truth=first_or_none(input.get("truth")),
        qcfc_files=(
            [input.qcfc_tsv, input.qcfc_json, output.qcfc]
            if "qcfc" in output.keys()
            else None
        ),
        log=log[0],
    )


@in_child
def plot_subjects_qc(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``plot_subjects_qc``: the QC figure of every subject of params ``subjects``.

    Inputs ``confounds``, ``timeseries``, ``sidecar`` and output ``png`` list
    one file per subject, in the order of ``subjects``.
    """
    from sparseconn.steps.figures import run_plot_subjects_qc

    run_job(
        run_plot_subjects_qc,
        as_list(input.confounds),
        as_list(input.timeseries),
        as_list(input.sidecar),
        as_list(output.png),
        subjects=list(params.subjects),
        n_regions=params.n_regions,
        dpi=params.dpi,
        log=log[0],
    )


def scan_qc(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``scan_qc``."""
    from sparseconn.steps.describe import run_scan_qc

    run_job(
        run_scan_qc,
        as_list(input.sidecars),
        list(params.scans),
        dict(params.excluded),
        output.tsv,
        log=log[0],
    )


# ------------------------------------------------------------ science check


@in_child
def heldout_group_sparse(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``heldout_group_sparse``: one fold's group-sparse held-out scores.

    Input ``timeseries`` (every group subject's TSVs); output ``tsv``; wildcard
    ``fold``; params ``subjects``, ``sizes``, ``n_blocks``, ``group_sparse``
    (GroupSparseCovarianceCV parameters).
    """
    from sparseconn.steps.group import split_sizes
    from sparseconn.steps.science import run_heldout_group_sparse

    run_job(
        run_heldout_group_sparse,
        split_sizes(input.timeseries, params.sizes),
        list(params.subjects),
        output.tsv,
        fold=int(wildcards.fold),
        n_blocks=params.n_blocks,
        group_sparse=dict(params.group_sparse),
        regions_table=input.regions,
        log=log[0],
    )


@in_child
def heldout_stability(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``heldout_stability``: one fold's stable-set and EBIC held-out scores.

    As rule ``heldout_group_sparse``; params ``stability`` (config ``stability``
    without ``enabled``), ``final_fit`` (``tol``, ``max_iter`` of the EBIC fit).
    """
    from sparseconn.steps.group import split_sizes
    from sparseconn.steps.science import run_heldout_stability

    run_job(
        run_heldout_stability,
        split_sizes(input.timeseries, params.sizes),
        list(params.subjects),
        output.tsv,
        fold=int(wildcards.fold),
        n_blocks=params.n_blocks,
        stability=dict(params.stability),
        final_fit=dict(params.final_fit),
        regions_table=input.regions,
        log=log[0],
    )


@in_child
def heldout_subjects(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``heldout_subjects``: a batch of subjects' own estimators, every fold.

    Input ``timeseries`` (the batch's TSVs); outputs ``tsv`` and, when the run
    has a ground truth, ``npz`` (whole-series precisions); params ``subjects``,
    ``sizes``, ``n_blocks``.
    """
    from sparseconn.steps.group import split_sizes
    from sparseconn.steps.science import run_heldout_subjects

    run_job(
        run_heldout_subjects,
        split_sizes(input.timeseries, params.sizes),
        list(params.subjects),
        output.tsv,
        output.get("npz"),
        n_blocks=params.n_blocks,
        regions_table=input.regions,
        log=log[0],
    )


@in_child
def model_comparison(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``model_comparison``: the held-out tables gathered, and their figure."""
    from sparseconn.steps.science import run_model_comparison

    run_job(
        run_model_comparison,
        [
            *as_list(input.group_sparse),
            *as_list(input.get("stability")),
            *as_list(input.subjects),
        ],
        output.tsv,
        output.figure,
        log=log[0],
    )


@in_child
def recovery_scores(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``recovery_scores``."""
    from sparseconn.steps.science import run_recovery_scores

    run_job(
        run_recovery_scores,
        input.group,
        as_list(input.single),
        as_list(input.truths),
        output.tsv,
        output.figure,
        first_or_none(input.get("stability")),
        log=log[0],
    )


# -------------------------------------------------------------- description


def dataset_description(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``dataset_description``."""
    from sparseconn.steps.describe import run_dataset_description

    run_job(
        run_dataset_description,
        output.json,
        output.bidsignore,
        name=params.name,
        version=params.version,
        links={name: path for name, path in params.links.items() if name},
        atlases=[dict(atlas) for atlas in params.atlases],
        log=log[0],
    )


# ------------------------------------------------- group QC, participants, methods


def group_qc(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``group_qc``."""
    from sparseconn.steps.describe import run_group_qc

    run_job(
        run_group_qc,
        as_list(input.timeseries),
        as_list(input.sidecars),
        input.regions,
        input.scans_qc,
        output.tsv,
        output.json,
        output.html,
        atlas=wildcards.atlas,
        units=list(params.units),
        sizes=list(params.sizes),
        log=log[0],
    )


def participants(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``participants``."""
    from sparseconn.steps.describe import run_participants

    run_job(
        run_participants, as_list(input.scans_qc), output.tsv, output.json, log=log[0]
    )


def methods(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Rule ``methods``."""
    from sparseconn.steps.describe import run_methods

    run_job(
        run_methods,
        as_list(input.groupsparse),
        as_list(input.graphlasso),
        as_list(input.qcfc),
        as_list(input.sidecars),
        output.rst,
        atlases=list(params.atlases),
        settings=dict(params.settings),
        log=log[0],
    )
