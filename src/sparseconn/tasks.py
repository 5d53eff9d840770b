"""One function per workflow rule: paths in, files out.

The workflow's scripts (``scripts/<rule>.py``) are thin adapters that call these
functions with ``snakemake.input``/``params``/``output``; everything here is
importable and testable without Snakemake. Outputs are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sparseconn import __version__
from sparseconn.atlas import load_atlas
from sparseconn.confounds import high_variance_confounds
from sparseconn.errors import InputError
from sparseconn.io import (
    PathLike,
    read_confounds,
    read_func_info,
    write_json,
    write_npz,
    write_tsv,
)
from sparseconn.subjects import resolve_t_r_with_source

logger = logging.getLogger(__name__)


def run_high_variance_confounds(
    func: PathLike,
    out_tsv: PathLike,
    *,
    n_confounds: int = 5,
    percentile: float = 2.0,
) -> None:
    """Compute the high-variance confounds of ``func`` and write them as a TSV.

    Output columns are ``highvariance01`` ... one row per volume.
    """
    info = read_func_info(func)
    logger.info("%s: %s volumes of shape %s", func, info.n_volumes, info.shape[:3])
    confounds = high_variance_confounds(info, n_confounds, percentile)
    columns = [f"highvariance{i + 1:02d}" for i in range(confounds.shape[1])]
    write_tsv(pd.DataFrame(confounds, columns=columns), out_tsv)


def _cleaning_sidecar(
    high_pass: float | None,
    low_pass: float | None,
    detrend: bool,
    standardize: str | None,
) -> dict:
    """The "Cleaning" entry of a time series' JSON sidecar."""
    from sparseconn.signals import BUTTERWORTH_ORDER

    return {
        "Detrend": detrend,
        "Filter": "butterworth" if (high_pass or low_pass) else None,
        "FilterOrder": BUTTERWORTH_ORDER,
        "HighPass": high_pass,
        "LowPass": low_pass,
        "Standardize": standardize,
    }


def run_extract_timeseries(
    func: PathLike,
    maps: PathLike,
    labels: PathLike | None,
    confounds: Sequence[PathLike],
    out_tsv: PathLike,
    out_json: PathLike,
    *,
    subject: str,
    atlas_name: str,
    sheet_t_r: float | None = None,
    config_t_r: float | None = None,
    high_pass: float | None = 0.01,
    low_pass: float | None = None,
    detrend: bool = True,
    standardize: str | None = "zscore_sample",
) -> None:
    """Extract and clean one signal per atlas map; write the TSV and its JSON sidecar.

    ``confounds`` lists tables (header row, one row per volume) whose columns are
    all regressed out, typically the high-variance confounds then the subject's
    confounds file. The repetition time comes from ``sheet_t_r``, else
    ``config_t_r``, else the NIfTI header; a disagreement is an error.
    """
    from sparseconn.signals import clean, extract_map_signals

    info = read_func_info(func)
    t_r, t_r_source = resolve_t_r_with_source(
        func, info.t_r, sheet_t_r, config_t_r, unitless_header_t_r=info.unitless_t_r
    )
    tables = [read_confounds(path, info.n_volumes) for path in confounds]
    atlas = load_atlas(maps, labels)
    signals, coverage = extract_map_signals(info, atlas)
    uncovered = [name for name, c in zip(atlas.names, coverage, strict=True) if c == 0]
    if uncovered:
        logger.warning(
            "%s: %d map(s) outside the field of view, their signals are zero: %s",
            func,
            len(uncovered),
            ", ".join(uncovered),
        )
    confound_matrix = (
        np.hstack([table.to_numpy() for table in tables]) if tables else None
    )
    try:
        cleaned = clean(
            signals,
            confound_matrix,
            t_r,
            high_pass=high_pass,
            low_pass=low_pass,
            detrend_signals=detrend,
            standardize=standardize,
        )
    except ValueError as error:
        raise InputError(func, str(error)) from error
    write_tsv(pd.DataFrame(cleaned, columns=atlas.names), out_tsv)
    sidecar = {
        "RepetitionTime": t_r,
        "RepetitionTimeSource": t_r_source,
        "NumberOfVolumes": info.n_volumes,
        "Subject": subject,
        "Atlas": atlas_name,
        "Regions": atlas.names,
        "RegionsOutsideFieldOfView": uncovered,
        "Sources": [str(func), str(maps), *([str(labels)] if labels else [])],
        "Confounds": {
            str(path): list(table.columns)
            for path, table in zip(confounds, tables, strict=True)
        },
        "Extraction": {
            "Method": "least squares on maps, func resampled to the maps grid "
            "(cubic spline, clipped to the data range)",
        },
        "Cleaning": _cleaning_sidecar(high_pass, low_pass, detrend, standardize),
        "SoftwareVersion": f"sparseconn {__version__}",
    }
    write_json(sidecar, Path(out_json))


