"""Rule ``group_sparse_covariance``: cross-validated group-sparse precisions.

Inputs
    timeseries : every group subject's cleaned time-series TSV (subjects order)
Outputs
    npz : ``group/atlas-<a>_desc-groupsparse_connectome.npz``
    covariances, precisions : per-subject ``relmat`` TSVs (subjects order)
Params
    subjects, sizes (the number of time-series files of each subject: runs,
    concatenated), settings (GroupSparseCovarianceCV parameters), code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.tasks import run_group_sparse_covariance, split_sizes

run_task(
    run_group_sparse_covariance,
    split_sizes(snakemake.input.timeseries, snakemake.params.sizes),
    list(snakemake.params.subjects),
    snakemake.output.npz,
    list(snakemake.output.covariances),
    list(snakemake.output.precisions),
    **snakemake.params.settings,
    log=snakemake.log[0],
)
