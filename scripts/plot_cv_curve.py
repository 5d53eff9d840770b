"""Rule ``plot_cv_curve``: cross-validated score of every alpha tried.

Inputs
    npz : the estimate's group ``.npz`` (cv_alphas, cv_scores, alpha)
Outputs
    png : ``figures/atlas-<a>_desc-<estimate>_cv.png``
    svg : the same as SVG when ``figures.svg`` is set, else nothing
Params
    dpi, code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import as_list, run_task
from sparseconn.figure_tasks import run_plot_cv_curve

svg = as_list(snakemake.output.svg)
run_task(
    run_plot_cv_curve,
    snakemake.input.npz,
    snakemake.output.png,
    svg[0] if svg else None,
    estimate=snakemake.wildcards.estimate,
    dpi=snakemake.params.dpi,
    log=snakemake.log[0],
)
