"""Rule ``plot_connectome``: the plotted subject's connectome, three projections.

Inputs
    npz : the estimate's group ``.npz`` (desc-groupsparse or desc-graphlasso)
    maps : the atlas's 4D maps (brain outline, node positions without x, y, z)
    labels : the atlas labels table, or nothing
Outputs
    png : ``figures/sub-<s>_atlas-<a>_desc-<estimate>_connectome.png``
    svg : the same as SVG when ``figures.svg`` is set, else nothing
Params
    subject, edge_threshold, dpi, code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import as_list, run_task
from sparseconn.figure_tasks import run_plot_connectome

labels = as_list(snakemake.input.labels)
svg = as_list(snakemake.output.svg)
run_task(
    run_plot_connectome,
    snakemake.input.npz,
    snakemake.input.maps,
    labels[0] if labels else None,
    snakemake.output.png,
    svg[0] if svg else None,
    estimate=snakemake.wildcards.estimate,
    subject=snakemake.params.subject,
    edge_threshold=snakemake.params.edge_threshold,
    dpi=snakemake.params.dpi,
    log=snakemake.log[0],
)
