"""Rule ``recovery_scores``: estimates against the synthetic ground truth.

Inputs
    group : the group-sparse ``.npz``
    graph_lasso : each group subject's graph-lasso precision ``relmat`` TSV
    timeseries : each group subject's cleaned time series (Ledoit-Wolf, empirical)
    truths : each synthetic subject's ground-truth ``.npz``
Outputs
    tsv : ``group/atlas-<a>_desc-recovery_scores.tsv``
    figure : support F1 and relative Frobenius error per estimator
Params
    code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.tasks import run_recovery_scores

run_task(
    run_recovery_scores,
    snakemake.input.group,
    list(snakemake.input.graph_lasso),
    list(snakemake.input.timeseries),
    list(snakemake.input.truths),
    snakemake.output.tsv,
    snakemake.output.figure,
    log=snakemake.log[0],
)
