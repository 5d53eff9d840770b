"""Rule ``extract_timeseries``: cleaned region signals of one subject.

Inputs
    func : the subject's 4D NIfTI image
    maps : the atlas's 4D image of probabilistic maps
    labels : the atlas's labels table (none or one file)
    confounds : confounds TSVs, regressed out together (high-variance ones, then
        the subject's own file when there is one)
Outputs
    tsv : ``sub-<s>_atlas-<a>_timeseries.tsv``, header = region names, one row
        per volume
    json : its sidecar (RepetitionTime, cleaning parameters, sources)
Params
    atlas_name, sheet_t_r, config_t_r, high_pass, low_pass, detrend,
    standardize, code
Wildcards
    subject
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import as_list, run_task
from sparseconn.tasks import run_extract_timeseries

labels = as_list(snakemake.input.labels)
run_task(
    run_extract_timeseries,
    snakemake.input.func,
    snakemake.input.maps,
    labels[0] if labels else None,
    as_list(snakemake.input.confounds),
    snakemake.output.tsv,
    snakemake.output.json,
    subject=snakemake.wildcards.subject,
    atlas_name=snakemake.params.atlas_name,
    sheet_t_r=snakemake.params.sheet_t_r,
    config_t_r=snakemake.params.config_t_r,
    high_pass=snakemake.params.high_pass,
    low_pass=snakemake.params.low_pass,
    detrend=snakemake.params.detrend,
    standardize=snakemake.params.standardize,
    log=snakemake.log[0],
)
