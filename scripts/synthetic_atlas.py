"""Rule ``synthetic_atlas``: generate the synthetic probabilistic atlas.

Inputs
    none
Outputs
    maps : 4D NIfTI image, one probabilistic map per region
    labels : CSV of the regions (columns x, y, z, name, net name, as MSDL's)
    truth : ``.npz``, the group's sparse precision structure (ground truth)
Params
    n_regions, seed, code (version of the generator's code; reruns on change)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.synthetic import generate_atlas

run_task(
    generate_atlas,
    snakemake.output.maps,
    snakemake.output.labels,
    snakemake.output.truth,
    n_regions=snakemake.params.n_regions,
    seed=snakemake.params.seed,
    log=snakemake.log[0],
)
