"""Steps that describe the run: ``dataset_description.json`` and the scans' QC table.

One function per rule, paths in, files out; outputs are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sparseconn.io import (
    PathLike,
    atomic_output,
    write_json,
    write_tsv,
)

logger = logging.getLogger(__name__)


#: Columns of the per-scan quality table, in order.
SCAN_QC_COLUMNS = [
    "scan",
    "included",
    "reason",
    "volumes",
    "volumes_kept",
    "degrees_of_freedom",
    "mean_fd",
    "volumes_censored",
    "dof_lost_confounds",
    "dof_lost_filter",
    "dof_lost_detrending",
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
    ``mean_fd``: the sidecar's ``MeanFramewiseDisplacement`` (mm; empty when
    the confounds have no motion columns); ``volumes_censored``; the degrees of
    freedom taken by the confound regression, the filter and detrending.
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
                "mean_fd": sidecar.get("MeanFramewiseDisplacement", ""),
                "volumes_censored": sidecar["NumberOfVolumes"]
                - sidecar.get("NumberOfVolumesKept", sidecar["NumberOfVolumes"]),
                "dof_lost_confounds": dof.get("Confounds", ""),
                "dof_lost_filter": dof.get("Filter", ""),
                "dof_lost_detrending": dof.get("Detrending", ""),
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
NOT_BIDS = (
    "figures/",
    "group/",
    "logs/",
    "benchmarks/",
    "report.html",
    "methods.rst",
)


def run_dataset_description(
    out_json: PathLike,
    out_bidsignore: PathLike,
    *,
    name: str,
    version: str,
    links: dict[str, str],
    atlases: Sequence[dict] = (),
) -> None:
    """Describe the results as a BIDS derivative; ``.bidsignore`` its other files.

    ``links`` (dataset name -> folder, relative to the results or absolute) is
    written as ``DatasetLinks``, which the sidecars' ``bids:<name>:`` URIs refer
    to; ``atlases`` (``Name``, ``Image``, ``Labels``: their BIDS URIs) as
    ``Atlases``. No dates, so reruns give the same bytes.
    """
    description = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "sparseconn", "Version": version}],
        "DatasetLinks": dict(sorted(links.items())),
    }
    if atlases:
        description["Atlases"] = [dict(atlas) for atlas in atlases]
    write_json(description, out_json)
    with atomic_output(out_bidsignore) as tmp:
        tmp.write_text("".join(f"{entry}\n" for entry in NOT_BIDS))


# ------------------------------------------------------------ participants


#: ``participants.json``: what each column of ``participants.tsv`` holds (BIDS).
PARTICIPANTS_COLUMNS = {
    "participant_id": {"Description": "Participant label (sub-<label>)"},
    "runs": {"Description": "Scans (runs) of the participant processed by the run"},
    "runs_in_group": {
        "Description": "Of those, scans that entered the group stage (in every atlas)"
    },
    "in_group_stage": {
        "Description": "Whether any scan of the participant entered the group stage",
        "Levels": {"True": "entered", "False": "left out (see reason)"},
    },
    "reason": {
        "Description": "Why scans were left out of the group stage (per scan when "
        "the participant has several), joined by ' | '; empty when none was"
    },
}


def participant_of(scan: str) -> str:
    """The ``sub-<label>`` a scan (``sub-01``, ``sub-01_task-rest_run-1``...) is of."""
    return scan.split("_", 1)[0]


def run_participants(
    scans_qc: Sequence[PathLike], out_tsv: PathLike, out_json: PathLike
) -> None:
    """``participants.tsv`` (BIDS): each participant, and whether it entered the group.

    ``scans_qc``: the scans' QC table of every atlas (:func:`run_scan_qc`); a
    scan is in the group stage when it is in every atlas's. One row per
    participant (BIDS's ``participant_id``, sorted); the per-scan detail stays in
    the QC tables. ``out_json`` describes the columns.
    """
    tables = [pd.read_csv(path, sep="\t", keep_default_na=False) for path in scans_qc]
    if not tables:
        raise ValueError("no scans QC table given")
    included: dict[str, bool] = {}
    reasons: dict[str, list[str]] = {}
    for table in tables:
        for scan, flag, reason in zip(
            table["scan"], table["included"], table["reason"], strict=True
        ):
            scan = str(scan)
            inside = str(flag) == "True"
            included[scan] = included.get(scan, True) and inside
            if not inside and reason and reason not in reasons.setdefault(scan, []):
                reasons[scan].append(str(reason))
    rows = []
    for participant in sorted({participant_of(scan) for scan in included}):
        scans = sorted(s for s in included if participant_of(s) == participant)
        left_out = [s for s in scans if not included[s]]
        notes = [
            reason if scan == participant else f"{scan}: {reason}"
            for scan in left_out
            for reason in reasons.get(scan, []) or ["left out"]
        ]
        rows.append(
            {
                "participant_id": participant,
                "runs": len(scans),
                "runs_in_group": len(scans) - len(left_out),
                "in_group_stage": len(left_out) < len(scans),
                # BIDS tables have no empty cell: n/a for missing values
                "reason": " | ".join(notes) or "n/a",
            }
        )
    write_tsv(pd.DataFrame(rows, columns=list(PARTICIPANTS_COLUMNS)), out_tsv)
    write_json(PARTICIPANTS_COLUMNS, out_json)


# ------------------------------------------------------------------ QC-FC


#: ``desc-qcfc`` table: one row per edge.
QCFC_COLUMNS = {
    "region_1": "First region of the edge",
    "region_2": "Second region of the edge",
    "r": "Pearson correlation, across the group stage's subjects, of the edge's "
    "correlation (cleaned signals) with the subject's mean framewise displacement",
    "p": "Two-sided p-value of r (t test, n - 2 degrees of freedom), uncorrected",
    "q": "Benjamini-Hochberg adjusted p-value (false discovery rate)",
}


def _unit_mean_fd(sidecars: Sequence[PathLike]) -> float | None:
    """Mean FD of a group element: its scans' means, weighted by their volumes."""
    import json

    values, weights = [], []
    for path in sidecars:
        sidecar = json.loads(Path(path).read_text())
        if "MeanFramewiseDisplacement" not in sidecar:
            return None
        values.append(sidecar["MeanFramewiseDisplacement"])
        weights.append(sidecar["NumberOfVolumes"])
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def run_qcfc(
    timeseries: Sequence[PathLike],
    sidecars: Sequence[PathLike],
    regions_table: PathLike,
    out_tsv: PathLike,
    out_json: PathLike,
    *,
    units: Sequence[str],
    sizes: Sequence[int] | None = None,
) -> None:
    """The QC-FC check (Ciric et al. 2017) of the group stage's elements.

    ``timeseries`` and their ``sidecars`` (flat, ``sizes`` files per element of
    ``units``): each element's edges are the correlations of its cleaned
    signals (the group's regions, ``regions_table``), its motion the mean FD of
    its sidecars (``MeanFramewiseDisplacement``). Writes one row per edge
    (:data:`QCFC_COLUMNS`) and the summary (median |r|, fractions with p and q
    below 0.05) in ``out_json``. Without an FD for every element, or with fewer
    than 3 elements, the table has no row and the JSON says why.
    """
    import numpy as np

    from sparseconn.io import read_unit_timeseries
    from sparseconn.motion import edge_correlations, qc_fc_streamed
    from sparseconn.steps.group import split_sizes

    groups = split_sizes(timeseries, sizes)
    sidecar_groups = split_sizes(sidecars, sizes)
    regions = read_unit_timeseries(groups[:1], regions_table)[1]
    fds = [
        _unit_mean_fd([group] if isinstance(group, str | Path) else group)
        for group in sidecar_groups
    ]
    summary: dict = {
        "Description": "QC-FC (Ciric et al. 2017): correlation across subjects of "
        "each edge with mean framewise displacement (Power et al. 2012)",
        "Columns": QCFC_COLUMNS,
        "NumberOfSubjects": len(units),
        "MeanFramewiseDisplacement": {
            unit: None if fd is None else round(fd, 6)
            for unit, fd in zip(units, fds, strict=True)
        },
        "SignificanceLevel": 0.05,
    }
    rows = np.triu_indices(len(regions), k=1)
    frame = pd.DataFrame(columns=list(QCFC_COLUMNS))
    reason = None
    if any(fd is None for fd in fds):
        reason = "the confounds of some scans have no motion columns"
    elif len(units) < 3:
        reason = f"{len(units)} subject(s) in the group stage; QC-FC needs 3 or more"
    elif np.ptp(fds) == 0:
        reason = "every subject has the same mean framewise displacement"
    if reason is None:
        # one element's signals at a time: memory holds one element's edges
        edges = (
            edge_correlations(read_unit_timeseries([group], regions_table)[0][0])
            for group in groups
        )
        result = qc_fc_streamed(edges, np.asarray(fds, dtype=float))
        frame = pd.DataFrame(
            {
                "region_1": [regions[i] for i in rows[0]],
                "region_2": [regions[j] for j in rows[1]],
                "r": result.r,
                "p": result.p,
                "q": result.q,
            }
        )
        summary |= {
            "Computed": True,
            "NumberOfEdges": int(result.r.size),
            "MedianAbsoluteR": round(result.median_abs_r, 6),
            "MedianR": round(float(np.median(result.r)), 6),
            "FractionSignificant": round(result.fraction_significant, 6),
            "FractionSignificantFDR": round(result.fraction_significant_fdr, 6),
        }
    else:
        logger.warning("QC-FC not computed: %s", reason)
        summary |= {"Computed": False, "Reason": reason}
    write_tsv(frame, out_tsv)
    write_json(summary, out_json)


# ---------------------------------------------------------------- methods


#: The works the methods paragraph cites, by key.
REFERENCES = {
    "varoquaux2010": "Varoquaux G, Gramfort A, Poline JB, Thirion B (2010). Brain "
    "covariance selection: better individual functional connectivity models using "
    "population prior. Advances in Neural Information Processing Systems 23.",
    "friedman2008": "Friedman J, Hastie T, Tibshirani R (2008). Sparse inverse "
    "covariance estimation with the graphical lasso. Biostatistics 9(3):432-441.",
    "behzadi2007": "Behzadi Y, Restom K, Liau J, Liu TT (2007). A component based "
    "noise correction method (CompCor) for BOLD and perfusion based fMRI. "
    "NeuroImage 37(1):90-101.",
    "power2012": "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE (2012). "
    "Spurious but systematic correlations in functional connectivity MRI networks "
    "arise from subject motion. NeuroImage 59(3):2142-2154.",
    "ciric2017": "Ciric R, Wolf DH, Power JD, et al. (2017). Benchmarking of "
    "participant-level confound regression strategies for the control of motion "
    "artifact in studies of functional connectivity. NeuroImage 154:174-187.",
    "abraham2014": "Abraham A, Pedregosa F, Eickenberg M, et al. (2014). Machine "
    "learning for neuroimaging with scikit-learn. Frontiers in Neuroinformatics "
    "8:14.",
    "pedregosa2011": "Pedregosa F, Varoquaux G, Gramfort A, et al. (2011). "
    "Scikit-learn: machine learning in Python. Journal of Machine Learning Research "
    "12:2825-2830.",
}

#: Packages whose versions the paragraph gives (distribution names).
METHODS_PACKAGES = (
    "sparseconn",
    "numpy",
    "scipy",
    "scikit-learn",
    "nibabel",
    "pandas",
    "matplotlib",
    "snakemake",
)


def package_versions(names: Sequence[str] = METHODS_PACKAGES) -> dict[str, str]:
    """Installed version of each package (``unknown`` when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _dataset_sentence(settings: Mapping) -> str:
    dataset = settings["Dataset"]
    n, units = settings["Subjects"], settings["GroupUnits"]
    if dataset == "synthetic":
        gen = settings["Synthetic"] or {}
        what = (
            f"{n} synthetic subjects generated by sparseconn (seed {gen.get('seed')}, "
            f"{gen.get('n_volumes')} volumes, TR {gen.get('t_r')} s, "
            f"{gen.get('n_regions')} regions with a known sparse precision matrix)"
        )
    elif dataset == "fmriprep":
        what = f"{n} fMRIPrep-preprocessed runs"
    elif dataset in ("adhd", "development"):
        what = f"{n} subjects of nilearn's {dataset} dataset"
    else:
        what = f"{n} subjects listed in a subjects sheet"
    excluded = settings["Excluded"]
    left = f"; {excluded} scan(s) were left out of the group stage" if excluded else ""
    return f"The data were {what}; {units} entered the group stage{left}."


def _cleaning_sentence(
    settings: Mapping, extraction: Mapping[str, str], confounds: Sequence[str]
) -> str:
    cleaning = settings["Cleaning"]
    steps = []
    if cleaning["Detrend"]:
        steps.append("linear detrending")
    band = []
    if cleaning["HighPass"] is not None:
        band.append(f"high-pass {cleaning['HighPass']} Hz")
    if cleaning["LowPass"] is not None:
        band.append(f"low-pass {cleaning['LowPass']} Hz")
    if band:
        steps.append(
            f"a Butterworth filter of order {cleaning['FilterOrder']} "
            f"({', '.join(band)})"
        )
    strategy = settings["DenoiseStrategy"]
    if strategy == "highvariance":
        columns = settings["ConfoundColumns"]
        regressors = (
            f"regression of {settings['HighVarianceConfounds']} high-variance "
            "confounds (CompCor-like: principal components of the "
            f"{settings['HighVariancePercentile']}% highest-variance voxels; "
            "Behzadi et al. 2007) and of the confounds file's columns "
            f"({', '.join(columns or confounds) or 'none'})"
        )
    else:
        regressors = (
            f"regression of the fMRIPrep confounds of nilearn's '{strategy}' "
            f"strategy ({', '.join(confounds)}; with its censoring of high-motion "
            "volumes where it has one)"
        )
    steps.append(regressors)
    if cleaning["Standardize"]:
        steps.append(f"standardisation ({cleaning['Standardize']})")
    atlases = "; ".join(
        f"atlas '{name}'" + (f": {method}" if method else "")
        for name, method in extraction.items()
    )
    return (
        f"Region signals were extracted per atlas ({atlases}) and cleaned by "
        f"{', '.join(steps)}, all in one least-squares step. Regions covering less "
        f"than {settings['MinRegionCoverage']} of a scan's field of view were left "
        "out of the group stage; a scan keeping fewer than "
        f"{settings['MinVolumes']} volumes after censoring, or fewer than "
        f"{settings['MinDegreesOfFreedom']} degrees of freedom after cleaning, "
        "was left out too."
    )


def _group_sentence(settings: Mapping, alphas: Mapping[str, Mapping]) -> str:
    gs = settings["GroupSparse"]
    chosen = "; ".join(
        f"atlas '{atlas}': alpha {values['groupsparse']:.4g} (group-sparse), "
        f"{values['graphlasso']:.4g} (graphical lasso)"
        for atlas, values in alphas.items()
    )
    who = (
        "every subject"
        if settings["GraphLassoPerSubject"]
        else f"the plotted subject ({settings['PlotUnit']})"
    )
    return (
        "The group-sparse inverse covariance of all subjects (Varoquaux et al. "
        "2010) was estimated with sparseconn's GroupSparseCovarianceCV: alpha chosen "
        f"by cross-validated log-likelihood on a grid of {gs['alphas']} values "
        f"refined {gs['n_refinements']} times (tolerance {gs['tol_cv']}, at most "
        f"{gs['max_iter_cv']} iterations along the path; final fit tolerance "
        f"{gs['tol']}, at most {gs['max_iter']} iterations). For comparison, "
        f"{who} was fitted alone with scikit-learn's GraphicalLassoCV (graphical "
        "lasso, Friedman et al. 2008; Pedregosa et al. 2011). Chosen penalties: "
        f"{chosen}."
    )


def _qc_sentence(qcfc: Mapping[str, Mapping]) -> str:
    parts = []
    for atlas, summary in qcfc.items():
        if summary.get("Computed"):
            parts.append(
                f"atlas '{atlas}': median |r| {summary['MedianAbsoluteR']:.3f}, "
                f"{100 * summary['FractionSignificant']:.1f}% of edges with "
                f"p < 0.05 uncorrected, "
                f"{100 * summary['FractionSignificantFDR']:.1f}% after FDR"
            )
        else:
            parts.append(f"atlas '{atlas}': not computed ({summary.get('Reason')})")
    return (
        "Head motion was summarised per scan by the mean framewise displacement "
        "(Power et al. 2012), and its residual effect on connectivity by QC-FC "
        "(Ciric et al. 2017: across subjects, the correlation of each edge with "
        f"mean framewise displacement): {'; '.join(parts)}."
    )


def methods_text(
    settings: Mapping[str, Any],
    *,
    extraction: Mapping[str, str],
    confounds: Sequence[str] = (),
    alphas: Mapping[str, Mapping[str, float]],
    qcfc: Mapping[str, Mapping],
    versions: Mapping[str, str],
) -> str:
    """The methods paragraph of a run, in reStructuredText, ready to paste.

    ``settings``: :func:`sparseconn.workflow.methods.methods_settings`;
    ``extraction``: each atlas's extraction method (its time series' sidecar);
    ``confounds``: the confound columns regressed from a scan's file;
    ``alphas``: each atlas's chosen alpha per estimate; ``qcfc``: each atlas's
    QC-FC summary (:func:`run_qcfc`); ``versions``: package -> version. Names
    every setting that differs from the defaults, with its default.
    """
    figures = settings["Figures"]
    software = ", ".join(
        f"{name} {version}"
        for name, version in versions.items()
        if name != "sparseconn"
    )
    changed = settings["Changed"]
    if changed:
        differs = "; ".join(
            f"``{key}`` = {_value(value)} (default {_value(default)})"
            for key, value, default in changed
        )
        changes = f"Settings that differ from sparseconn's defaults: {differs}."
    else:
        changes = "Every setting is sparseconn's default."
    paragraph = " ".join(
        [
            "Functional connectomes were computed with sparseconn "
            f"{versions.get('sparseconn', 'unknown')}, a Snakemake workflow "
            "following nilearn's example of group-sparse covariance estimation "
            f"(Abraham et al. 2014), with {software}.",
            _dataset_sentence(settings),
            _cleaning_sentence(settings, extraction, confounds),
            _group_sentence(settings, alphas),
            _qc_sentence(qcfc),
            "Connectome figures show the negated precision, edges at or above the "
            f"{figures['edge_threshold']} threshold of absolute off-diagonal values "
            f"(at most {figures['max_edges']} edges).",
            changes,
        ]
    )
    cited = (
        "varoquaux2010",
        "friedman2008",
        "pedregosa2011",
        "power2012",
        "ciric2017",
        "abraham2014",
    )
    if settings["DenoiseStrategy"] in ("highvariance", "compcor"):
        cited = ("behzadi2007", *cited)
    references = "\n".join(f"- {REFERENCES[key]}" for key in sorted(cited))
    return f"{paragraph}\n\n**References**\n\n{references}\n"


def _file_confounds(confounds: Any) -> list[str]:
    """Regressed columns named in a time series' sidecar, high-variance ones aside."""
    if isinstance(confounds, Mapping):
        names = [name for columns in confounds.values() for name in columns]
    else:
        names = list(confounds or [])
    return [name for name in names if not str(name).startswith("highvariance")]


