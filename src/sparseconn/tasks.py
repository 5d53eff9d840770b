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
    write_tsv,
)
from sparseconn.subjects import resolve_t_r

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
    # scipy.signal takes a second to import: only the jobs that filter pay for it.
    from sparseconn.signals import BUTTERWORTH_ORDER, clean, extract_map_signals

    info = read_func_info(func)
    t_r = resolve_t_r(func, info.t_r, sheet_t_r=sheet_t_r, config_t_r=config_t_r)
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
        "Cleaning": {
            "Detrend": detrend,
            "Filter": "butterworth" if (high_pass or low_pass) else None,
            "FilterOrder": BUTTERWORTH_ORDER,
            "HighPass": high_pass,
            "LowPass": low_pass,
            "Standardize": standardize,
        },
        "SoftwareVersion": f"sparseconn {__version__}",
    }
    write_json(sidecar, Path(out_json))
