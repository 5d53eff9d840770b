"""Rule ``fmriprep_timeseries``: one fMRIPrep run's cleaned region signals.

Inputs
    bold : ``*_desc-preproc_bold.nii.gz``
    confounds : its ``*_desc-confounds_timeseries.tsv`` (or ``_regressors.tsv``)
    confounds_json : the confounds' JSON (compcor only)
    maps, labels : the atlas (labels: none or one file)
Outputs
    tsv : ``<scan>_atlas-<a>_timeseries.tsv``, one row per kept volume
    json : its sidecar (RepetitionTime, strategy, censored volumes, sources)
Params
    atlas_name, strategy, confound_columns, t_r, high_pass, low_pass, detrend,
    standardize, n_high_variance_confounds, high_variance_percentile,
    min_kept_fraction, code
Wildcards
    folder, scan
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import as_list, run_task
from sparseconn.tasks import run_fmriprep_timeseries

labels = as_list(snakemake.input.labels)
run_task(
    run_fmriprep_timeseries,
    snakemake.input.bold,
    snakemake.input.confounds,
    snakemake.input.maps,
    labels[0] if labels else None,
    snakemake.output.tsv,
    snakemake.output.json,
    scan=snakemake.wildcards.scan,
    atlas_name=snakemake.params.atlas_name,
    strategy=snakemake.params.strategy,
    confound_columns=list(snakemake.params.confound_columns),
    t_r=snakemake.params.t_r,
    high_pass=snakemake.params.high_pass,
    low_pass=snakemake.params.low_pass,
    detrend=snakemake.params.detrend,
    standardize=snakemake.params.standardize,
    n_high_variance_confounds=snakemake.params.n_high_variance_confounds,
    high_variance_percentile=snakemake.params.high_variance_percentile,
    min_kept_fraction=snakemake.params.min_kept_fraction,
    log=snakemake.log[0],
)