def run_methods(
    groupsparse_npzs: Sequence[PathLike],
    graphlasso_npzs: Sequence[PathLike],
    qcfc_jsons: Sequence[PathLike],
    timeseries_sidecars: Sequence[PathLike],
    out_rst: PathLike,
    *,
    atlases: Sequence[str],
    settings: Mapping[str, Any],
) -> None:
    """Write the methods paragraph (:func:`methods_text`) of the run.

    Per atlas (lists in ``atlases``'s order): the two group ``.npz`` (their
    chosen alphas), the QC-FC summary and one time series' sidecar (the
    extraction method).
    """
    import json

    import numpy as np

    lists = (groupsparse_npzs, graphlasso_npzs, qcfc_jsons, timeseries_sidecars)
    if any(len(files) != len(atlases) for files in lists):
        raise ValueError(f"one file of each kind per atlas ({len(atlases)})")
    alphas, qcfc, extraction = {}, {}, {}
    for atlas, sparse, lasso, summary, sidecar in zip(atlases, *lists, strict=True):
        with np.load(sparse) as group, np.load(lasso) as single:
            alphas[atlas] = {
                "groupsparse": float(group["alpha"]),
                "graphlasso": float(single["alpha"]),
            }
        qcfc[atlas] = json.loads(Path(summary).read_text())
        fields = json.loads(Path(sidecar).read_text())
        extraction[atlas] = (fields.get("Extraction") or {}).get("Method", "")
        confounds = _file_confounds(fields.get("Confounds"))
    text = methods_text(
        settings,
        extraction=extraction,
        confounds=confounds,
        alphas=alphas,
        qcfc=qcfc,
        versions=package_versions(),
    )
    title = "Methods (generated from this run's settings)"
    with atomic_output(out_rst) as tmp:
        tmp.write_text(f"{title}\n{'=' * len(title)}\n\n{text}")


