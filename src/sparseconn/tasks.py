"""One function per workflow rule: paths in, files out.

The rules' adapters (:mod:`sparseconn.workflow.adapters`) call these with the
paths and params of a job; everything here is importable and testable without
Snakemake. Outputs are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sparseconn import __version__
from sparseconn.atlas import load_atlas
from sparseconn.confounds import high_variance_confounds
from sparseconn.errors import InputError
from sparseconn.io import (
    PathLike,
    atomic_output,
    read_confounds,
    read_func_info,
    write_json,
    write_npz,
    write_tsv,
)
from sparseconn.signals import CleaningSettings
from sparseconn.subjects import resolve_t_r_with_source

if TYPE_CHECKING:
    from sparseconn.signals import Cleaned

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


def source_uris(paths: Sequence[PathLike], links: dict[str, str] | None) -> list[str]:
    """The files a result comes from, as BIDS URIs of the ``DatasetLinks`` datasets.

    ``links`` maps a dataset name (``""``: the results themselves) to its folder;
    None keeps the paths as given.
    """
    from sparseconn.bids import bids_uri

    return [str(path) if links is None else bids_uri(path, links) for path in paths]


def low_dof_warning(dof: dict[str, int]) -> str | None:
    """A warning when regressors and filters leave under half the volumes' freedom."""
    if dof["Remaining"] >= dof["Volumes"] / 2:
        return None
    return (
        f"cleaning leaves {dof['Remaining']} of {dof['Volumes']} degrees of "
        f"freedom ({dof['Confounds']} confounds, {dof['Filter']} filter, "
        f"{dof['Detrending']} detrending)"
    )


