"""Per-scan steps: high-variance confounds, then region signals extracted and cleaned.

One function per rule, paths in, files out (called by the rules' adapters,
:mod:`sparseconn.workflow.adapters`); outputs are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sparseconn import __version__
from sparseconn.confounds import HighVarianceCollector, high_variance_table
from sparseconn.io import (
    PathLike,
    as_written,
    read_confounds,
    read_func_info,
    write_json,
    write_tsv,
)
from sparseconn.regions import AtlasSpec
from sparseconn.signals import CleaningSettings
from sparseconn.subjects import resolve_t_r_with_source

if TYPE_CHECKING:
    from sparseconn.signals import Cleaned

logger = logging.getLogger(__name__)


def source_uris(paths: Sequence[PathLike], links: dict[str, str] | None) -> list[str]:
    """The files a result comes from, as BIDS URIs of the ``DatasetLinks`` datasets.

    ``links`` maps a dataset name (``""``: the results themselves) to its folder;
    None keeps the paths as given.
    """
    from sparseconn.bids import bids_uri

    return [str(path) if links is None else bids_uri(path, links) for path in paths]


def timing_fields(t_r: float, kept: Sequence[int]) -> dict[str, float]:
    """BEP012's timing of a time series: ``SamplingFrequency`` (Hz), ``StartTime``.

    ``StartTime`` is the onset (s, from the scan's first volume) of the first
    row, i.e. of the first of the volumes ``kept`` in the rows; with censored
    volumes the rows are not evenly spaced (``CensoredVolumes`` says which are
    missing).
    """
    first = int(kept[0]) if len(kept) else 0
    return {
        "SamplingFrequency": round(1.0 / t_r, 9),
        "StartTime": round(first * t_r, 9),
    }


def motion_fields(confounds: Sequence[pd.DataFrame]) -> dict[str, float]:
    """``MeanFramewiseDisplacement`` (mm, Power et al. 2012) of the scan, if known.

    From the first of the scan's ``confounds`` tables with fMRIPrep's
    ``framewise_displacement`` or its six motion columns; no field without them.
    """
    from sparseconn.motion import mean_framewise_displacement

    mean_fd = mean_framewise_displacement(confounds)
    if mean_fd is None:
        return {}
    return {"MeanFramewiseDisplacement": round(mean_fd, 6)}


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
    region_table: pd.DataFrame | None = None,
) -> dict:
    """Sidecar fields saying what cleaning took and what a reader should know.

    ``DegreesOfFreedom`` (see :class:`sparseconn.signals.Cleaned`),
    ``ConfoundsDropped`` (columns that were numerical noise after detrending),
    ``RegionsOutsideFieldOfView`` and ``Warnings``: every caveat of the scan in
    one list, also logged (with ``region_table``, the regions it finds unusable
    for another reason: too little coverage, a constant signal).
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
    if region_table is not None:
        other = region_table[
            ~region_table["usable"]
            & (region_table["reason"] != "outside the field of view")
        ]
        if len(other):
            listed = ", ".join(
                f"{name} ({reason})"
                for name, reason in zip(other["name"], other["reason"], strict=True)
            )
            notes.append(
                f"{len(other)} region(s) left out of the group stage: {listed}"
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


def _specs(atlases: Sequence[AtlasSpec | Mapping[str, Any]]) -> list[AtlasSpec]:
    """Atlases given as specs or as rule params."""
    return [
        atlas if isinstance(atlas, AtlasSpec) else AtlasSpec.from_param(atlas)
        for atlas in atlases
    ]


def _check_outputs(atlases: Sequence[AtlasSpec], **outputs: Sequence[Any]) -> None:
    for name, files in outputs.items():
        if len(files) != len(atlases):
            raise ValueError(f"{len(files)} {name} for {len(atlases)} atlases")


def run_extract_timeseries(
    func: PathLike,
    atlases: Sequence[AtlasSpec | Mapping[str, Any]],
    confounds: Sequence[PathLike],
    out_tsvs: Sequence[PathLike],
    out_jsons: Sequence[PathLike],
    out_high_variance: PathLike,
    out_regions: Sequence[PathLike] | None = None,
    *,
    subject: str,
    sheet_t_r: float | None = None,
    config_t_r: float | None = None,
    cleaning: CleaningSettings | None = None,
    links: dict[str, str] | None = None,
    n_high_variance_confounds: int = 5,
    high_variance_percentile: float = 2.0,
    min_region_coverage: float = 0.5,
) -> None:
    """Extract and clean every atlas's region signals; write each TSV and sidecar.

    One streamed decompression of ``func`` gives its high-variance confounds
    (written to ``out_high_variance``, see
    :class:`sparseconn.confounds.HighVarianceCollector`) and the region signals
    of every atlas (``out_tsvs`` and ``out_jsons`` in ``atlases``'s order).
    Regressed out of each: the high-variance confounds, then every column of
    the tables ``confounds`` (header row, one row per volume: the subject's
    confounds file). The repetition time comes from ``sheet_t_r``, else
    ``config_t_r``, else the NIfTI header; a disagreement is an error. Constant
    volumes (dropouts) are censored; a scan left with fewer than the
    ``cleaning`` settings' ``min_kept_fraction`` of its volumes, or whose cleaning
    leaves fewer than ``min_degrees_of_freedom``, is an error. ``out_regions``:
    each atlas's region table (:func:`sparseconn.regions.scan_region_table`:
    which regions the group stage can use, by ``min_region_coverage``).
    """
    from sparseconn import regions
    from sparseconn.signals import clean_scan, extract_signals

    specs = _specs(atlases)
    _check_outputs(specs, time_series=out_tsvs, sidecars=out_jsons)
    if out_regions is not None:
        _check_outputs(specs, region_tables=out_regions)
    settings = cleaning or CleaningSettings()
    info = read_func_info(func)
    t_r, t_r_source = resolve_t_r_with_source(
        func, info.t_r, sheet_t_r, config_t_r, unitless_header_t_r=info.unitless_t_r
    )
    file_tables = [read_confounds(path, info.n_volumes) for path in confounds]
    loaded = [regions.load(spec) for spec in specs]
    collector = HighVarianceCollector(
        info, n_high_variance_confounds, high_variance_percentile
    )
    extractors = regions.extractors_for(info, loaded)
    loaded = [regions.without_maps(atlas) for atlas in loaded]
    extracted = extract_signals(info, extractors, on_chunk=collector.add)
    del extractors
    logger.info(
        "%s: one streamed pass, region signals of %d atlas(es): %s",
        func,
        len(loaded),
        ", ".join(spec.name for spec in specs),
    )
    # Regressed as written in their file, so that the file reproduces the result.
    high_variance = as_written(high_variance_table(collector.confounds()))
    tables = [high_variance, *file_tables]
    confound_files = [out_high_variance, *confounds]
    confound_matrix = (
        np.hstack([table.to_numpy() for table in tables]) if tables else None
    )
    confound_names = [name for table in tables for name in table.columns]
    outputs = []
    for atlas, (signals, coverage, constant) in zip(loaded, extracted, strict=True):
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
        table = regions.scan_region_table(
            atlas, coverage, signals[scan.kept], min_region_coverage
        )
        quality = quality_fields(
            cleaned,
            confound_names,
            atlas.names,
            coverage,
            [*scan.warnings, *atlas.notes],
            table,
        )
        sidecar = {
            **timing_fields(t_r, scan.kept if scan.censoring_applied else [0]),
            "RepetitionTime": t_r,
            "RepetitionTimeSource": t_r_source,
            "NumberOfVolumes": info.n_volumes,
            "Subject": subject,
            "Atlas": atlas.spec.name,
            "Regions": atlas.names,
            "RegionsOutsideFieldOfView": quality.pop("RegionsOutsideFieldOfView"),
            "Sources": source_uris([func, *atlas.spec.files], links),
            "Confounds": {
                uri: list(table.columns)
                for uri, table in zip(
                    source_uris(confound_files, links), tables, strict=True
                )
            },
            "Extraction": {"Method": atlas.method},
            "Cleaning": settings.sidecar(),
            **quality,
            **motion_fields(file_tables),
            "SoftwareVersion": f"sparseconn {__version__}",
        }
        if scan.censored:
            sidecar["NumberOfVolumesKept"] = int(scan.kept.size)
            sidecar["CensoredVolumes"] = scan.censored
            sidecar["CensoringReasons"] = scan.reasons
        outputs.append(
            (pd.DataFrame(cleaned.signals, columns=atlas.names), sidecar, table)
        )
    # Written once every atlas is done: a failure leaves no file of this scan.
    write_tsv(high_variance, out_high_variance)
    _write_scan_outputs(outputs, out_tsvs, out_jsons, out_regions)


def _write_scan_outputs(
    outputs: Sequence[tuple[pd.DataFrame, dict, pd.DataFrame]],
    out_tsvs: Sequence[PathLike],
    out_jsons: Sequence[PathLike],
    out_regions: Sequence[PathLike] | None,
) -> None:
    """Each atlas's time series, sidecar and (when asked) region table."""
    tables = out_regions if out_regions is not None else [None] * len(outputs)
    for (series, sidecar, regions), out_tsv, out_json, out_table in zip(
        outputs, out_tsvs, out_jsons, tables, strict=True
    ):
        write_tsv(series, out_tsv)
        write_json(sidecar, Path(out_json))
        if out_table is not None:
            write_tsv(regions, out_table)


def run_fmriprep_timeseries(
    bold: PathLike,
    confounds: PathLike,
    atlases: Sequence[AtlasSpec | Mapping[str, Any]],
    out_tsvs: Sequence[PathLike],
    out_jsons: Sequence[PathLike],
    out_regions: Sequence[PathLike] | None = None,
    *,
    scan: str,
    strategy: str,
    confound_columns: Sequence[str] = (),
    t_r: float | None = None,
    cleaning: CleaningSettings | None = None,
    n_high_variance_confounds: int = 5,
    high_variance_percentile: float = 2.0,
    links: dict[str, str] | None = None,
    min_region_coverage: float = 0.5,
) -> None:
    """One fMRIPrep run: denoise by ``strategy``, censor, extract and clean.

    One read of ``bold`` for every atlas; per atlas (``out_tsvs``, ``out_jsons``
    in ``atlases``'s order) writes the kept volumes' cleaned signals (header =
    region names, one row per kept volume) and the JSON sidecar: repetition
    time, strategy and its parameters, censored volumes (number, indices, why),
    sources, cleaning, degrees of freedom, warnings, and ``ExcludedFromGroup``:
    why the run is left out of the group stage (too much censoring, too few
    degrees of freedom), or null. Excluded runs are written too, so that they
    can be inspected.
    """
    from sparseconn.fmriprep import clean_scan_atlases, read_fmriprep_confounds

    specs = _specs(atlases)
    _check_outputs(specs, time_series=out_tsvs, sidecars=out_jsons)
    if out_regions is not None:
        _check_outputs(specs, region_tables=out_regions)
    results = clean_scan_atlases(
        bold,
        specs,
        confounds,
        strategy=strategy,
        confound_columns=confound_columns,
        t_r=t_r,
        cleaning=cleaning,
        n_high_variance_confounds=n_high_variance_confounds,
        high_variance_percentile=high_variance_percentile,
        min_region_coverage=min_region_coverage,
    )
    outputs = []
    for spec, result in zip(specs, results, strict=True):
        quality = quality_fields(
            result.cleaning,
            result.confound_names,
            result.regions,
            result.coverage,
            result.warnings,
            result.region_table,
        )
        sidecar = {
            **timing_fields(
                result.t_r, result.kept if result.censoring_applied else [0]
            ),
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
            "Atlas": spec.name,
            "Regions": result.regions,
            "RegionsOutsideFieldOfView": quality.pop("RegionsOutsideFieldOfView"),
            "DenoiseStrategy": result.denoising.parameters,
            "Confounds": result.confound_names,
            "Sources": source_uris([bold, confounds, *spec.files], links),
            "Cleaning": result.settings.sidecar(),
            **quality,
            **motion_fields([read_fmriprep_confounds(confounds, result.n_volumes)]),
            "ExcludedFromGroup": result.excluded,
            "SoftwareVersion": f"sparseconn {__version__}",
        }
        if not result.censoring_applied:
            sidecar["CensoringApplied"] = False
            sidecar["Warnings"].append(
                "left out of the group stage; its kept volumes are too few to "
                "clean, so every volume is written uncensored, for inspection only"
            )
        outputs.append(
            (
                pd.DataFrame(result.signals, columns=result.regions),
                sidecar,
                result.region_table,
            )
        )
    _write_scan_outputs(outputs, out_tsvs, out_jsons, out_regions)
