"""Rule ``synthetic_subject``: generate one synthetic subject.

Inputs
    atlas_truth : ``.npz`` ground truth of the synthetic atlas
Outputs
    func : 4D NIfTI image (the subject's resting-state run)
    confounds : TSV of motion-like confounds, one row per volume
    truth : ``.npz``, the subject's precision matrix and mixing (ground truth)
Params
    subject_index, seed, n_volumes, t_r, n_file_confounds, code
Wildcards
    subject
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.synthetic import generate_subject

run_task(
    generate_subject,
    snakemake.output.func,
    snakemake.output.confounds,
    snakemake.output.truth,
    atlas_truth_path=snakemake.input.atlas_truth,
    subject_index=snakemake.params.subject_index,
    subject=snakemake.wildcards.subject,
    seed=snakemake.params.seed,
    n_volumes=snakemake.params.n_volumes,
    t_r=snakemake.params.t_r,
    n_file_confounds=snakemake.params.n_file_confounds,
    log=snakemake.log[0],
)
