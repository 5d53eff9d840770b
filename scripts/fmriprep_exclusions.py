"""Rule ``fmriprep_exclusions``: the runs left out of the group stage.

Outputs
    tsv : ``group/desc-exclusions_scans.tsv`` (scan, bold, reason)
Params
    rows (one dict per excluded run, decided when the workflow is read)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.tasks import run_scan_exclusions

run_task(
    run_scan_exclusions,
    list(snakemake.params.rows),
    snakemake.output.tsv,
    log=snakemake.log[0],
)