def run_fmriprep_timeseries(
    bold: PathLike,
    confounds: PathLike,
    maps: PathLike,
    labels: PathLike | None,
    out_tsv: PathLike,
    out_json: PathLike,
    *,
    scan: str,
    atlas_name: str,
    strategy: str,
    confound_columns: Sequence[str] = (),
    t_r: float | None = None,
    high_pass: float | None = 0.01,
    low_pass: float | None = None,
    detrend: bool = True,
    standardize: str | None = "zscore_sample",
    n_high_variance_confounds: int = 5,
    high_variance_percentile: float = 2.0,
    min_kept_fraction: float = 0.5,
) -> None:
    """One fMRIPrep run: denoise by ``strategy``, censor, extract and clean.

    Writes the kept volumes' cleaned signals (header = region names, one row per
    kept volume) and the JSON sidecar: repetition time, strategy and its
    parameters, censored volumes (number, indices, why), sources, cleaning.
    A run censored below ``min_kept_fraction`` is an error here: the workflow
    leaves such runs out before any job runs.
    """
    from sparseconn.fmriprep import clean_scan_signals

    result = clean_scan_signals(
        bold,
        maps,
        confounds,
        labels=labels,
        strategy=strategy,
        confound_columns=confound_columns,
        t_r=t_r,
        high_pass=high_pass,
        low_pass=low_pass,
        detrend=detrend,
        standardize=standardize,
        n_high_variance_confounds=n_high_variance_confounds,
        high_variance_percentile=high_variance_percentile,
        min_kept_fraction=min_kept_fraction,
    )
    if result.excluded is not None:
        raise InputError(confounds, result.excluded)
    write_tsv(pd.DataFrame(result.signals, columns=result.regions), out_tsv)
    uncovered = [
        name
        for name, fraction in zip(result.regions, result.coverage, strict=True)
        if fraction == 0
    ]
    sidecar = {
        "RepetitionTime": result.t_r,
        "RepetitionTimeSource": result.t_r_source,
        "NumberOfVolumes": result.n_volumes,
        "NumberOfVolumesKept": result.n_kept,
        "NumberOfVolumesCensored": len(result.censored),
        "CensoredVolumes": [int(i) for i in result.censored],
        "CensoringReasons": {
            key: [int(i) for i in value]
            for key, value in result.denoising.outliers.items()
        },
        "RowsAreVolumes": [int(i) for i in result.returned_rows],
        "Scan": scan,
        "Atlas": atlas_name,
        "Regions": result.regions,
        "RegionsOutsideFieldOfView": uncovered,
        "DenoiseStrategy": result.denoising.parameters,
        "Confounds": result.confound_names,
        "Sources": [
            str(bold),
            str(confounds),
            str(maps),
            *([str(labels)] if labels else []),
        ],
        "Cleaning": _cleaning_sidecar(high_pass, low_pass, detrend, standardize),
        "SoftwareVersion": f"sparseconn {__version__}",
    }
    write_json(sidecar, Path(out_json))


def run_scan_exclusions(rows: Sequence[dict], out_tsv: PathLike) -> None:
    """Write the runs left out of the group stage (scan, bold, reason), sorted."""
    columns = ["scan", "bold", "reason"]
    frame = pd.DataFrame([dict(row) for row in rows], columns=columns)
    write_tsv(frame.sort_values("scan", kind="stable"), out_tsv)


# ------------------------------------------------------------------ group stage


def read_timeseries(path: PathLike) -> pd.DataFrame:
    """Read a cleaned time-series TSV (header = region names, one row per volume)."""
    frame = pd.read_csv(path, sep="\t")
    if frame.empty or frame.shape[1] == 0:
        raise InputError(path, "empty time series")
    return frame


def write_relmat(matrix: np.ndarray, regions: Sequence[str], path: PathLike) -> None:
    """Write a region x region matrix as xcp_d's ``relmat`` TSV (first column Node)."""
    frame = pd.DataFrame(matrix, columns=list(regions))
    frame.insert(0, "Node", list(regions))
    write_tsv(frame, path)


def _same_regions(
    tables: Sequence[pd.DataFrame], paths: Sequence[PathLike]
) -> list[str]:
    regions = list(tables[0].columns)
    for table, path in zip(tables[1:], paths[1:], strict=True):
        if list(table.columns) != regions:
            raise InputError(
                path, f"regions differ from those of {paths[0]} (same atlas expected)"
            )
    return regions


def split_sizes(paths: Sequence[PathLike], sizes: Sequence[int] | None) -> list:
    """Group a flat list of files into consecutive runs of ``sizes`` files.

    ``sizes=None`` is one file per group. Each group is returned as a path (one
    file) or a list of paths (runs to concatenate).
    """
    paths = list(paths)
    if sizes is None:
        return paths
    if sum(sizes) != len(paths) or min(sizes, default=1) < 1:
        raise ValueError(f"sizes {list(sizes)} do not split {len(paths)} files")
    groups, start = [], 0
    for size in sizes:
        chunk = paths[start : start + size]
        groups.append(chunk[0] if size == 1 else chunk)
        start += size
    return groups


