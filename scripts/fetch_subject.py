"""Rule ``fetch_subject``: download one ADHD-40 subject's archive, extract its files.

Inputs
    none (the URL is ``adhd.base_url`` + ``<NITRC id>/adhd40_<subject>.tgz``)
Outputs
    func : ``<subject>_rest_tshift_RPI_voreg_mni.nii.gz``, the 4D resting-state run
    confounds : ``<subject>_regressors.csv``, tab-separated, with a header
Params
    url, checksum (or None), archive (download path, deleted once extracted),
    lock (checksum lock file), members ({"func": member, "confounds": member})
Wildcards
    subject
Config
    download_timeout, download_attempts (read here rather than as params, so that
    changing them does not rerun a finished download)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from sparseconn.cli import run_task
from sparseconn.fetch import fetch_archive_members

members = snakemake.params.members
run_task(
    fetch_archive_members,
    snakemake.params.url,
    snakemake.params.archive,
    {
        members["func"]: snakemake.output.func,
        members["confounds"]: snakemake.output.confounds,
    },
    checksum=snakemake.params.checksum,
    lock_file=snakemake.params.lock,
    timeout=snakemake.config["download_timeout"],
    attempts=snakemake.config["download_attempts"],
    log=snakemake.log[0],
)