# ------------------------------------------------------- group QC (report page)


def group_qc_html(scans: pd.DataFrame, qcfc: Mapping[str, Any], *, atlas: str) -> str:
    """A self-contained HTML page: the scans' QC table and the QC-FC summary."""
    import html

    if qcfc.get("Computed"):
        summary = (
            f"QC-FC over {qcfc['NumberOfEdges']} edges and "
            f"{qcfc['NumberOfSubjects']} subjects: median |r| "
            f"{qcfc['MedianAbsoluteR']:.3f}, "
            f"{100 * qcfc['FractionSignificant']:.1f}% of edges with p &lt; 0.05 "
            f"(uncorrected), {100 * qcfc['FractionSignificantFDR']:.1f}% with "
            "FDR q &lt; 0.05."
        )
    else:
        summary = f"QC-FC not computed: {html.escape(str(qcfc.get('Reason')))}."
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in scans.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(value))}</td>" for value in row)
        + "</tr>"
        for row in scans.itertuples(index=False)
    )
    included = int((scans["included"].astype(str) == "True").sum())
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>Group QC, atlas {html.escape(atlas)}</title><style>"
        "body{font-family:sans-serif;font-size:13px;margin:16px}"
        "table{border-collapse:collapse}"
        "th,td{border:1px solid #bbb;padding:3px 6px;text-align:right;"
        "white-space:nowrap}td:first-child{text-align:left}"
        "th{background:#dde6f2}tr:nth-child(even) td{background:#f4f6f9}"
        "</style></head><body>"
        f"<h2>Group quality control, atlas {html.escape(atlas)}</h2>"
        f"<p id='qcfc-summary'>{summary}</p>"
        f"<p>{included} of {len(scans)} scans entered the group stage. mean_fd: "
        "mean framewise displacement (mm, Power et al. 2012); volumes_censored; "
        "dof_lost_*: degrees of freedom taken by the confound regression, the "
        "filter and detrending; degrees_of_freedom: those left.</p>"
        f"<table id='scans-qc'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></body></html>\n"
    )


def run_group_qc(
    timeseries: Sequence[PathLike],
    sidecars: Sequence[PathLike],
    regions_table: PathLike,
    scans_qc: PathLike,
    out_tsv: PathLike,
    out_json: PathLike,
    out_html: PathLike,
    *,
    atlas: str,
    units: Sequence[str],
    sizes: Sequence[int] | None = None,
) -> None:
    """QC-FC (:func:`run_qcfc`), then the group QC page of the report.

    The page (``out_html``) shows the scans' QC table ``scans_qc`` and the QC-FC
    summary.
    """
    import json

    run_qcfc(
        timeseries,
        sidecars,
        regions_table,
        out_tsv,
        out_json,
        units=units,
        sizes=sizes,
    )
    scans = pd.read_csv(scans_qc, sep="\t", keep_default_na=False)
    summary = json.loads(Path(out_json).read_text())
    with atomic_output(out_html) as tmp:
        tmp.write_text(group_qc_html(scans, summary, atlas=atlas), encoding="utf-8")
