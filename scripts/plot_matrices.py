"""Rule ``plot_matrices``: covariance, sparsity pattern and precision figures.

Inputs
    npz : the estimate's group ``.npz`` (desc-groupsparse or desc-graphlasso)
    labels : the atlas labels table (network colours), or nothing
Outputs
    covariance, sparsity, precision : each the PNG
        ``figures/sub-<s>_atlas-<a>_stat-<kind>_desc-<estimate>_matrix.png``,
        then its SVG when ``figures.svg`` is set
Params
    subject, dpi, code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import as_list, run_task
from sparseconn.figure_tasks import run_plot_matrices

labels = as_list(snakemake.input.labels)
run_task(
    run_plot_matrices,
    snakemake.input.npz,
    labels[0] if labels else None,
    as_list(snakemake.output.covariance),
    as_list(snakemake.output.sparsity),
    as_list(snakemake.output.precision),
    estimate=snakemake.wildcards.estimate,
    subject=snakemake.params.subject,
    dpi=snakemake.params.dpi,
    log=snakemake.log[0],
)