def quality_fields(
    cleaned: Cleaned,
    confound_names: Sequence[str],
    regions: Sequence[str],
    coverage: np.ndarray,
    warnings: Sequence[str] = (),
) -> dict:
    """Sidecar fields saying what cleaning took and what a reader should know.

    ``DegreesOfFreedom`` (see :class:`sparseconn.signals.Cleaned`),
    ``ConfoundsDropped`` (columns that were numerical noise after detrending),
    ``RegionsOutsideFieldOfView`` and ``Warnings``: every caveat of the scan in
    one list, also logged.
    """
    dropped = [str(confound_names[i]) for i in cleaned.degenerate_confounds]
    uncovered = [
        name for name, fraction in zip(regions, coverage, strict=True) if fraction == 0
    ]
    notes = list(warnings)
    if dropped:
        notes.append(
            f"{len(dropped)} confound column(s) constant or linear in time, "
            f"dropped (detrending removes them): {', '.join(dropped)}"
        )
    if uncovered:
        notes.append(
            f"{len(uncovered)} region(s) outside the field of view, their signals "
            f"are zero: {', '.join(uncovered)}"
        )
    low = low_dof_warning(cleaned.degrees_of_freedom)
    if low:
        notes.append(low)
    for note in notes:
        logger.warning("%s", note)
    return {
        "DegreesOfFreedom": cleaned.degrees_of_freedom,
        "ConfoundsDropped": dropped,
        "RegionsOutsideFieldOfView": uncovered,
        "Warnings": notes,
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
    cleaning: CleaningSettings | None = None,
    links: dict[str, str] | None = None,
) -> None:
    """Extract and clean one signal per atlas map; write the TSV and its JSON sidecar.

    ``confounds`` lists tables (header row, one row per volume) whose columns are
    all regressed out, typically the high-variance confounds then the subject's
    confounds file. The repetition time comes from ``sheet_t_r``, else
    ``config_t_r``, else the NIfTI header; a disagreement is an error. Constant
    volumes (dropouts) are censored; a scan left with fewer than the
    ``cleaning`` settings' ``min_kept_fraction`` of its volumes, or whose cleaning
    leaves fewer than ``min_degrees_of_freedom``, is an error.
    """
    from sparseconn.signals import clean_scan, extract_map_signals

    settings = cleaning or CleaningSettings()
    info = read_func_info(func)
    t_r, t_r_source = resolve_t_r_with_source(
        func, info.t_r, sheet_t_r, config_t_r, unitless_header_t_r=info.unitless_t_r
    )
    tables = [read_confounds(path, info.n_volumes) for path in confounds]
    atlas = load_atlas(maps, labels)
    signals, coverage, constant = extract_map_signals(info, atlas)
    confound_matrix = (
        np.hstack([table.to_numpy() for table in tables]) if tables else None
    )
    scan = clean_scan(
        signals,
        constant,
        confound_matrix,
        t_r,
        settings,
        source=str(func),
        remedy="exclude the subject (subjects sheet column exclude) or regress "
        "fewer confounds",
    )
    cleaned = scan.cleaned
    warnings = scan.warnings
    confound_names = [name for table in tables for name in table.columns]
    quality = quality_fields(cleaned, confound_names, atlas.names, coverage, warnings)
    write_tsv(pd.DataFrame(cleaned.signals, columns=atlas.names), out_tsv)
    sidecar = {
        "RepetitionTime": t_r,
        "RepetitionTimeSource": t_r_source,
        "NumberOfVolumes": info.n_volumes,
        "Subject": subject,
        "Atlas": atlas_name,
        "Regions": atlas.names,
        "RegionsOutsideFieldOfView": quality.pop("RegionsOutsideFieldOfView"),
        "Sources": source_uris([func, maps, *([labels] if labels else [])], links),
        "Confounds": {
            uri: list(table.columns)
            for uri, table in zip(source_uris(confounds, links), tables, strict=True)
        },
        "Extraction": {
            "Method": "least squares on maps, func resampled to the maps grid "
            "(cubic spline, clipped to the data range)",
        },
        "Cleaning": settings.sidecar(),
        **quality,
        "SoftwareVersion": f"sparseconn {__version__}",
    }
    if scan.censored:
        sidecar["NumberOfVolumesKept"] = int(scan.kept.size)
        sidecar["CensoredVolumes"] = scan.censored
        sidecar["CensoringReasons"] = scan.reasons
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
    cleaning: CleaningSettings | None = None,
    n_high_variance_confounds: int = 5,
    high_variance_percentile: float = 2.0,
    links: dict[str, str] | None = None,
) -> None:
    """One fMRIPrep run: denoise by ``strategy``, censor, extract and clean.

    Writes the kept volumes' cleaned signals (header = region names, one row per
    kept volume) and the JSON sidecar: repetition time, strategy and its
    parameters, censored volumes (number, indices, why), sources, cleaning,
    degrees of freedom, warnings, and ``ExcludedFromGroup``: why the run is left
    out of the group stage (too much censoring, too few degrees of freedom), or
    null. Excluded runs are written too, so that they can be inspected.
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
        cleaning=cleaning,
        n_high_variance_confounds=n_high_variance_confounds,
        high_variance_percentile=high_variance_percentile,
    )
    write_tsv(pd.DataFrame(result.signals, columns=result.regions), out_tsv)
    quality = quality_fields(
        result.cleaning,
        result.confound_names,
        result.regions,
        result.coverage,
        result.warnings,
    )
    sidecar = {
        "RepetitionTime": result.t_r,
        "RepetitionTimeSource": result.t_r_source,
        "NumberOfVolumes": result.n_volumes,
        "NumberOfVolumesKept": result.n_kept,
        "NumberOfVolumesCensored": len(result.censored),
        "CensoredVolumes": [int(i) for i in result.censored],
        "CensoringReasons": {
            key: [int(i) for i in value] for key, value in result.outliers.items()
        },
        "Scan": scan,
        "Atlas": atlas_name,
        "Regions": result.regions,
        "RegionsOutsideFieldOfView": quality.pop("RegionsOutsideFieldOfView"),
        "DenoiseStrategy": result.denoising.parameters,
        "Confounds": result.confound_names,
        "Sources": source_uris(
            [bold, confounds, maps, *([labels] if labels else [])], links
        ),
        "Cleaning": result.settings.sidecar(),
        **quality,
        "ExcludedFromGroup": result.excluded,
        "SoftwareVersion": f"sparseconn {__version__}",
    }
    if not result.censoring_applied:
        sidecar["CensoringApplied"] = False
        sidecar["Warnings"].append(
            "left out of the group stage; its kept volumes are too few to clean, "
            "so every volume is written uncensored, for inspection only"
        )
    write_json(sidecar, Path(out_json))


#: Columns of the per-scan quality table, in order.
SCAN_QC_COLUMNS = [
    "scan",
    "included",
    "reason",
    "volumes",
    "volumes_kept",
    "degrees_of_freedom",
    "confounds_dropped",
    "regions_outside_fov",
    "warnings",
]


def run_scan_qc(
    sidecars: Sequence[PathLike],
    scans: Sequence[str],
    excluded: dict[str, str],
    out_tsv: PathLike,
) -> None:
    """One row per scan: in the group stage or not (why), and its caveats.

    ``sidecars`` are the scans' time-series JSON files, in ``scans`` order;
    ``excluded`` gives the reasons decided before the jobs ran (the subjects
    sheet's ``exclude`` column); a sidecar's ``ExcludedFromGroup`` is the other
    source. ``warnings`` joins the sidecar's ``Warnings`` with `` | ``.
    """
    import json

    rows = []
    for scan, path in zip(scans, sidecars, strict=True):
        sidecar = json.loads(Path(path).read_text())
        reason = excluded.get(scan) or sidecar.get("ExcludedFromGroup")
        dof = sidecar.get("DegreesOfFreedom") or {}
        rows.append(
            {
                "scan": scan,
                "included": reason is None,
                "reason": reason or "",
                "volumes": sidecar["NumberOfVolumes"],
                "volumes_kept": sidecar.get(
                    "NumberOfVolumesKept", sidecar["NumberOfVolumes"]
                ),
                "degrees_of_freedom": dof.get("Remaining", ""),
                "confounds_dropped": len(sidecar.get("ConfoundsDropped", [])),
                "regions_outside_fov": len(
                    sidecar.get("RegionsOutsideFieldOfView", [])
                ),
                "warnings": " | ".join(sidecar.get("Warnings", [])),
            }
        )
    frame = pd.DataFrame(rows, columns=SCAN_QC_COLUMNS)
    write_tsv(frame.sort_values("scan", kind="stable"), out_tsv)


#: BIDS version the results follow (entity order of its schema, BIDS URIs).
BIDS_VERSION = "1.10.0"
#: Folders of the results that are not BIDS files (listed in ``.bidsignore``).
NOT_BIDS = ("figures/", "group/", "logs/", "benchmarks/", "report.html")


def run_dataset_description(
    out_json: PathLike,
    out_bidsignore: PathLike,
    *,
    name: str,
    version: str,
    links: dict[str, str],
) -> None:
    """Describe the results as a BIDS derivative; ``.bidsignore`` its other files.

    ``links`` (dataset name -> folder, relative to the results or absolute) is
    written as ``DatasetLinks``, which the sidecars' ``bids:<name>:`` URIs refer
    to. No dates, so reruns give the same bytes.
    """
    write_json(
        {
            "Name": name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "sparseconn", "Version": version}],
            "DatasetLinks": dict(sorted(links.items())),
        },
        out_json,
    )
    with atomic_output(out_bidsignore) as tmp:
        tmp.write_text("".join(f"{entry}\n" for entry in NOT_BIDS))


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