def read_unit_timeseries(
    units: Sequence[PathLike | Sequence[PathLike]],
) -> tuple[list[np.ndarray], list[str]]:
    """Signals of each group element, runs concatenated in time, and the regions.

    Each element is a time-series TSV or a list of them (the runs of one subject
    or session, each cleaned on its own, stacked in the given order). All files
    must have the same regions.
    """
    groups = [[u] if isinstance(u, str | Path) else list(u) for u in units]
    paths = [path for group in groups for path in group]
    tables = [read_timeseries(path) for path in paths]
    regions = _same_regions(tables, paths)
    arrays, start = [], 0
    for group in groups:
        chunk = tables[start : start + len(group)]
        arrays.append(np.vstack([table.to_numpy() for table in chunk]))
        start += len(group)
    return arrays, regions


def run_group_sparse_covariance(
    timeseries: Sequence[PathLike | Sequence[PathLike]],
    subjects: Sequence[str],
    out_npz: PathLike,
    covariance_relmats: Sequence[PathLike],
    precision_relmats: Sequence[PathLike],
    *,
    alphas: int = 4,
    n_refinements: int = 4,
    tol_cv: float = 1e-2,
    max_iter_cv: int = 50,
    tol: float = 1e-3,
    max_iter: int = 100,
) -> None:
    """Cross-validated group-sparse inverse covariance of all subjects.

    ``timeseries`` has one element per subject: a TSV, or a list of TSVs (runs,
    concatenated). Writes the group ``.npz`` (covariances and precisions of shape
    (n_subjects, p, p), alpha, cv_alphas, cv_scores, subjects, regions) and each
    subject's covariance and precision as ``relmat`` TSVs, in ``subjects`` order.
    BLAS runs on one thread: the bytes written do not depend on the machine's
    core count (multi-threaded BLAS sums in a different order).
    """
    from threadpoolctl import threadpool_limits

    from sparseconn.covariance import GroupSparseCovarianceCV

    signals, regions = read_unit_timeseries(timeseries)
    estimator = GroupSparseCovarianceCV(
        alphas=alphas,
        n_refinements=n_refinements,
        tol_cv=tol_cv,
        max_iter_cv=max_iter_cv,
        tol=tol,
        max_iter=max_iter,
    )
    try:
        with threadpool_limits(limits=1):
            estimator.fit(signals)
    except ValueError as error:
        raise InputError(", ".join(map(str, timeseries)), str(error)) from error
    covariances = np.moveaxis(estimator.covariances_, 2, 0)
    precisions = np.moveaxis(estimator.precisions_, 2, 0)
    write_npz(
        out_npz,
        covariances=covariances,
        precisions=precisions,
        alpha=np.float64(estimator.alpha_),
        cv_alphas=np.asarray(estimator.cv_alphas_, dtype=np.float64),
        cv_scores=np.asarray(estimator.cv_scores_, dtype=np.float64),
        cv_refinements=np.asarray(estimator.cv_refinements_, dtype=np.int64),
        subjects=np.asarray(subjects, dtype=str),
        regions=np.asarray(regions, dtype=str),
    )
    for index in range(len(subjects)):
        write_relmat(covariances[index], regions, covariance_relmats[index])
        write_relmat(precisions[index], regions, precision_relmats[index])


def run_graph_lasso(
    timeseries: PathLike | Sequence[PathLike],
    covariance_relmat: PathLike,
    precision_relmat: PathLike,
    out_npz: PathLike | None = None,
    *,
    subject: str,
) -> None:
    """scikit-learn ``GraphicalLassoCV()`` (defaults) on one subject's signals.

    Writes the covariance and precision ``relmat`` TSVs, and when ``out_npz`` is
    given the ``.npz`` (covariance, precision, alpha, cv_alphas, cv_scores, subject,
    regions). BLAS runs on one thread, for the same bytes on any machine.
    ``timeseries``: a TSV, or a list of them (runs, concatenated in time).
    """
    from sklearn.covariance import GraphicalLassoCV
    from threadpoolctl import threadpool_limits

    (signals,), regions = read_unit_timeseries([timeseries])
    with threadpool_limits(limits=1):
        estimator = GraphicalLassoCV().fit(signals)
    write_relmat(estimator.covariance_, regions, covariance_relmat)
    write_relmat(estimator.precision_, regions, precision_relmat)
    if out_npz is not None:
        write_npz(
            out_npz,
            covariance=estimator.covariance_,
            precision=estimator.precision_,
            alpha=np.float64(estimator.alpha_),
            cv_alphas=np.asarray(estimator.cv_results_["alphas"], dtype=np.float64),
            cv_scores=np.asarray(
                estimator.cv_results_["mean_test_score"], dtype=np.float64
            ),
            subject=np.asarray(subject, dtype=str),
            regions=np.asarray(regions, dtype=str),
        )


# ------------------------------------------------------------- science check


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
