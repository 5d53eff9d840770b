"""Rule ``high_variance_confounds``: CompCor-like confounds of one subject.

Inputs
    func : the subject's 4D NIfTI image
Outputs
    tsv : ``sub-<s>_desc-highvariance_confounds.tsv``, one column per confound,
        one row per volume
Params
    n_confounds, percentile, code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.tasks import run_high_variance_confounds

run_task(
    run_high_variance_confounds,
    snakemake.input.func,
    snakemake.output.tsv,
    n_confounds=snakemake.params.n_confounds,
    percentile=snakemake.params.percentile,
    log=snakemake.log[0],
)
