"""Rule ``plot_subject_qc``: one subject's confounds and region signals over time.

Inputs
    confounds : ``sub-<s>_desc-highvariance_confounds.tsv``
    timeseries, sidecar : ``sub-<s>_atlas-<a>_timeseries.tsv`` and its ``.json``
Outputs
    png : ``figures/sub-<s>_atlas-<a>_qc.png``
Params
    subject, n_regions, dpi, code
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.figure_tasks import run_plot_subject_qc

run_task(
    run_plot_subject_qc,
    snakemake.input.confounds,
    snakemake.input.timeseries,
    snakemake.input.sidecar,
    snakemake.output.png,
    subject=snakemake.params.subject,
    n_regions=snakemake.params.n_regions,
    dpi=snakemake.params.dpi,
    log=snakemake.log[0],
)
