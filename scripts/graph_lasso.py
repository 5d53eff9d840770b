"""Rules ``graph_lasso`` and ``graph_lasso_subject``: scikit-learn GraphicalLassoCV.

Inputs
    timeseries : one subject's cleaned time-series TSV
Outputs
    covariance, precision : the subject's ``relmat`` TSVs
    npz : (rule graph_lasso only) ``group/atlas-<a>_desc-graphlasso_connectome.npz``
Params
    subject, code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import as_list, run_task
from sparseconn.tasks import run_graph_lasso

run_task(
    run_graph_lasso,
    as_list(snakemake.input.timeseries),
    snakemake.output.covariance,
    snakemake.output.precision,
    snakemake.output.get("npz"),
    subject=snakemake.params.subject,
    log=snakemake.log[0],
)
