"""Rule ``model_comparison``: held-out log-likelihood of four estimators.

Inputs
    timeseries : every group subject's cleaned time-series TSV
Outputs
    tsv : ``group/atlas-<a>_desc-heldout_loglikelihood.tsv`` (subject, estimator,
        fold, log_likelihood)
    figure : paired per-subject lines, one panel per fold
Params
    subjects, sizes (the number of time-series files of each subject: runs,
    concatenated), n_blocks, group_sparse (GroupSparseCovarianceCV parameters), code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.tasks import run_model_comparison, split_sizes

run_task(
    run_model_comparison,
    split_sizes(snakemake.input.timeseries, snakemake.params.sizes),
    list(snakemake.params.subjects),
    snakemake.output.tsv,
    snakemake.output.figure,
    n_blocks=snakemake.params.n_blocks,
    group_sparse=dict(snakemake.params.group_sparse),
    n_jobs=snakemake.threads,
    log=snakemake.log[0],
)
